"""Labs across several libvirt hypervisors joined by VXLAN (docs/design/multihost.md)."""
