"""The lab across hosts the multihost tests bring up (test_multihost_lab.py, test_faults.py):
its topology file on a TwoHostTestbed that has this machine on its underlay.

    hv1: vm1 (eth0 on s1, eth1 on s2), vm3 (eth0 on s2)     s1 crosses local, hv1 and hv2
    hv2: vm2 (eth0 on s1)                                   over VXLAN; s2 stays on hv1
    local: the Mininet host h1 (on s1)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from lab.labrun import LabRun
from lab.multihost.hostshell import HostShell, LocalShell, NetnsShell
from lab.multihost.testbed import TwoHostTestbed
from lab.topology.loader import load_topology

BOOT_TIMEOUT_S = 300.0  # three TCG guests at once on a loaded 2-core machine

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


def virsh_names(uri: str) -> list[str]:
    done = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True,
                          text=True, timeout=30, check=True)
    return done.stdout.split()


def write_topology(testbed: TwoHostTestbed, folder: Path) -> Path:
    path = folder / "spread.toml"
    path.write_text(TOPOLOGY.format(hv1=testbed.hosts[1], hv2=testbed.hosts[2]))
    return path


def shells(testbed: TwoHostTestbed) -> dict[str, HostShell]:
    return {"local": LocalShell(), "hv1": NetnsShell("hv1", testbed.hosts[1].netns),
            "hv2": NetnsShell("hv2", testbed.hosts[2].netns)}


def spread_lab(testbed: TwoHostTestbed, folder: Path,
               progress: Callable[[str], None] = print) -> LabRun:
    """The lab, not yet up."""
    from lab.image.build import ensure_image

    topo = load_topology(str(write_topology(testbed, folder)))
    return LabRun(topo, ensure_image(progress=lambda _m: None), progress=progress,
                  local_underlay=testbed.local_underlay_addr)
