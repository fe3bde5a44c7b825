"""The OCCI 1.2 suite: query interface, renderings and negotiation, versions, entity and link
lifecycle, actions (also on collections), mixin collections, filtering, pagination, errors,
save and contextualization (see README.md).

Check modules register in catalogue order: their import order is the run's order."""

# isort: skip_file
from conformance.occi.base import DEFAULT_RENDERINGS, SUITE
from conformance.occi import qi  # noqa: F401
from conformance.occi import protocol  # noqa: F401
from conformance.occi import lifecycle  # noqa: F401
from conformance.occi import collections  # noqa: F401
from conformance.occi import templates  # noqa: F401

__all__ = ["DEFAULT_RENDERINGS", "SUITE"]
