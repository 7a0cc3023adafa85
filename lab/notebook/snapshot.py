"""One look at a guest's LANA state in a single guest command (one round trip under TCG):
the instances, every counter's packets and bytes, and the engine's per-CPU statistics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lab.lana.procfs import FBlock, PpeCpu, parse_fblocks, parse_ppe

# Sections are marked with lines of their own; a missing /proc/net/lana leaves them empty.
SNAPSHOT_SCRIPT = r"""
d=/proc/net/lana
echo '## fblocks'; cat $d/fblocks 2>/dev/null
echo '## counters'
if [ -r $d/fblocks ]; then
  while read -r name type rest; do
    [ "$type" = counter ] && echo "$name $(cat $d/fblock/$name 2>/dev/null)"
  done < $d/fblocks
fi
echo '## ppe'; cat $d/ppe 2>/dev/null
echo '## end'
"""


@dataclass(frozen=True)
class Counter:
    name: str
    packets: int
    bytes: int


@dataclass(frozen=True)
class Snapshot:
    taken: float  # time.monotonic() on the host when the answer came back
    loaded: bool  # lana.ko is loaded (/proc/net/lana exists)
    blocks: dict[str, FBlock] = field(default_factory=dict)
    counters: dict[str, Counter] = field(default_factory=dict)
    ppe: list[PpeCpu] = field(default_factory=list)


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None and line.strip():
            current.append(line)
    return sections


def parse_snapshot(text: str, taken: float | None = None) -> Snapshot:
    """The output of SNAPSHOT_SCRIPT -> Snapshot."""
    sections = _sections(text)
    if "end" not in sections:
        raise ValueError(f"incomplete LANA snapshot from the guest: {text[-300:]!r}")
    counters = {}
    for line in sections.get("counters", []):
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            counters[parts[0]] = Counter(parts[0], int(parts[1]), int(parts[2]))
        # a counter removed between the two reads prints no numbers: skip it
    ppe_lines = sections.get("ppe", [])
    return Snapshot(
        taken=time.monotonic() if taken is None else taken,
        loaded=bool(ppe_lines),
        blocks=parse_fblocks("\n".join(sections.get("fblocks", []))),
        counters=counters,
        ppe=parse_ppe("\n".join(ppe_lines)))
