"""`lanalab bench`: LANA's receive-and-drop rate against Linux's, chain scaling, socket
receivers and lab speed, measured side by side in one guest (method: docs/benchmarks.md).

plan      which points a --quick / default / --full run measures
guest     the in-guest side: helpers (guest.sh), pktgen, chain switching, the sniffer
          (sniffer.c) and the UDP / TPACKET_V3 / AF_XDP receivers (receivers.c)
runner    interleaved rounds over the plan on a booted bench lab
stats     medians, side-by-side ratios, ns per block from the chain slope
beside    the summary's tables of LANA beside XDP and tc-eBPF (kernel/xdp/, lab/ebpf/) and
          of the userspace receivers beside seed 003's
report    results.json (with the environment), summary.md, the thesis comparison
plots     figures in the style of the thesis's 6.2-6.4 (matplotlib, if installed)
labspeed  boot, topology and image figures (reusing scripts/bench-foundation.py)
latency   `--latency`: seed 003's UDP payload-reversing service in vm1 served four ways
          (latency_server.c), timed round trip by round trip from h1 (latency_client.py)
"""
