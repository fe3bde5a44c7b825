"""The cyclic garbage collector of the long-running processes (API workers, job workers).

CPython frees almost everything by reference counting; the cyclic collector is only for
cycles. But it runs on allocation counts, and a full (generation 2) collection walks every
tracked object of the process, while every thread of it waits on the GIL. In an API worker
after start those are mostly what the imports made (Flask, SQLAlchemy's mappers, the OCCI
model), plus the entity cache. Measured under ``benchmarks/occi_api.py``, each API worker ran
7 full collections of up to 73 ms and generation 1 ones of up to 20 ms, each one added to the
latency of every request its threads were serving; settled, none ran while requests were
served, and generation 0 ones took 1 to 4 ms.

:func:`settle` is called once a process has loaded what it keeps: everything alive then is
moved out of the collector's sight for good (:func:`gc.freeze`: it lives as long as the
process anyway), and the thresholds are raised so that the young objects of a request are
freed by reference counting before a collection would look at them. Cycles are still
collected; a collection looks at fewer objects, less often.
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 20, 10)
"""Allocations (net of frees) between generation 0 collections, and generation 0 (1)
collections between generation 1 (2) ones; CPython's defaults are (700, 10, 10). A request
allocates a few thousand objects, nearly all freed by reference counting as it ends."""


def settle() -> None:
    """Collect what start-up left, freeze what is alive, raise the thresholds (once per
    process, after its imports and its app are loaded; after a fork, in the child)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
