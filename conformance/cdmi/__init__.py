"""The CDMI 1.1.1 suite: version negotiation, media types, capabilities and their
truthfulness, containers, data objects in CDMI and plain HTTP, object IDs, field selection,
metadata, refusals, copy, move and snapshots, and ACL effects between two users (see
README.md).

Check modules register in catalogue order: their import order is the run's order."""

# isort: skip_file
from conformance.cdmi.base import SUITE
from conformance.cdmi import protocol  # noqa: F401
from conformance.cdmi import containers  # noqa: F401
from conformance.cdmi import dataobjects  # noqa: F401
from conformance.cdmi import ids  # noqa: F401
from conformance.cdmi import metadata  # noqa: F401
from conformance.cdmi import copies  # noqa: F401
from conformance.cdmi import acl  # noqa: F401

__all__ = ["SUITE"]
