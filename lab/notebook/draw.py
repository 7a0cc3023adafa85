"""Drawings with matplotlib: the live block graph of a node, and the packet path of LANA
for the introduction."""

from __future__ import annotations

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from lab.notebook.graph import layout
from lab.notebook.show import show

TYPE_COLOURS = {"eth": "#9ecae1", "fwd": "#c7e9c0", "tee": "#fdd0a2", "counter": "#fcbba1",
                "bpf": "#dadaeb", "mirror": "#fde0ef"}
OTHER_COLOUR = "#e0e0e0"
BOX_W, BOX_H = 0.8, 0.42


def _box(ax: Axes, x: float, y: float, text: str, colour: str, w: float = BOX_W,
         h: float = BOX_H, size: float = 9.0) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.06",
                                facecolor=colour, edgecolor="#444444", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float],
           style: str = "-|>", colour: str = "#333333", dashed: bool = False,
           rad: float = 0.0) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12,
                                 color=colour, linewidth=1.2,
                                 linestyle="--" if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}"))


def block_graph_figure(graph: nx.DiGraph, title: str | None = None,
                       counters: dict[str, int] | None = None) -> Figure:
    """The stack as boxes (one per instance, coloured by type) with an arrow from each
    block to every block bound on top of it: the way ingress frames travel."""
    pos = layout(graph)
    xs = [x for x, _ in pos.values()] or [0.0]
    ys = [y for _, y in pos.values()] or [0.0]
    width = max(4.0, 1.7 * (max(xs) - min(xs) + 1.4))
    height = max(2.2, 1.25 * (max(ys) - min(ys) + 1.2))
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.55, max(ys) + 0.55)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    if not pos:
        ax.text(0, 0, "no LANA instances", ha="center", va="center", color="#777777")
        return fig
    for lower, upper, kind in graph.edges(data="kind"):
        (x0, y0), (x1, y1) = pos[lower], pos[upper]
        if kind == "binding":
            _arrow(ax, (x0, y0 + BOX_H / 2), (x1, y1 - BOX_H / 2))
        else:
            _arrow(ax, (x0, y0), (x1, y1), style="-|>", colour="#888888", dashed=True,
                   rad=0.3)
    for name, data in graph.nodes(data=True):
        label = f"{name}\n{data['type']} · IDP {data['idp']}"
        if counters and name in counters:
            label += f"\n{counters[name]} pkts"
        _box(ax, *pos[name], label, TYPE_COLOURS.get(data["type"], OTHER_COLOUR),
             h=BOX_H + (0.12 if counters and name in counters else 0.0))
    ax.text(max(xs) + 0.65, min(ys) - 0.5, "arrows: ingress direction (egress runs down)",
            ha="right", va="bottom", fontsize=7, color="#666666")
    return fig


def draw_block_graph(graph: nx.DiGraph, title: str | None = None,
                     counters: dict[str, int] | None = None) -> Figure | None:
    """Draw the graph; in a notebook it is shown at once (and None returned so it is not
    shown twice), elsewhere the Figure is returned."""
    return show(block_graph_figure(graph, title, counters))


def packet_path_figure() -> Figure:
    """The introduction's drawing: how a frame travels from the NIC through LANA."""
    fig, ax = plt.subplots(figsize=(10, 5.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6.2)
    ax.axis("off")
    ax.set_title("LANA inside one Linux guest: the ingress packet path", fontsize=12)
    # user space
    ax.axhspan(5.2, 6.2, color="#f7f7f7")
    ax.text(0.1, 6.0, "user space", fontsize=8, color="#666666", va="top")
    _box(ax, 1.6, 5.65, "fbctl / vlink", "#ffffff", w=1.8, h=0.5)
    # kernel: the core
    ax.text(0.1, 0.95, "kernel: lana.ko and the fb_*.ko block modules", fontsize=8,
            color="#666666", va="bottom")
    _box(ax, 1.6, 4.3, "netlink interface\nbuilder · registry\nnotifier", "#fff7bc",
         w=2.4, h=0.95)
    _arrow(ax, (1.6, 5.4), (1.6, 4.8))
    ax.text(1.7, 5.1, "add, bind, set, replace", fontsize=7, va="center")
    # the engine frame
    ax.add_patch(FancyBboxPatch((3.4, 0.9), 6.3, 4.1, boxstyle="round,pad=0.05",
                                facecolor="#fbfbff", edgecolor="#6a51a3", linewidth=1.3))
    ax.text(9.6, 4.85, "packet processing engine (NET_RX softirq, one loop per CPU)",
            fontsize=8, color="#6a51a3", ha="right", va="top")
    _box(ax, 5.0, 1.5, "eth0\neth · IDP 1", TYPE_COLOURS["eth"], w=1.5, h=0.6)
    _box(ax, 5.0, 2.9, "f1\nfwd · IDP 2", TYPE_COLOURS["fwd"], w=1.5, h=0.6)
    _box(ax, 5.0, 4.2, "c1\ncounter · IDP 3", TYPE_COLOURS["counter"], w=1.5, h=0.6)
    _arrow(ax, (5.0, 1.8), (5.0, 2.6))
    _arrow(ax, (5.0, 3.2), (5.0, 3.9))
    ax.text(5.1, 2.25, "next IDP = 2", fontsize=7)
    ax.text(5.1, 3.55, "next IDP = 3", fontsize=7)
    # the engine's loop
    _box(ax, 8.2, 2.9, "loop:\nread next IDP from skb\nlook up block (IDP → fblock)\n"
         "call its netrx()\nuntil dropped / halted", "#efedf5", w=2.6, h=1.5, size=8)
    _arrow(ax, (5.8, 2.9), (6.9, 2.9), style="<|-|>", colour="#6a51a3")
    ax.text(8.2, 1.75, "clones (tee) wait in a per-CPU backlog", fontsize=7, ha="center")
    ax.text(5.85, 4.2, "sink: counts, frees the skb", fontsize=7, va="center")
    # the core configures the blocks
    _arrow(ax, (2.8, 4.3), (4.2, 4.2), colour="#999999", dashed=True)
    _arrow(ax, (2.8, 4.1), (4.2, 2.95), colour="#999999", dashed=True)
    # below: the driver
    ax.axhspan(0, 0.8, color="#f0f0f0")
    _box(ax, 5.0, 0.4, "NIC driver (virtio-net / e1000e)", "#ffffff", w=3.0, h=0.5)
    _arrow(ax, (5.0, 0.65), (5.0, 1.2))
    ax.text(5.1, 0.95, "rx handler (vlink layer)", fontsize=7, va="center")
    ax.text(1.6, 2.2, "Linux's own stack (IP, TCP)\ngets only what LANA\ndoes not "
            "take\n(eth mode=observe:\na copy of everything)", fontsize=8, ha="center",
            color="#555555")
    _arrow(ax, (3.45, 1.4), (2.5, 1.9), colour="#999999", dashed=True)
    return fig


def draw_packet_path() -> Figure | None:
    """Show the introduction's drawing of LANA's ingress packet path."""
    return show(packet_path_figure())
