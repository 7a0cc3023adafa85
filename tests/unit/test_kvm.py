"""Accelerator choice: forcing, caching, and (where qemu and /dev/kvm exist) a real probe."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lab.errors import BackendError
from lab.vm import kvm


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LANALAB_CACHE", str(tmp_path))
    monkeypatch.delenv("LANALAB_ACCEL", raising=False)
    return tmp_path


def test_forced_accelerator_skips_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANALAB_ACCEL", "tcg")
    verdict = kvm.accel_verdict()
    assert (verdict.accel, verdict.source) == ("tcg", "forced")
    assert verdict.qemu_args() == ["-accel", "tcg"]
    monkeypatch.setenv("LANALAB_ACCEL", "kvm")
    assert kvm.accel_verdict().qemu_args() == ["-accel", "kvm", "-cpu", "host"]


def test_unknown_forced_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANALAB_ACCEL", "hvf")
    with pytest.raises(BackendError, match="LANALAB_ACCEL=`hvf`") as err:
        kvm.accel_verdict()
    assert err.value.hint


needs_kvm_device = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK) or shutil.which(kvm.QEMU) is None,
    reason="needs /dev/kvm and qemu-system-x86_64")


@needs_kvm_device
def test_probe_runs_once_then_comes_from_the_cache(private_cache: Path) -> None:
    first = kvm.accel_verdict(use_cache=True)
    assert first.source == "probe" and first.probe_seconds is not None
    assert first.probe_seconds < kvm.PROBE_BUDGET_S + 2
    assert list(private_cache.glob("kvm-probe-*.json"))
    second = kvm.accel_verdict()
    assert second.source == "cache" and second.accel == first.accel
    assert first.accel in second.describe()
