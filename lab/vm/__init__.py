"""VM runtime: qemu guests with a guest-agent channel, a watched console and recorded
host resources. Start with `lab.vm.qemu.QemuVM`; `python -m lab.vm.oneshot` runs one
command in a throwaway guest."""
