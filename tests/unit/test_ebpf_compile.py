"""lab.ebpf.compile with the real clang: the programs of kernel/xdp/ compile into BPF
objects, a second compile comes from the cache, and a broken program's error names its
file and line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.ebpf.compile import PROGRAMS_DIR, compile_all, compile_program
from lab.errors import LabError

pytestmark = pytest.mark.skipif(shutil.which("clang") is None,
                                reason="no clang (scripts/setup-host.sh installs it)")
EXPECTED = {"xdp_drop": "xdp", "tc_drop": "tc", "xdp_parse_drop": "xdp", "xdp_cbpf": "xdp"}


def _sections(obj: Path) -> str:
    return subprocess.run(["llvm-objdump", "-h", str(obj)], capture_output=True, text=True,
                          check=True).stdout


def test_every_program_compiles_to_a_bpf_object(tmp_path: Path) -> None:
    objects = compile_all(cache=tmp_path)
    assert set(EXPECTED) <= set(objects)
    for name, section in EXPECTED.items():
        obj = objects[name]
        assert obj.compiled and obj.path.is_file(), obj
        head = obj.path.read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and head[18] == 247  # e_machine EM_BPF
        sections = _sections(obj.path)
        assert f" {section} " in sections and ".BTF" in sections and "license" in sections
        assert obj.path.is_relative_to(tmp_path)


def test_an_unchanged_program_comes_from_the_cache(tmp_path: Path) -> None:
    source = PROGRAMS_DIR / "xdp_drop.bpf.c"
    first = compile_program(source, cache=tmp_path)
    mtime = first.path.stat().st_mtime_ns
    again = compile_program(source, cache=tmp_path)
    assert not again.compiled and again.path == first.path
    assert again.path.stat().st_mtime_ns == mtime


def test_a_changed_program_gets_a_new_object(tmp_path: Path) -> None:
    folder = tmp_path / "src"
    shutil.copytree(PROGRAMS_DIR, folder, ignore=shutil.ignore_patterns("*.md"))
    source = folder / "xdp_drop.bpf.c"
    first = compile_program(source, cache=tmp_path / "cache")
    source.write_text(source.read_text().replace("XDP_DROP;", "XDP_PASS;"))
    second = compile_program(source, cache=tmp_path / "cache")
    assert second.compiled and second.digest != first.digest
    assert second.path != first.path and first.path.is_file()
    # a shared header is part of every program's digest
    (folder / "drops.bpf.h").write_text((folder / "drops.bpf.h").read_text() + "\n")
    assert compile_program(source, cache=tmp_path / "cache").compiled


def test_a_broken_program_names_file_line_and_what_to_do(tmp_path: Path) -> None:
    source = tmp_path / "broken.bpf.c"
    source.write_text('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n\n'
                      'SEC("xdp")\nint broken(struct xdp_md *ctx)\n{\n'
                      '\treturn XDP_DORP;\n}\n')
    with pytest.raises(LabError) as err:
        compile_program(source, cache=tmp_path / "cache")
    message = str(err.value)
    assert f"{source}:7: error:" in message, message
    assert "XDP_DORP" in message and "broken.bpf.c" in message
    assert err.value.hint and "fix the program" in err.value.hint
    assert not list((tmp_path / "cache").rglob("*.o"))  # nothing half-written is cached


def test_a_missing_header_points_at_the_packages(tmp_path: Path) -> None:
    source = tmp_path / "nohdr.bpf.c"
    source.write_text("#include <bpf/no_such_header.h>\nint x;\n")
    with pytest.raises(LabError) as err:
        compile_program(source, cache=tmp_path / "cache")
    assert f"{source}:1: error:" in str(err.value)
    assert err.value.hint and "libbpf-dev" in err.value.hint
