"""Composition root of nimbostratus: configuration, store, services, jobs, app, CLI.

Only :mod:`gateway.errors` is imported by the other packages; it is a leaf module.
"""

__version__ = "0.1.0"
