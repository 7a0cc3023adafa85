"""Host-side bad input: malformed topology files and CLI argument lists.

Every case must end in a clear refusal (a `LabError` with a message, which the CLI prints
and turns into exit 1, or argparse's usage error, exit 2) or be accepted as valid; an
exception of any other kind is a crash (the user would see a Python traceback).
Only inputs that fail before the lab creates anything are run: no case brings up a lab,
cleans, prunes or tears down someone else's lab.
"""

from __future__ import annotations

import contextlib
import io
import random
import secrets
import string
import tomllib
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "topologies" / "default.toml"


@dataclass
class Outcomes:
    tried: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)  # refused without a message

    def figures(self) -> dict[str, Any]:
        return {"tried": dict(self.tried), "accepted": dict(self.accepted),
                "refused_with_message": dict(self.refused), "crashes": len(self.crashes),
                "crash_cases": self.crashes[:20], "refused_without_message": self.unclear[:20]}


# ---- topology files --------------------------------------------------------------------
def _odd_value(rng: random.Random) -> Any:
    return rng.choice([None, -1, 0, 1.5, 10**20, "", "x" * 300, "ünï", [], [1], {}, {"a": 1},
                       True, "10.0.0.300/24", "10.0.0.1", "::1/64", "s1", "../../etc"])


