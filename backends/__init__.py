"""Backend drivers: what a hypervisor host does with compute, storage and network specs.

Drivers never see an HTTP request. They take typed specs (:mod:`backends.base`) and raise only
:class:`gateway.errors.BackendError` subclasses, with the foreign error chained.
"""
