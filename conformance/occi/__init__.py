"""The OCCI 1.2 suite: query interface, renderings and negotiation, versions, entity and link
lifecycle, actions, mixin collections, filtering, pagination and errors (see README.md)."""

from conformance.occi import qi  # noqa: F401  (registers its checks)
from conformance.occi.base import DEFAULT_RENDERINGS, SUITE

__all__ = ["DEFAULT_RENDERINGS", "SUITE"]
