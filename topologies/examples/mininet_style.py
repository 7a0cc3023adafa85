"""A lab topology in Mininet's Topo API: `lanalab up topologies/examples/mininet_style.py`.

Hosts added with cls=LanaVM become VMs running LANA; the others are Mininet hosts.
"""

from mininet.topo import Topo

from lab.topology.from_mininet import LanaVM


class SourceAndSink(Topo):
    def build(self) -> None:  # type: ignore[override]
        s1 = self.addSwitch("s1")
        sink = self.addHost("vm1", cls=LanaVM, ip="10.0.0.1/24")
        source = self.addHost("h1", ip="10.0.0.100/24")
        self.addLink(sink, s1)
        self.addLink(source, s1, bw=100)
