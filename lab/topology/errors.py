"""Errors about topologies: what is wrong, and where."""

from lab.errors import LabError


class TopologyError(LabError):
    """A topology file or builder describes something the lab cannot build."""
