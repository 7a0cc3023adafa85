"""Per-student parameter of exercise 8: the EtherType of the flood the guard must drop
(the legitimate flow is always 0x88b5). `lanalab grade 8 --student ID --show-variant`."""

from __future__ import annotations

FLOOD_ETHERTYPES = [0x88B6, 0x88B7, 0x88B8, 0x88B9, 0x88D2, 0x88D7, 0x88DC, 0x88E3,
                    0x88F5, 0x88F6]

DEFAULT = {"flood_ethertype": 0x88B6}


def derive(seed: int) -> dict[str, int]:
    return {"flood_ethertype": FLOOD_ETHERTYPES[seed % len(FLOOD_ETHERTYPES)]}
