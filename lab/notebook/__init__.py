"""A small API for the lab's Jupyter notebooks.

    from lab.notebook import Lab
    lab = Lab("bench").up()              # vm1 + h1, with live progress; torn down at exit
    vm1, h1 = lab["vm1"], lab["h1"]
    vm1.modprobe("lana", "fb_eth", "fb_counter")
    vm1.vlink("ethernet", "hook", "eth0"); vm1.fbctl("add", "c1", "counter")
    vm1.fbctl("bind", "c1", "eth0")
    vm1.blocks(); vm1.draw(); h1.ping("10.0.0.1"); vm1.counters()
    plot_counters(watch_counters(vm1, 5, during=lambda: h1.ping("10.0.0.1", count=20)))
    lab.down()
"""

from lab.notebook.audio import play_audio, plot_waveform, read_wav
from lab.notebook.draw import (
    block_graph_figure,
    draw_block_graph,
    draw_packet_path,
    packet_path_figure,
)
from lab.notebook.graph import block_graph, layout
from lab.notebook.nodes import CommandFailed, HostNode, VmNode
from lab.notebook.session import Lab, down_all
from lab.notebook.show import show
from lab.notebook.watch import plot_counters, plot_pps, watch_counters

__all__ = [
    "CommandFailed", "HostNode", "Lab", "VmNode", "block_graph", "block_graph_figure",
    "down_all", "draw_block_graph", "draw_packet_path", "layout", "packet_path_figure",
    "play_audio", "plot_counters", "plot_pps", "plot_waveform", "read_wav", "show",
    "watch_counters",
]
