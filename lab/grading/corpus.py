"""Frames for graders' traffic corpora, built with scapy. Every frame is at least 64
bytes, so what the guest counts is exactly len(frame) (the tag of an 802.1Q frame is taken
off by the guest kernel before LANA sees it: 4 bytes less)."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP, IPOption
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

SRC_MAC = "02:1a:4a:00:00:64"  # the corpus sender (locally administered)
SRC_IP = "10.0.0.100"


def _fill(frame: bytes, size: int) -> bytes:
    if len(frame) > size:
        raise ValueError(f"frame of {len(frame)} bytes does not fit in {size}")
    return frame + bytes(size - len(frame))


def udp(dst_mac: str, dst_ip: str, dport: int, size: int = 100, sport: int = 40000,
        ip_options: bool = False) -> bytes:
    ip = IP(src=SRC_IP, dst=dst_ip, options=[IPOption(b"\x01\x01\x01\x00")] if ip_options
            else [])
    frame = Ether(dst=dst_mac, src=SRC_MAC) / ip / UDP(sport=sport, dport=dport)
    return _sized(frame, size)


def tcp(dst_mac: str, dst_ip: str, dport: int, size: int = 100, sport: int = 40001,
        option_bytes: bytes | None = None) -> bytes:
    """option_bytes: 4 bytes of IPv4 options (IHL 6), e.g. to plant a decoy port number
    where a filter with a fixed offset would look."""
    ip = IP(src=SRC_IP, dst=dst_ip, options=[IPOption(option_bytes)] if option_bytes else [])
    frame = Ether(dst=dst_mac, src=SRC_MAC) / ip / TCP(sport=sport, dport=dport, flags="S")
    return _sized(frame, size)


def arp(dst_mac: str, target_ip: str, reply: bool = False, size: int = 64) -> bytes:
    frame = Ether(dst=dst_mac, src=SRC_MAC) / ARP(op=2 if reply else 1, hwsrc=SRC_MAC,
                                                   psrc=SRC_IP, pdst=target_ip)
    return _fill(bytes(frame), size)


def ipv6_udp(dst_mac: str, dport: int, size: int = 100) -> bytes:
    """A well-formed IPv6 datagram (the host bridge may drop malformed ones)."""
    frame = (Ether(dst=dst_mac, src=SRC_MAC) / IPv6(src="fd00::64", dst="fd00::1")
             / UDP(sport=40000, dport=dport))
    return _sized(frame, size)


def ethertype(dst_mac: str, type_: int, size: int = 100) -> bytes:
    """A frame of an EtherType no host component parses (e.g. 0x88b5, local experimental)."""
    return _fill(bytes(Ether(dst=dst_mac, src=SRC_MAC, type=type_)), size)


def vlan(dst_mac: str, vid: int, prio: int = 0, inner_type: int = 0x88B5,
         size: int = 100) -> bytes:
    frame = Ether(dst=dst_mac, src=SRC_MAC) / Dot1Q(vlan=vid, prio=prio, type=inner_type)
    return _fill(bytes(frame), size)


def _sized(frame: Ether, size: int) -> bytes:
    """Grow the payload so the frame is `size` bytes with consistent IP/UDP lengths."""
    head = len(bytes(frame))
    if size > head:
        frame = frame / Raw(bytes(size - head))
    return _fill(bytes(frame), size)
