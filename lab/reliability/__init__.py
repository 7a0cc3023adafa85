"""Reliability campaigns (docs/reliability.md): guest-side programs (storm, fuzz_guest,
privilege_guest, genl, model: Python 3 stdlib only, run from the /lab share) and host-side
drivers (guestvm, host_fuzz, hygiene)."""
