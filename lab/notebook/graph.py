"""The block graph of one node as a networkx graph, and where to draw each block.

Nodes are instance names (attributes: type, idp, refcnt, events). An edge lower -> upper
with kind="binding" stands for `fbctl bind upper lower`: frames travel it upwards on
ingress and downwards on egress. An explicit subscription that is not also a binding is
an edge publisher -> subscriber with kind="subscription".
"""

from __future__ import annotations

import networkx as nx

from lab.lana.procfs import FBlock, parse_fblocks


def block_graph(blocks: dict[str, FBlock] | str) -> nx.DiGraph:
    """Build the graph from parsed /proc/net/lana/fblocks (or its text)."""
    if isinstance(blocks, str):
        blocks = parse_fblocks(blocks)
    by_idp = {block.idp: name for name, block in blocks.items()}
    graph = nx.DiGraph()
    for name, block in blocks.items():
        graph.add_node(name, type=block.type, idp=block.idp, refcnt=block.refcnt,
                       events=block.events)
    bound: set[frozenset[str]] = set()
    for name, block in blocks.items():
        for port in block.ports:
            other = by_idp.get(port.idp)
            if other is None or port.direction != "out":
                continue  # `in:` ports are the same binding seen from below
            graph.add_edge(other, name, kind="binding")
            bound.add(frozenset((name, other)))
    for name, block in blocks.items():
        for idp in block.subscriptions:
            publisher = by_idp.get(idp)
            if publisher and frozenset((name, publisher)) not in bound:
                graph.add_edge(publisher, name, kind="subscription")
    return graph


def bindings(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """(lower, upper) pairs of every binding."""
    return [(u, v) for u, v, kind in graph.edges(data="kind") if kind == "binding"]


def layers(graph: nx.DiGraph) -> dict[str, int]:
    """Height of each block in its stack: 0 for a block bound on top of nothing (a device
    hook, a lone block), otherwise one more than the highest block it sits on."""
    below: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for lower, upper in bindings(graph):
        below[upper].append(lower)
    height: dict[str, int] = {}

    def visit(name: str, path: frozenset[str]) -> int:
        if name in height:
            return height[name]
        if name in path:  # a cycle of bindings: draw it, do not loop forever
            return 0
        level = 1 + max((visit(b, path | {name}) for b in below[name]), default=-1)
        height[name] = level
        return level

    for name in graph.nodes:
        visit(name, frozenset())
    return height


def layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """x, y for each block: stacks grow upwards, a block sits above the blocks it is
    bound on (their mean x), neighbours on one layer are kept at least 1 apart."""
    height = layers(graph)
    below: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for lower, upper in bindings(graph):
        below[upper].append(lower)
    order = list(graph.nodes)
    pos: dict[str, tuple[float, float]] = {}
    top = max(height.values(), default=0)
    for level in range(top + 1):
        names = [n for n in order if height[n] == level]
        wanted: dict[str, float] = {}
        for i, n in enumerate(names):
            xs = [pos[b][0] for b in below[n] if b in pos]
            wanted[n] = sum(xs) / len(xs) if xs else float(i)
        # blocks that want the same x (the branches above a tee) straddle it
        groups: dict[float, list[str]] = {}
        for n in names:
            groups.setdefault(wanted[n], []).append(n)
        for x, group in groups.items():
            for i, n in enumerate(group):
                wanted[n] = x + i - (len(group) - 1) / 2
        last = -float("inf")
        for n in sorted(names, key=lambda n: (wanted[n], order.index(n))):
            x = max(wanted[n], last + 1.0)  # keep neighbours one unit apart
            pos[n] = (x, float(level))
            last = x
    return pos
