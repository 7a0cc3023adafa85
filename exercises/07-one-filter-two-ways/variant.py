"""Per-student parameter of exercise 7: the UDP port P both filters pass.
`lanalab grade 7 --student ID --show-variant` prints it."""

from __future__ import annotations

UDP_PORTS = [53, 67, 123, 161, 514, 1812, 4789, 5353, 6343, 9999]

DEFAULT = {"udp_port": 5353}


def derive(seed: int) -> dict[str, int]:
    return {"udp_port": UDP_PORTS[seed % len(UDP_PORTS)]}
