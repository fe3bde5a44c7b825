"""The CDMI blueprint (HTTP side of :mod:`cdmi`)."""
