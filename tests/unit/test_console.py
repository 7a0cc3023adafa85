"""Console watcher against canned guest console logs written the way qemu writes them."""

from __future__ import annotations

from pathlib import Path

from lab.vm.console import ConsoleWatcher, find_problems

BOOT = """\
[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)
[    0.812345] virtio_net virtio1 eth0: renamed
lanalab: guest ready
"""

WARNING = """\
[   12.001000] ------------[ cut here ]------------
[   12.001100] WARNING: CPU: 0 PID: 231 at net/lana/core.c:88 lana_bind+0x4c/0x90 [lana]
[   12.001200] Modules linked in: fb_counter(O) lana(O)
[   12.001300] CPU: 0 PID: 231 Comm: fbctl Tainted: G           O       6.1.0-56-amd64 #1
[   12.001400] RIP: 0010:lana_bind+0x4c/0x90 [lana]
[   12.001500] Call Trace:
[   12.001600]  <TASK>
[   12.001700]  genl_rcv_msg+0x1a0/0x2c0
[   12.001800]  </TASK>
[   12.001900] ---[ end trace 0000000000000000 ]---
"""

PANIC = """\
[    2.600000] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)
[    2.600100] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0-56-amd64 #1
[    2.600200] Call Trace:
[    2.600300]  <TASK>
[    2.600400]  dump_stack_lvl+0x44/0x5c
[    2.600500]  </TASK>
[    2.601269] Kernel Offset: 0x18400000 from 0xffffffff81000000
[    2.601300] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---
"""


def test_clean_boot_has_no_problems() -> None:
    assert find_problems(BOOT.splitlines()) == []


def test_warning_block_is_cut_from_cut_here_to_end_marker() -> None:
    lines = (BOOT + WARNING + "guest shell output\n").splitlines()
    [problem] = find_problems(lines)
    assert problem.headline.startswith("WARNING: CPU: 0 PID: 231 at net/lana/core.c:88")
    assert problem.trace.splitlines()[0].endswith("[ cut here ]------------")
    assert problem.trace.splitlines()[-1].endswith("---[ end trace 0000000000000000 ]---")
    assert "genl_rcv_msg" in problem.trace
    assert problem.line_no == 5


def test_panic_is_one_block_not_two() -> None:
    problems = find_problems(PANIC.splitlines())
    assert [p.headline.split(" -")[0] for p in problems] == ["Kernel panic"]
    assert problems[0].is_panic
    assert "Kernel Offset" in problems[0].trace


def test_bare_triggers_are_detected() -> None:
    for message in ("BUG: kernel NULL pointer dereference, address: 0000000000000008",
                    "Oops: 0002 [#1] PREEMPT SMP NOPTI",
                    "general protection fault, probably for non-canonical address",
                    "Call Trace:"):
        [problem] = find_problems([f"[    5.000000] {message}", "user text"])
        assert problem.headline == message


def test_lookalikes_are_not_problems() -> None:
    lines = ["[    1.000000] ACPI: no BUG: here", "WARNING: printed by a user program",
             "[    1.100000] lana: registered, no warnings"]
    assert find_problems(lines) == []


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_watcher_waits_for_a_block_to_finish(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    watcher = ConsoleWatcher(log)
    assert watcher.poll() == []  # no file yet
    _append(log, BOOT)
    assert watcher.poll() == []
    head, rest = WARNING[:400], WARNING[400:]
    _append(log, head)
    assert watcher.poll() == []  # the kernel is still printing the block
    _append(log, rest)
    [problem] = watcher.poll()
    assert "end trace" in problem.trace and "Modules linked in" in problem.trace
    assert watcher.poll() == []  # reported once
    _append(log, PANIC)
    assert [p.is_panic for p in watcher.poll()] == [True]
    assert len(watcher.problems) == 2


def test_final_poll_reports_an_unfinished_block(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text(BOOT + "[    9.000000] BUG: unable to handle page fault\n[    9.1] RIP: x\n")
    watcher = ConsoleWatcher(log)
    assert watcher.poll() == []
    [problem] = watcher.poll(final=True)
    assert not problem.complete and "RIP" in problem.trace


def test_tail_returns_last_lines_including_partial(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("one\ntwo\nthree\nfour (no newline yet)")
    watcher = ConsoleWatcher(log)
    assert watcher.tail(2) == "three\nfour (no newline yet)"
    assert watcher.contains("two")
