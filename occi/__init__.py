"""OCCI 1.2: the core model, the infrastructure extension, renderings and the HTTP blueprint.

The model (:mod:`occi.core`, :mod:`occi.infrastructure`, :mod:`occi.registry`) and the
renderings (:mod:`occi.rendering`) do no I/O and import neither Flask nor any backend.
"""
