"""Per-student parameters of exercise 3: which UDP port, TCP port and VLAN id the filters
must pass. `lanalab grade 03 --student ID --show-variant` prints them."""

from __future__ import annotations

UDP_PORTS = [53, 123, 161, 514, 1812, 4789, 5353, 6343, 9999]
TCP_PORTS = [22, 25, 80, 443, 3306, 5432, 6379, 8080, 8443]

DEFAULT = {"udp_port": 5353, "tcp_port": 8080, "vlan_id": 42}


def derive(seed: int) -> dict[str, int]:
    return {"udp_port": UDP_PORTS[seed % len(UDP_PORTS)],
            "tcp_port": TCP_PORTS[(seed // 7) % len(TCP_PORTS)],
            "vlan_id": 2 + (seed // 101) % 3999}
