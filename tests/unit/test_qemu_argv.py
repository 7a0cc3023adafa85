"""The qemu command line builder: pure, so checked without starting qemu."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.vm.qemu_argv import Nic, VMFiles, qemu_argv, stable_mac

FILES = VMFiles.in_folder(Path("/run/lanalab/lab1234"), "h1")


def _argv(**kw: object) -> list[str]:
    args: dict[str, object] = dict(name="h1", kernel=Path("/img/vmlinuz"),
                                   initrd=Path("/img/initrd.img"),
                                   cmdline="console=ttyS0 root=/dev/vda quiet loglevel=4",
                                   files=FILES, nics=[], accel_args=["-accel", "tcg"])
    args.update(kw)
    return qemu_argv(**args)  # type: ignore[arg-type]


def _value(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_base_command_line() -> None:
    argv = _argv()
    assert argv[0] == "qemu-system-x86_64"
    for flag in ("-nodefaults", "-nographic", "-no-reboot"):
        assert flag in argv
    assert _value(argv, "-m") == ["512"] and _value(argv, "-smp") == ["1"]
    assert _value(argv, "-accel") == ["tcg"]
    [append] = _value(argv, "-append")
    assert append.endswith("loglevel=4 loglevel=5 lana.hostname=h1")  # later value wins
    assert "file=/run/lanalab/lab1234/h1.qcow2,if=virtio,format=qcow2,cache=unsafe" in argv
    assert "file,id=console,path=/run/lanalab/lab1234/h1.console.log" in argv
    assert "virtserialport,chardev=qga,name=org.qemu.guest_agent.0" in argv
    assert any(v.startswith("unix:/run/lanalab/lab1234/h1.qmp.sock") for v in argv)
    assert "-virtfs" not in argv and "-netdev" not in argv


def test_nics_get_models_stable_macs_and_no_option_rom() -> None:
    argv = _argv(nics=[Nic("lab1234-t0", "virtio"),
                       Nic("lab1234-t1", "e1000e", "02:00:00:00:00:09")])
    assert _value(argv, "-netdev") == [
        "tap,id=net0,ifname=lab1234-t0,script=no,downscript=no",
        "tap,id=net1,ifname=lab1234-t1,script=no,downscript=no"]
    devices = [d for d in _value(argv, "-device") if "netdev=" in d]
    assert devices == [f"virtio-net-pci,netdev=net0,mac={stable_mac('h1', 0)},romfile=",
                       "e1000e,netdev=net1,mac=02:00:00:00:00:09,romfile="]


def test_stable_mac_is_local_unicast_and_distinct() -> None:
    macs = {stable_mac(vm, i) for vm in ("h1", "h2") for i in range(4)}
    assert len(macs) == 8
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01
    assert stable_mac("h1", 0) == stable_mac("h1", 0)


def test_share_and_comma_escaping() -> None:
    argv = _argv(share=Path("/src/a,b"), memory_mb=1024, cpus=2)
    assert _value(argv, "-virtfs") == [
        "local,path=/src/a,,b,mount_tag=lab,security_model=none,id=labshare"]
    assert _value(argv, "-m") == ["1024"] and _value(argv, "-smp") == ["2"]


def test_unknown_nic_model_is_refused() -> None:
    with pytest.raises(BackendError, match="NIC model `rtl8139`") as err:
        _argv(nics=[Nic("t0", "rtl8139")])
    assert err.value.hint and "e1000e" in err.value.hint
