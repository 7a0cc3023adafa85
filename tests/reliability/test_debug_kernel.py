"""The debug image (lab.image.debug_kernel) really runs a checking kernel, and the LANA
modules leave KASAN, lockdep and kmemleak quiet through a whole stack's life.

Skipped unless LANALAB_IMAGE_DIR names a debug image (images/debug/README.md):

    LANALAB_IMAGE_DIR=$(python -m lab.image.debug_kernel image --print-dir) \\
        .venv/bin/python -m pytest tests/reliability -m vm
"""

from __future__ import annotations

import pytest
from debug_guest import debug_locks, debug_manifest, kmemleak_scan, mount_debugfs, sh

from lab.reliability.guestvm import reliability_guest, report

pytestmark = [pytest.mark.vm, pytest.mark.slow,
              pytest.mark.skipif(debug_manifest() is None,
                                 reason="LANALAB_IMAGE_DIR is not a debug image "
                                        "(python -m lab.image.debug_kernel image)")]

BLOCKS = "fb_eth fb_fwd fb_tee fb_counter fb_bpf fb_mirror fb_xconnect fb_pflana fb_ethvlink"
# an instance of every block type; frames through vb -> f1 (bpf) -> c1 (counter)
STACK = ("vlink ethernet hook vb && fbctl add f1 bpf && fbctl add c1 counter "
         "&& fbctl add t1 tee && fbctl add m1 mirror && fbctl add w1 fwd "
         "&& fbctl add x1 xconnect && fbctl bind f1 vb && fbctl bind c1 f1")
TRAFFIC = ("cd /tmp && trafgen --dev va --num 500 --cpus 1 --no-cpu-stats "
           "'{ fill(0xff, 6), 0x02, 0, 0, 0, 0, 1, c16(0x0800), fill(0xca, 86) }'")
TEARDOWN = ("fbctl unbind c1 f1 && fbctl unbind f1 vb "
            "&& for b in x1 w1 m1 t1 c1 f1; do fbctl rm $b || exit 1; done "
            "&& vlink ethernet unhook vb")


def test_debug_kernel_checks_and_lana_lifecycle_is_clean(image) -> None:
    manifest = debug_manifest()
    assert manifest is not None
    figures: dict[str, object] = {"kernel_release": manifest["kernel_release"]}
    with reliability_guest(image, cpus=2) as vm:
        figures["boot_seconds"] = round(vm.boot_seconds or 0, 1)
        release = sh(vm, "uname -r").strip()
        assert release == manifest["kernel_release"] and release.endswith("-lanadebug")
        dmesg = sh(vm, "dmesg")
        assert "KernelAddressSanitizer initialized" in dmesg, "no KASAN in this kernel"
        mount_debugfs(vm)
        sh(vm, "test -e /sys/kernel/debug/kmemleak")  # kmemleak on, not disabled at boot
        assert debug_locks(vm) == 1, "lockdep is off (not built in, or it already fired)"

        sh(vm, f"modprobe -a lana {BLOCKS} && ip link add name va type veth peer name vb "
               "&& ip link set dev va up && ip link set dev vb up")
        sh(vm, STACK)
        sh(vm, TRAFFIC, timeout=300)
        counted = sh(vm, "cat /proc/net/lana/fblock/c1")
        sh(vm, TEARDOWN)
        # modules still loaded: kmemleak names their frames [lana], [fb_*]
        total_loaded, leaks_loaded = kmemleak_scan(vm)
        unload = " ".join(reversed(BLOCKS.split()))  # blocks before the core they use
        sh(vm, f"for m in {unload} lana; do rmmod $m || exit 1; done && ip link del va")
        # unloaded: leaked objects show frames that no longer resolve to a symbol
        total_unloaded, leaks_unloaded = kmemleak_scan(vm)
        locks_after = debug_locks(vm)
        trouble = [line for line in sh(vm, "dmesg").splitlines()[len(dmesg.splitlines()):]
                   if any(word in line for word in ("KASAN", "BUG:", "WARNING:", "circular locking",
                                                     "inconsistent lock", "suspicious RCU"))]
        vm.check_console()
    figures.update({"counter_c1": " ".join(counted.split()),
                    "kmemleak_unreferenced_total": total_unloaded,
                    "kmemleak_lana_leaks": len(leaks_loaded) + len(leaks_unloaded),
                    "debug_locks_after": locks_after, "kernel_trouble": trouble})
    report("debug_kernel", figures)
    assert leaks_loaded == [] and leaks_unloaded == [], leaks_loaded + leaks_unloaded
    assert trouble == [], trouble
    assert locks_after == 1, "lockdep reported something (see dmesg) and turned itself off"
    assert counted.split() and int(counted.split()[0]) > 0, f"no frame reached c1: {counted}"
