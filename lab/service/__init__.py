"""The lab service: one root process that owns every VM, tap, bridge and namespace, and
unprivileged `lanalab` clients that ask it for labs over a unix socket (docs/service.md)."""
