"""Per-student parameters of exercise 6: the chain length N (6..12 fwd blocks).
`lanalab grade 6 --student ID --show-variant` prints it."""

from __future__ import annotations

DEFAULT = {"blocks": 10}


def derive(seed: int) -> dict[str, int]:
    return {"blocks": 6 + seed % 7}