def _mutate_doc(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One structural mutation of a parsed topology (a value of the wrong kind or range,
    an unknown key, a missing key, a dangling reference, a duplicate)."""
    kind = rng.choice(["top", "vm", "nic", "host", "link", "switch", "dup", "empty", "list"])
    vms, hosts, switches = doc.get("vm", []), doc.get("host", []), doc.get("switch", [])
    if kind == "top":
        doc[rng.choice(["name", "description", "vm", "host", "switch", "extra"])] = \
            _odd_value(rng)
    elif kind == "vm" and vms:
        vm = rng.choice(vms)
        key = rng.choice(["name", "nics", "memory_mb", "cpus", "bogus"])
        if rng.random() < 0.2:
            vm.pop("name", None)
        else:
            vm[key] = rng.choice([_odd_value(rng), 64, 999999, 0, 9, -4, "vm 1", "a" * 40])
    elif kind == "nic" and vms:
        nic = rng.choice(rng.choice(vms).get("nics") or [{}])
        nic[rng.choice(["switch", "model", "ip", "bw", "delay", "loss", "mac"])] = rng.choice(
            [_odd_value(rng), "rtl8139", "nosuch", -5, 0, 200, "10xs", "fast", 1e9])
    elif kind == "host" and hosts:
        host = rng.choice(hosts)
        host[rng.choice(["name", "links", "cpus"])] = _odd_value(rng)
    elif kind == "link" and hosts:
        link = rng.choice(rng.choice(hosts).get("links") or [{}])
        link[rng.choice(["switch", "ip", "bw", "delay", "loss"])] = rng.choice(
            [_odd_value(rng), "nosuch", -1, 101, "1 sec"])
    elif kind == "switch" and switches:
        rng.choice(switches)["name"] = rng.choice([_odd_value(rng), "vm1", "h1", "s1"])
    elif kind == "dup":
        if vms and hosts:
            hosts[0]["name"] = vms[0]["name"]
    elif kind == "empty":
        doc.pop("vm", None)
        doc.pop("host", None)
    elif kind == "list":
        doc[rng.choice(["vm", "host", "switch"])] = rng.choice(
            [{"name": "x"}, "vm1", [1, 2], [[]]])
    return doc


def _toml_dump(value: Any) -> str:
    """Enough of a TOML writer for the mutated documents (inline tables and arrays)."""
    if value is None:
        return '"__none__"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_dump(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_dump(v)}' for k, v in value.items()) + "}"
    raise TypeError(type(value))


def _toml_document(doc: dict[str, Any]) -> str:
    return "\n".join(f'"{key}" = {_toml_dump(value)}' for key, value in doc.items()) + "\n"


def _mangle_text(text: str, rng: random.Random) -> bytes:
    """Broken syntax or encoding: TOML that must not parse, or bytes that are not text."""
    how = rng.choice(["cut", "insert", "garbage", "binary", "latin1", "dup_key", "empty",
                      "nul"])
    if how == "cut":
        return text[:rng.randrange(len(text))].encode()
    if how == "insert":
        at = rng.randrange(len(text))
        return (text[:at] + rng.choice(['"', "[[", "]", "=", "\\", "{", "\n[vm]\n"])
                + text[at:]).encode()
    if how == "garbage":
        return "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 400))).encode()
    if how == "binary":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
    if how == "latin1":
        return (text + '\n# caf\xe9\n').encode("latin-1") + b'\nname = "\xff\xfe"\n'
    if how == "dup_key":
        return (text + '\nname = "again"\n').encode()
    if how == "nul":
        return text.replace("vm1", "vm\0").encode()
    return b""


def topology_cases(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    base_text = DEFAULT_TOML.read_text()
    cases = []
    for i in range(count):
        if i % 3 == 0:
            cases.append(("syntax", _mangle_text(base_text, rng)))
        else:
            doc = _mutate_doc(tomllib.loads(base_text), rng)
            if rng.random() < 0.3:
                with contextlib.suppress(TypeError, AttributeError, IndexError, KeyError):
                    doc = _mutate_doc(doc, rng)  # the first one may have broken the shape
            cases.append(("structure", _toml_document(doc).encode()))
    return cases


def check_topologies(folder: Path, rng: random.Random, count: int,
                     outcomes: Outcomes) -> list[Path]:
    """Load each case like `lanalab up FILE` does; return the refused files."""
    from lab.errors import LabError
    from lab.topology.loader import load_topology

    refused = []
    for i, (kind, data) in enumerate(topology_cases(rng, count)):
        path = folder / f"case{i:04d}.toml"
        path.write_bytes(data)
        target = f"topology:{kind}"
        outcomes.tried[target] += 1
        try:
            load_topology(str(path))
            outcomes.accepted[target] += 1
        except LabError as exc:
            if str(exc).strip():
                outcomes.refused[target] += 1
                refused.append(path)
            else:
                outcomes.unclear.append(f"{path}: empty message")
        except Exception:  # noqa: BLE001 - any other exception is what we are looking for
            outcomes.crashes.append(f"{path} ({data[:80]!r}):\n{traceback.format_exc(limit=3)}")
    return refused


# ---- CLI arguments ---------------------------------------------------------------------
def _absent_run() -> str:
    from lab.runstate import run_base_dir

    while True:
        run_id = f"lab{secrets.token_hex(2)}"
        if not (run_base_dir() / run_id).exists():
            return run_id


def _weird(rng: random.Random) -> str:
    return rng.choice(["", " ", "-", "--", "x" * 5000, "ünï ✓", "$(reboot)", "../../..",
                       "a=b", "=", "vm1;ls", "\t", "-1", "1e999", "nan", "%s%n"])


def cli_cases(rng: random.Random, count: int, topology_files: list[Path],
              subcommands: list[str]) -> list[list[str]]:
    """Argument lists that must all be refused before anything happens on the host."""
    makers: list[Callable[[], list[str]]] = [
        lambda: [rng.choice(["frobnicate", "UP", "upp", "", "--", _weird(rng)])],
        lambda: [rng.choice(subcommands), f"--no-such-{rng.randrange(999)}"],
        lambda: [rng.choice(subcommands), "-Z"],
        lambda: ["up", f"/nonexistent/{secrets.token_hex(3)}.toml"],
        lambda: ["up", f"no-such-topology-{secrets.token_hex(2)}"],
        lambda: ["up", "--param", rng.choice(["n", "=3", "", "noequals"])],
        lambda: ["up", "default", "--param", "n=3"],
        lambda: ["up", str(rng.choice(topology_files))] if topology_files else ["up", "-Z"],
        lambda: ["exec", "--run", _absent_run(), _weird(rng) or "vm1", "--", "true"],
        lambda: ["exec", "--timeout", rng.choice(["abc", "", "1e"]), "vm1", "--", "true"],
        lambda: ["console", "--run", _absent_run(), rng.choice(["vm1", _weird(rng)])],
        lambda: ["console"],
        lambda: ["down", "--run", _absent_run()],
        lambda: ["capture", "--run", _absent_run(), "vm1", "-w", "/tmp/lanalab-fuzz.pcap"],
        lambda: ["capture", "vm1", "-w", "/tmp/x.pcap", "-c", rng.choice(["x", "1.5", ""])],
        lambda: ["capture", "vm1"],
        lambda: ["image", rng.choice(["", "burn", "--keep"])],
        lambda: ["image", "prune", "--keep", rng.choice(["x", "", "1.5"])],
        lambda: ["image", "import", f"/nonexistent/{secrets.token_hex(3)}.tar.zst"],
        lambda: ["image", "export", "--image", f"nosuch{secrets.token_hex(3)}",
                 f"/tmp/lanalab-fuzz-{secrets.token_hex(3)}.tar.zst"],
        lambda: ["passthrough", "check", rng.choice(["zz:00.0", "0000:00:99.9", _weird(rng)]),
                 "--root", f"/nonexistent/{secrets.token_hex(3)}"],
        lambda: ["passthrough"],
        lambda: ["exec", "--run", _absent_run()],
    ]
    return [rng.choice(makers)() for _ in range(count)]


def run_cli_in_process(argv: list[str]) -> tuple[int | None, str, str | None]:
    """(exit code, output, traceback or None), as `python -m lab.cli ARGV` would end."""
    from lab.cli import main

    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code: int | None = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if exc.code is not None and not isinstance(exc.code, int):
            err.write(str(exc.code))
    except BaseException:  # noqa: BLE001 - an escaping exception is a traceback for the user
        return None, err.getvalue(), traceback.format_exc(limit=4)
    return code, err.getvalue() + out.getvalue(), None  # some commands report on stdout


def check_cli(cases: list[list[str]], outcomes: Outcomes) -> None:
    for argv in cases:
        target = f"cli:{argv[0] if argv and argv[0].isalpha() else 'other'}"
        outcomes.tried[target] += 1
        code, stderr, trace = run_cli_in_process(argv)
        shown = " ".join(a[:40] for a in argv)
        if trace is not None:
            outcomes.crashes.append(f"lanalab {shown}:\n{trace}")
        elif code in (1, 2) and stderr.strip():
            outcomes.refused[target] += 1
        elif code == 0:
            outcomes.accepted[target] += 1
            outcomes.unclear.append(f"lanalab {shown}: exit 0 for bad input")
        else:
            outcomes.unclear.append(f"lanalab {shown}: exit {code}, stderr {stderr[:200]!r}")
