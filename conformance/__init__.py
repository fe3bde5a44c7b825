"""Black-box conformance suites for OCCI 1.2 and CDMI 1.1.1 endpoints.

They speak only HTTP (``requests``) and import nothing of the server's packages, so they can be
pointed at any endpoint: ``nimbo-conformance occi|cdmi URL [options]`` (see ``conformance.cli``).

Writing a suite (``conformance/<name>/__init__.py`` exposing ``SUITE``; see ``framework``):

- :class:`~conformance.framework.Suite` -- ``@SUITE.check(id, clause=, level=, title=, group=,
  writes=, per_rendering=)`` and ``@SUITE.fixture(name, writes=, per_rendering=)``.
- :class:`~conformance.framework.Context` -- what a check gets: ``client`` (``http.Client``),
  ``settings``, ``rendering``, ``expect``/``expect_status``/``fail``/``skip``, ``need(fixture)``,
  ``created(url)``/``on_cleanup(...)``, ``name(suffix)`` (the run's unique prefix), ``poll``.
- Reports: ``conformance.report`` (summary table, JSON, JUnit XML).
"""

from conformance.framework import Check, Context, Level, Outcome, Report, Runner, Settings, Suite
from conformance.http import Client, Credentials

__all__ = ["Check", "Client", "Context", "Credentials", "Level", "Outcome", "Report", "Runner",
           "Settings", "Suite"]
