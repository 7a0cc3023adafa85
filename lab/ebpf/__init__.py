"""eBPF beside LANA: the restricted-C programs of kernel/xdp/ compiled on the host into
BPF objects (compile), which `lanalab bench` loads in the guest with iproute2."""
