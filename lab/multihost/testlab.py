"""The lab across hosts that runs on the one-machine testbed (lab/multihost/testbed.py with
join_local): its topology file, and a LabRun of it. The multihost tests and the cross-host
bench (lab.bench.crosshost) bring it up.

    hv1: vm1 (eth0 on s1, eth1 on s2), vm3 (eth0 on s2)     s1 crosses local, hv1 and hv2
    hv2: vm2 (eth0 on s1)                                   over VXLAN; s2 stays on hv1
    local: the Mininet host h1 (on s1)

Addresses stay inside the lab: s1 is 10.0.0.0/24, s2 10.0.1.0/24.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lab.labrun import LabRun
from lab.multihost.testbed import TwoHostTestbed
from lab.topology.loader import load_topology

TOPOLOGY = """\
name = "spread"
description = "vm1 and vm3 on hv1, vm2 on hv2, h1 here; s1 crosses all three hosts"

[[hypervisor]]
name = "hv1"
uri = "{hv1.uri}"
underlay = "{hv1.underlay_addr}"
shell = "netns:{hv1.netns}"

[[hypervisor]]
name = "hv2"
uri = "{hv2.uri}"
underlay = "{hv2.underlay_addr}"
shell = "netns:{hv2.netns}"

[[switch]]
name = "s1"

[[switch]]
name = "s2"

[[vm]]
name = "vm1"
on = "hv1"
nics = [{{ switch = "s1", ip = "10.0.0.1/24" }}, {{ switch = "s2", ip = "10.0.1.1/24" }}]

[[vm]]
name = "vm2"
on = "hv2"
nics = [{{ switch = "s1", ip = "10.0.0.2/24" }}]

[[vm]]
name = "vm3"
on = "hv1"
nics = [{{ switch = "s2", ip = "10.0.1.3/24" }}]

[[host]]
name = "h1"
links = [{{ switch = "s1", ip = "10.0.0.100/24" }}]
"""


def write_topology(testbed: TwoHostTestbed, folder: Path) -> Path:
    path = folder / "spread.toml"
    path.write_text(TOPOLOGY.format(hv1=testbed.hosts[1], hv2=testbed.hosts[2]))
    return path


def spread_lab(testbed: TwoHostTestbed, folder: Path,
               progress: Callable[[str], None] = print) -> LabRun:
    """The lab, not yet up."""
    from lab.image.build import ensure_image

    topo = load_topology(str(write_topology(testbed, folder)))
    return LabRun(topo, ensure_image(progress=lambda _m: None), progress=progress,
                  local_underlay=testbed.local_underlay_addr)
