"""LANA state as pandas tables, made for reading in a notebook."""

from __future__ import annotations

import pandas as pd

from lab.lana.procfs import FBlock, PpeCpu
from lab.notebook.snapshot import Counter

BLOCK_COLUMNS = ["name", "type", "idp", "sits on", "carries", "refcnt", "events"]


def blocks_table(blocks: dict[str, FBlock]) -> pd.DataFrame:
    """One row per instance; bindings by name: `sits on` are the blocks under it (its
    egress ports), `carries` lists the blocks bound on top of it (its ingress ports)."""
    names = {block.idp: name for name, block in blocks.items()}

    def named(block: FBlock, direction: str) -> str:
        return ", ".join(names.get(p.idp, f"IDP {p.idp}") for p in block.ports
                         if p.direction == direction)

    rows = [{"name": name, "type": b.type, "idp": b.idp, "sits on": named(b, "out"),
             "carries": named(b, "in"), "refcnt": b.refcnt, "events": b.events}
            for name, b in blocks.items()]
    return pd.DataFrame(rows, columns=BLOCK_COLUMNS)


def counters_table(counters: dict[str, Counter]) -> pd.DataFrame:
    rows = [{"name": c.name, "packets": c.packets, "bytes": c.bytes}
            for c in counters.values()]
    return pd.DataFrame(rows, columns=["name", "packets", "bytes"])


def ppe_table(cpus: list[PpeCpu]) -> pd.DataFrame:
    """One row per CPU plus a `total` row."""
    rows = [{"cpu": str(c.cpu), "packets": c.packets, "bytes": c.bytes, "calls": c.calls,
             "drops": c.drops, "backlog": c.backlog} for c in cpus]
    if rows:
        rows.append({"cpu": "total", **{k: sum(r[k] for r in rows)  # type: ignore[misc]
                                        for k in ("packets", "bytes", "calls", "drops",
                                                  "backlog")}})
    return pd.DataFrame(rows, columns=["cpu", "packets", "bytes", "calls", "drops",
                                       "backlog"])
