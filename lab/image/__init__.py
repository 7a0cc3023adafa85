"""The guest image: Debian's 6.1 kernel, a small initramfs, a minimal Debian root file
system with qemu-guest-agent and netsniff-ng, and the LANA modules and tools.

Division of labour: `recipe` reads images/ and computes the content digest, `abi` finds
the kernel ABI Debian currently ships, `rootfs`, `kmods`, `lana`, `initramfs` and `disk`
each make one part, `build` runs them in order with progress lines, `store` finds built
images in $LANALAB_CACHE, `manifest` describes and verifies one, `archive` moves one
between machines.
"""
