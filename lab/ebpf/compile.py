"""Compile restricted C (kernel/xdp/*.bpf.c) into BPF objects on the host, before any VM
boots, cached by digest under $LANALAB_CACHE/ebpf/<digest>/<name>.bpf.o.

The digest covers the program's source, the headers beside it (*.bpf.h), clang's version
and the flags: an unchanged program is never compiled twice. When clang refuses a program,
the LabError names the first `file:line: error` and keeps clang's own lines.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.grading import buildas

REPO_ROOT = Path(__file__).resolve().parents[2]
PROGRAMS_DIR = REPO_ROOT / "kernel" / "xdp"
CACHE_ENV = "LANALAB_CACHE"
DEFAULT_CACHE = Path("/var/cache/lanalab")
# -g: BTF, which libbpf (iproute2's loader) needs for the maps; v3: 32-bit jumps (6.1 has it)
CFLAGS = ("-O2", "-g", "-Wall", "-target", "bpf", "-mcpu=v3")
TOOLCHAIN_HINT = ("install clang and libbpf-dev (scripts/setup-host.sh does: they are in "
                  "scripts/host-packages.txt)")
_ERROR_LINE = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):(?:\d+:)?\s*(?:fatal )?error: "
                         r"(?P<msg>.*)$", re.MULTILINE)


@dataclass(frozen=True)
class BpfObject:
    name: str  # the program's stem: xdp_drop for kernel/xdp/xdp_drop.bpf.c
    path: Path  # the cached object
    digest: str
    compiled: bool  # False: taken from the cache


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV, str(DEFAULT_CACHE))) / "ebpf"


def program_name(source: Path) -> str:
    return source.name.removesuffix(".c").removesuffix(".bpf")


def program_sources(programs_dir: Path = PROGRAMS_DIR) -> list[Path]:
    return sorted(programs_dir.glob("*.bpf.c"))


def find_clang() -> str:
    clang = shutil.which("clang")
    if clang is None:
        raise LabError("no clang on this host: the eBPF programs (kernel/xdp/) cannot be "
                       "compiled", hint=TOOLCHAIN_HINT)
    return clang


def _clang_version(clang: str) -> str:
    out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "?"


def _include_dirs() -> list[str]:
    """asm/types.h lives under the multiarch folder, which `-target bpf` does not search."""
    gcc = shutil.which("gcc")
    arch = ""
    if gcc:
        arch = subprocess.run([gcc, "-print-multiarch"], capture_output=True, text=True,
                              check=False).stdout.strip()
    return [f"-I/usr/include/{arch}"] if arch and Path(f"/usr/include/{arch}").is_dir() else []


def source_digest(source: Path, clang_version: str, flags: list[str]) -> str:
    digest = hashlib.sha256(f"{clang_version}\0{' '.join(flags)}\0".encode())
    for path in [source, *sorted(source.parent.glob("*.bpf.h"))]:
        digest.update(f"{path.name}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def compile_program(source: Path, cache: Path | None = None) -> BpfObject:
    """The BPF object of `source` (kernel/xdp/NAME.bpf.c), compiled unless cached."""
    if not source.is_file():
        raise LabError(f"no eBPF program {source}", hint=f"the programs are {PROGRAMS_DIR}/"
                       "*.bpf.c")
    clang = find_clang()
    flags = [*CFLAGS, *_include_dirs()]
    user = buildas.build_user()
    # who compiled is part of the key: an object root built never serves a participant
    who = [f"as={user.env_value()}"] if user is not None else []
    digest = source_digest(source, _clang_version(clang), flags + who)
    name = program_name(source)
    folder = (cache or cache_root()) / digest[:16]
    target = folder / f"{name}.bpf.o"
    if target.is_file():
        return BpfObject(name, target, digest, compiled=False)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".o", dir=folder)
    os.close(fd)
    try:
        _compile(clang, flags, source, Path(tmp), user)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return BpfObject(name, target, digest, compiled=True)


def _compile(clang: str, flags: list[str], source: Path, out: Path,
             user: buildas.BuildUser | None) -> None:
    """clang on `source` into `out`; as `user` (LANALAB_BUILD_AS, set by the lab service),
    from a copy of the source and its headers in that user's own folder."""
    if user is None:
        proc = subprocess.run([clang, *flags, "-c", str(source), "-o", str(out)],
                              capture_output=True, text=True, check=False, timeout=300)
        if proc.returncode != 0:
            raise compile_error(source, proc.stderr)
        return
    with buildas.build_folder(user) as build:
        copies = []
        for path in [source, *sorted(source.parent.glob("*.bpf.h"))]:
            shutil.copyfile(path, build / path.name)
            copies.append(build / path.name)
        buildas.hand_over(copies, user)
        built = build / "out.o"
        proc = subprocess.run([*user.prefix(), clang, *flags, "-c", source.name, "-o",
                               built.name], cwd=build, capture_output=True, text=True,
                              check=False, timeout=300)
        if proc.returncode != 0:
            raise compile_error(source, proc.stderr.replace(f"{build}/", ""))
        if not buildas.take_back(built, out):
            raise LabError(f"clang made no object for {source.name}")


def compile_error(source: Path, stderr: str) -> LabError:
    """clang's complaint as a LabError: `file:line: error: ...` first, then clang's lines."""
    first = _ERROR_LINE.search(stderr)
    where = f"{first['file']}:{first['line']}" if first else str(source)
    what = first["msg"].strip() if first else "clang failed"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    tail = "\n".join(lines[:20]) + ("\n..." if len(lines) > 20 else "")
    hint = "fix the program and run again (restricted C for BPF: see kernel/xdp/README.md)"
    if "file not found" in what:
        hint = f"a header is missing: {TOOLCHAIN_HINT}"
    return LabError(f"clang cannot compile the eBPF program {source.name}: {where}: error: "
                    f"{what}\n{tail}", hint=hint)


def compile_all(programs_dir: Path = PROGRAMS_DIR,
                cache: Path | None = None) -> dict[str, BpfObject]:
    """Every kernel/xdp/*.bpf.c, by program name."""
    sources = program_sources(programs_dir)
    if not sources:
        raise LabError(f"no eBPF programs (*.bpf.c) in {programs_dir}")
    return {program_name(s): compile_program(s, cache) for s in sources}
