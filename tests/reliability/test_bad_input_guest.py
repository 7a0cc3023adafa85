"""Bad-input campaign inside a guest: random and malformed netlink messages, garbage in
every /proc/net/lana file, malformed BPF programs, random fbctl and vlink arguments, the
settings of the protocol blocks (arp, icmp_echo, udp, ratelimit: each refusal with the
predicted errno and message, each accepted value read back as set), all
while trafgen floods through a bpf block (lab/reliability/fuzz_guest.py runs in the guest).

Figures: inputs tried per target, crashes (must be 0), each refusal with an errno or a
message. Seed and length: LANALAB_RELIABILITY_SEED, LANALAB_RELIABILITY_SECONDS.
"""

from __future__ import annotations

import os
import random

import pytest

from lab.reliability.guestvm import reliability_guest, report, run_guest_program
from lab.reliability.settings import ALL_CASES, BLOCKS
from lab.reliability.storm import ENGINES

pytestmark = [pytest.mark.vm, pytest.mark.slow]

SECONDS = float(os.environ.get("LANALAB_RELIABILITY_SECONDS", "40"))
ENGINE_SECONDS = SECONDS / 4  # each other engine model: a shorter campaign in one guest


def test_bad_input_campaign_in_guest(image) -> None:
    seed = int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))
    print(f"\n[reliability] guest bad-input seed {seed} "
          f"(rerun: LANALAB_RELIABILITY_SEED={seed})")
    with reliability_guest(image) as vm:
        figures = run_guest_program(vm, "fuzz_guest", ["--seed", str(seed),
                                                       "--seconds", str(SECONDS)],
                                    timeout=SECONDS * 4 + 300)
        vm.check_console()  # raises on any Oops/BUG/WARNING the console saw
        alive = vm.exec(["cat", "/proc/net/lana/fblocks"], timeout=30)
    figures["crashes"] = 0  # reaching here: no Oops, no WARNING, the guest still answers
    report("bad_input_guest", figures)
    assert alive.exit_code == 0
    assert figures["problems"] == [], figures["problems"]
    assert figures["kernel_trouble"] == [], figures["kernel_trouble"]
    for target, tried in figures["tried"].items():
        refused = figures["rejected"].get(target, 0)
        answered = figures["rejected_with_errno_or_message"].get(target, 0)
        dropped = figures["no_answer"].get(target, 0)  # broken netlink headers only
        assert refused == answered + dropped, f"{target}: refusals without errno/message"
        assert tried > 0
    assert set(figures["tried"]) >= {"netlink", "bpf", "fbctl", "vlink", "procfs:fblocks",
                                     "procfs:fblock/f1", "procfs:fblock/c1"}
    # the protocol blocks' settings (lab/reliability/settings.py's table): every case
    for type_ in BLOCKS:
        assert figures["tried"].get(f"settings:{type_}", 0) + figures["tried"].get(
            f"settings:{type_}:fbctl", 0) >= len(ALL_CASES), type_
    assert figures["frames_through_bpf_to_counter"] > 0, "no traffic ran through the filter"


def test_bad_input_on_every_engine_model(image) -> None:
    """The campaign again on each other engine model (switched at run time, one guest):
    the flood goes through the model's queues while the inputs hit the core."""
    seed = int(os.environ.get("LANALAB_RELIABILITY_SEED", random.randrange(1 << 30)))
    print(f"\n[reliability] bad input on every engine, seed {seed}")
    runs = {}
    with reliability_guest(image) as vm:
        for engine in (e for e in ENGINES if e != "softirq"):
            figures = run_guest_program(vm, "fuzz_guest", [
                "--seed", str(seed), "--seconds", str(ENGINE_SECONDS), "--engine", engine],
                timeout=ENGINE_SECONDS * 4 + 300)
            vm.check_console()
            assert figures["engine"] == engine, figures["engine"]
            assert figures["problems"] == [], (engine, figures["problems"])
            assert figures["kernel_trouble"] == [], (engine, figures["kernel_trouble"])
            assert figures["frames_through_bpf_to_counter"] > 0, engine
            runs[engine] = {"tried": sum(figures["tried"].values()),
                            "frames": figures["frames_through_bpf_to_counter"]}
            print(f"[reliability] bad input on {engine}: {runs[engine]}")
        alive = vm.exec(["cat", "/proc/net/lana/fblocks"], timeout=30)
    assert alive.exit_code == 0
    report("bad_input_engines", {"seed": seed, "seconds_each": ENGINE_SECONDS, "runs": runs})
