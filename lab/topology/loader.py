"""Read declarative topology files (TOML) into the model, with errors that name the place."""

from __future__ import annotations

import importlib.util
import inspect
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.errors import TopologyError
from lab.topology.model import (
    HostLink,
    HostSpec,
    HypervisorSpec,
    NicSpec,
    SwitchSpec,
    Topology,
    VmSpec,
)

TOPOLOGY_DIR = Path(__file__).resolve().parents[2] / "topologies"
DEFAULT_TOPOLOGY = "default"
LINK_KEYS = {"switch", "ip", "bw", "delay", "loss"}
HYPERVISOR_KEYS = {"name", "uri", "underlay", "vcpus", "memory_mb", "shell"}
HYPERVISOR_REQUIRED = ("name", "uri", "underlay")


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


def _hypervisors(doc: dict[str, Any], source: str) -> tuple[HypervisorSpec, ...]:
    hypervisors = []
    for i, table in enumerate(_list(doc, "hypervisor", source)):
        where = f"{source}: hypervisor {table.get('name', i)}"
        _take(table, where, HYPERVISOR_KEYS)
        missing = [key for key in HYPERVISOR_REQUIRED if key not in table]
        if missing:
            raise TopologyError(f"{where}: missing {', '.join(missing)}",
                                hint='e.g. name = "hv2", uri = "qemu+ssh://root@hv2/system", '
                                     'underlay = "203.0.113.2"')
        hypervisors.append(HypervisorSpec(**table))
    return tuple(hypervisors)


def _build(doc: dict[str, Any], source: str) -> Topology:
    _take(doc, source, {"name", "description", "switch", "vm", "host", "hypervisor"})
    try:
        switches = tuple(SwitchSpec(**_take(s, f"{source}: switch", {"name"}))
                         for s in _list(doc, "switch", source))
        vms = []
        for v in _list(doc, "vm", source):
            if not isinstance(v.get("nics", []), list):
                raise TopologyError(f"{source}: vm nics must be a list of tables")
            _take(v, f"{source}: vm", {"name", "nics", "memory_mb", "cpus", "on"})
            nics = tuple(NicSpec(**_take(n, f"{source}: vm nic", {"model", *LINK_KEYS}))
                         for n in v.get("nics", []))
            vms.append(VmSpec(name=v["name"], nics=nics, memory_mb=v.get("memory_mb", 512),
                              cpus=v.get("cpus", 1), on=v.get("on")))
        hosts = []
        for h in _list(doc, "host", source):
            _take(h, f"{source}: host", {"name", "links"})
            if not isinstance(h.get("links", []), list):
                raise TopologyError(f"{source}: host links must be a list of tables")
            links = tuple(HostLink(**_take(lk, f"{source}: host link", LINK_KEYS))
                          for lk in h.get("links", []))
            hosts.append(HostSpec(name=h["name"], links=links))
        hypervisors = _hypervisors(doc, source)
    except (KeyError, TypeError) as exc:
        raise TopologyError(f"{source}: missing or malformed field ({exc})") from exc
    return Topology(name=str(doc.get("name", Path(source).stem)),
                    description=str(doc.get("description", "")),
                    switches=switches, vms=tuple(vms), hosts=tuple(hosts), source=source,
                    hypervisors=hypervisors)


def builders() -> dict[str, Callable[..., Topology]]:
    """The Python builders in topologies/builders.py, by name."""
    spec = importlib.util.spec_from_file_location("lanalab_topology_builders",
                                                  TOPOLOGY_DIR / "builders.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.BUILDERS)


def known_topologies() -> list[str]:
    return sorted({p.stem for p in TOPOLOGY_DIR.glob("*.toml")} | set(builders()))


def _convert(value: str, like: object) -> object:
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(value)
    return value


def build_topology(name: str, params: dict[str, str]) -> Topology:
    """Call a Python builder with string parameters converted to its defaults' types."""
    builder = builders()[name]
    signature = inspect.signature(builder)
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key not in signature.parameters:
            raise TopologyError(f"topology {name!r} has no parameter {key!r}",
                                hint=f"parameters: {', '.join(signature.parameters) or 'none'}")
        try:
            kwargs[key] = _convert(value, signature.parameters[key].default)
        except ValueError as exc:
            raise TopologyError(f"topology {name!r}: bad value {value!r} for {key}") from exc
    try:
        return builder(**kwargs)
    except ValueError as exc:
        raise TopologyError(str(exc)) from exc


def _from_python_file(path: Path) -> Topology:
    """A Python file with a Mininet Topo subclass (its hosts marked with LanaVM for VMs), or a
    function `topology()` returning a lab Topology."""
    from mininet.topo import Topo

    from lab.topology.from_mininet import topology_from_mininet

    spec = importlib.util.spec_from_file_location(f"lanalab_user_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TopologyError(f"{path}: cannot run it: {type(exc).__name__}: {exc}") from exc
    if callable(getattr(module, "topology", None)):
        topo = module.topology()
        if not isinstance(topo, Topology):
            raise TopologyError(f"{path}: topology() must return a lab.topology.Topology")
        return topo
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, Topo) and c is not Topo]
    if len(classes) != 1:
        raise TopologyError(f"{path}: found {len(classes)} Mininet Topo classes",
                            hint="define exactly one Topo subclass, or a function topology()")
    return topology_from_mininet(classes[0](), name=path.stem)


def load_topology(ref: str | None = None, params: dict[str, str] | None = None) -> Topology:
    """Load a topology: a .toml path, a .toml name in topologies/, or a Python builder."""
    ref = ref or DEFAULT_TOPOLOGY
    path = Path(ref)
    if path.suffix == ".py" and path.exists():
        return _from_python_file(path)
    if not path.exists():
        path = TOPOLOGY_DIR / f"{ref}.toml"
    if not path.exists() and ref in builders():
        return build_topology(ref, params or {})
    if params:
        raise TopologyError(f"topology {ref!r} takes no parameters",
                            hint="parameters are for Python builders: "
                                 f"{', '.join(sorted(builders()))}")
    if not path.exists():
        raise TopologyError(f"no topology {ref!r}",
                            hint=f"give a .toml file or one of: {', '.join(known_topologies())}")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TopologyError(f"{path}: not a text file in UTF-8 ({exc.reason} at byte "
                            f"{exc.start})", hint="save the topology as UTF-8 TOML") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(f"{path}: not valid TOML: {exc}") from exc
    return _build(doc, str(path))
