"""Helpers for talking to the LANA core inside a guest (procfs parsers)."""
