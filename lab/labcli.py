"""The Mininet CLI, extended so a lab's VMs are nodes too: `vm1 fbctl list`,
`h1 ping -c1 vm1` (a VM's name is replaced by its first address, as Mininet does for hosts).
"""

from __future__ import annotations

from mininet.cli import CLI

from lab.errors import LabError
from lab.labrun import LabRun


class LabCLI(CLI):
    prompt = "lanalab> "

    def __init__(self, lab: LabRun) -> None:
        self.lab = lab
        self.vm_ips = {spec.name: nic.ip.split("/")[0] for spec in lab.topo.vms
                       for nic in spec.nics[:1] if nic.ip}
        assert lab.fabric is not None and lab.fabric.net is not None
        super().__init__(lab.fabric.net)

    def _with_vm_addresses(self, words: list[str]) -> list[str]:
        return [self.vm_ips.get(word, word) for word in words]

    def default(self, line: str) -> None:
        first, _, rest = line.partition(" ")
        vm = self.lab.vms.get(first)
        if vm is None:
            words = line.split()
            super().default(" ".join(words[:1] + self._with_vm_addresses(words[1:])))
            return
        if not rest.strip():
            print(f"*** give a command to run in {first}, e.g. `{first} fbctl list`")
            return
        rest = " ".join(self._with_vm_addresses(rest.split()))
        try:
            result = vm.exec(["sh", "-c", rest], timeout=300)
        except LabError as exc:
            print(f"*** {first}: {exc.message}")
            return
        print(result.stdout, end="")
        print(result.stderr, end="")

    def do_vms(self, _line: str) -> None:
        """List the lab's VMs with their addresses."""
        for name in self.lab.vms:
            print(f"{name} {self.vm_ips.get(name, '-')}")


def run_cli(lab: LabRun) -> None:
    from mininet.log import setLogLevel

    setLogLevel("output")  # Mininet prints host commands' output at this level
    LabCLI(lab)
