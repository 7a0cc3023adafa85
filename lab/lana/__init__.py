"""Talking to the LANA core inside a guest: procfs parsers (procfs), the netlink client
(client: Lana, LanaError) and its host-side proxy through the guest agent (remote)."""
