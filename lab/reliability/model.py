"""The storm's model of what the LANA core should hold: instances, bindings, subscriptions.

Pure Python (runs in the guest). `predict()` says which errno a control operation must
give on the current state (docs/kernel/core.md), `apply()` records a successful one, and
`expected_fblocks()` is what /proc/net/lana/fblocks must show (names, types, order,
reference counts, ports and subscription edges, by name).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from lab.reliability import settings

# Ports per direction (ingress, egress) of each block type (kernel/blocks/README.md).
CAPACITY = {"fwd": (1, 1), "tee": (2, 2), "counter": (1, 1), "bpf": (1, 1),
            "mirror": (0, 1), "eth": (1, 0), "arp": (1, 1), "icmp_echo": (1, 1),
            "ratelimit": (1, 1), "ipv4": (8, 1), "classify": (8, 1)}
# udp (2 ingress ports, one for a udp block on top, one for anything else) is not modelled


@dataclass
class Expected:
    type: str
    refcnt: int
    ports: frozenset[tuple[str, str]]  # ("in"|"out", other name)
    subscriptions: frozenset[str]
    subscribers: frozenset[str]


@dataclass
class Model:
    types: dict[str, str] = field(default_factory=dict)  # name -> type, kernel list order
    binds: set[tuple[str, str]] = field(default_factory=set)  # (upper, lower)
    explicit: set[tuple[str, str]] = field(default_factory=set)  # (subscriber, publisher)

    # ---- derived state ----------------------------------------------------------------
    def sub_edges(self) -> set[tuple[str, str]]:
        edges = set(self.explicit)
        for upper, lower in self.binds:
            edges.add((upper, lower))
            edges.add((lower, upper))
        return edges

    def used(self, name: str) -> tuple[int, int]:
        """Ports in use: (ingress, egress)."""
        ingress = sum(1 for _u, lower in self.binds if lower == name)
        egress = sum(1 for upper, _l in self.binds if upper == name)
        return ingress, egress

    def reaches(self, start: str, goal: str) -> bool:
        """Does `start` reach `goal` going down the bindings?"""
        todo, seen = [start], set()
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node in seen:
                continue
            seen.add(node)
            todo.extend(lower for upper, lower in self.binds if upper == node)
        return False

    def fresh(self, name: str) -> bool:
        return not any(name in edge for edge in self.binds) and \
            not any(name in edge for edge in self.sub_edges())

    # ---- prediction: the errno the kernel must answer (0 = success) ----------------------
    def predict(self, op: str, a: str, b: str = "", type_: str = "", drop: bool = False,
                opt: str = "") -> int:
        t = self.types
        if op == "add":
            if a in t:
                return errno.EEXIST
            return 0 if type_ in CAPACITY else errno.ENOENT
        if a not in t or (op not in ("rm", "set") and b not in t):
            return errno.ENOENT
        if op == "rm":
            if any(a in edge for edge in self.binds):
                return errno.EBUSY
            if any(pub == a for _s, pub in self.sub_edges()):
                return errno.EBUSY
            return 0
        if op == "set":  # the protocol blocks' parsers: lab/reliability/settings.py
            if t[a] in settings.BLOCKS:
                return settings.predict(t[a], opt.encode() + b"\0").errno
            return 0
        if op == "bind":
            if a == b:
                return errno.EINVAL
            if (a, b) in self.binds:
                return errno.EEXIST
            if self.reaches(b, a):
                return errno.ELOOP
            if self.used(a)[1] >= CAPACITY[t[a]][1] or self.used(b)[0] >= CAPACITY[t[b]][0]:
                return errno.EBUSY
            return 0
        if op == "unbind":
            return 0 if (a, b) in self.binds else errno.ENOENT
        if op == "subscribe":
            if a == b:
                return errno.EINVAL
            return errno.EEXIST if (a, b) in self.explicit else 0
        if op == "unsubscribe":
            return 0 if (a, b) in self.explicit else errno.ENOENT
        if op == "replace":
            if a == b:
                return errno.EINVAL
            if not self.fresh(b):
                return errno.EBUSY
            if not drop:
                return 0 if t[a] == t[b] else errno.EINVAL
            ingress, egress = self.used(a)
            cap_in, cap_out = CAPACITY[t[b]]
            return 0 if ingress <= cap_in and egress <= cap_out else errno.EBUSY
        raise ValueError(f"unknown op {op}")

    # ---- effects of a successful operation ----------------------------------------------
    def apply(self, op: str, a: str, b: str = "", type_: str = "") -> None:
        if op == "add":
            self.types[a] = type_
        elif op == "rm":
            del self.types[a]
            self.explicit = {e for e in self.explicit if e[0] != a}
        elif op == "bind":
            self.binds.add((a, b))
        elif op == "unbind":
            self.binds.discard((a, b))
        elif op == "subscribe":
            self.explicit.add((a, b))
        elif op == "unsubscribe":
            self.explicit.discard((a, b))
        elif op == "replace":  # NEW (b) takes OLD's (a) IDP, edges and subscribers
            def rename(edge: tuple[str, str]) -> tuple[str, str]:
                return (b if edge[0] == a else edge[0], b if edge[1] == a else edge[1])
            self.binds = {rename(e) for e in self.binds}
            self.explicit = {rename(e) for e in self.explicit}
            del self.types[a]

    # ---- what /proc/net/lana/fblocks must show ------------------------------------------
    def expected(self) -> dict[str, Expected]:
        subs = self.sub_edges()
        out = {}
        for name, type_ in self.types.items():
            ports = {("out", lower) for upper, lower in self.binds if upper == name}
            ports |= {("in", upper) for upper, lower in self.binds if lower == name}
            touching = sum(1 for e in subs if name in e)
            out[name] = Expected(
                type=type_, refcnt=1 + len(ports) + touching, ports=frozenset(ports),
                subscriptions=frozenset(pub for s, pub in subs if s == name),
                subscribers=frozenset(s for s, pub in subs if pub == name))
        return out
