"""Read declarative topology files (TOML) into the model, with errors that name the place."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from lab.errors import TopologyError
from lab.topology.model import HostLink, HostSpec, NicSpec, SwitchSpec, Topology, VmSpec

TOPOLOGY_DIR = Path(__file__).resolve().parents[2] / "topologies"
DEFAULT_TOPOLOGY = "default"


def _take(table: dict[str, Any], where: str, allowed: set[str]) -> dict[str, Any]:
    unknown = set(table) - allowed
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}",
                            hint=f"allowed: {', '.join(sorted(allowed))}")
    return table


def _list(doc: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TopologyError(f"{where}: '{key}' must be a list of tables ([[{key}]])")
    return items


def _build(doc: dict[str, Any], source: str) -> Topology:
    _take(doc, source, {"name", "description", "switch", "vm", "host"})
    try:
        switches = tuple(SwitchSpec(**_take(s, f"{source}: switch", {"name"}))
                         for s in _list(doc, "switch", source))
        vms = []
        for v in _list(doc, "vm", source):
            _take(v, f"{source}: vm", {"name", "nics", "memory_mb", "cpus"})
            nics = tuple(NicSpec(**_take(n, f"{source}: vm nic", {"switch", "model", "ip"}))
                         for n in v.get("nics", []))
            vms.append(VmSpec(name=v["name"], nics=nics, memory_mb=v.get("memory_mb", 512),
                              cpus=v.get("cpus", 1)))
        hosts = []
        for h in _list(doc, "host", source):
            _take(h, f"{source}: host", {"name", "links"})
            links = tuple(HostLink(**_take(lk, f"{source}: host link", {"switch", "ip"}))
                          for lk in h.get("links", []))
            hosts.append(HostSpec(name=h["name"], links=links))
    except (KeyError, TypeError) as exc:
        raise TopologyError(f"{source}: missing or malformed field ({exc})") from exc
    return Topology(name=str(doc.get("name", Path(source).stem)),
                    description=str(doc.get("description", "")),
                    switches=switches, vms=tuple(vms), hosts=tuple(hosts), source=source)


def load_topology(ref: str | None = None) -> Topology:
    """Load a topology by file path or by the name of a file in topologies/."""
    ref = ref or DEFAULT_TOPOLOGY
    path = Path(ref)
    if not path.exists():
        path = TOPOLOGY_DIR / f"{ref}.toml"
    if not path.exists():
        known = sorted(p.stem for p in TOPOLOGY_DIR.glob("*.toml"))
        raise TopologyError(f"no topology {ref!r}",
                            hint=f"give a .toml file or one of: {', '.join(known)}")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: not valid TOML: {exc}") from exc
    return _build(doc, str(path))
