"""The framework every suite is written in: checks, fixtures, the context a check runs in and
the runner that keeps going after failures and cleans up what the checks created.

A suite is a module exposing ``SUITE``, a :class:`Suite` whose checks are plain functions::

    SUITE = Suite("occi", title="OCCI 1.2")

    @SUITE.fixture("compute", writes=True)
    def compute(ctx: Context) -> str:
        response = ctx.client.post("/compute/", data=...)
        ctx.expect(response.status_code == 201, "create answered 201", response)
        return ctx.created(response.headers["Location"])   # deleted at the end of the run

    @SUITE.check("OCCI-HTTP-QI-001", clause=HTTP("3.4.1"), level=Level.MUST, group="query",
                 title="GET /-/ answers 200")
    def qi_answers(ctx: Context) -> None:
        response = ctx.client.get("/-/")
        ctx.expect(response.status_code == 200, "GET /-/ answered 200", response)

A check passes when it returns, fails on :meth:`Context.fail` / :meth:`Context.expect` (with the
exchange as evidence) or on any unexpected exception (its traceback summarised), and is skipped
on :meth:`Context.skip`, when a fixture it :meth:`Context.need`-s failed, or when it writes and
the run is read-only. Checks run in declaration order; ``per_rendering`` checks run once per
rendering of the run, with ``ctx.rendering`` set.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NoReturn, TypeVar

import requests

from conformance.http import Client, Exchange, exchange_of

F = TypeVar("F", bound=Callable[..., Any])


class Level(StrEnum):
    """Requirement level of a check (RFC 2119)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Outcome(StrEnum):
    """What became of one run of a check."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


CheckFunction = Callable[["Context"], None]
FixtureFunction = Callable[["Context"], Any]


@dataclass(frozen=True)
class Check:
    """One entry of a catalogue.

    ``clause`` names the document and section the requirement comes from (e.g. "OCCI 1.2 HTTP
    Protocol §3.4.1"); ``group`` gathers related checks in reports; ``writes`` marks checks that
    create or change something on the server (skipped under --read-only). ``renderings``
    limits a ``per_rendering`` check to the renderings that can express it (empty: all); see
    :meth:`variants`."""

    id: str
    clause: str
    level: Level
    title: str
    group: str
    function: CheckFunction
    writes: bool = False
    per_rendering: bool = False
    renderings: tuple[str, ...] = ()

    def variants(self, run_renderings: Sequence[str]) -> list[str | None]:
        """The variants this check runs in, given the renderings of the run: one run per run
        rendering it can be expressed in; when none of them can express it, once in the first
        rendering that can (so that e.g. the JSON error checks still run in a text-only run);
        a check that is not ``per_rendering`` runs once, without a variant."""
        if not self.per_rendering:
            return [None]
        fitting = [r for r in run_renderings if not self.renderings or r in self.renderings]
        chosen: list[str | None] = [*(fitting or self.renderings[:1])]
        return chosen


@dataclass(frozen=True)
class Fixture:
    """A precondition shared by checks, computed once per run (per rendering if asked)."""

    name: str
    function: FixtureFunction
    writes: bool = False
    per_rendering: bool = False


class Suite:
    """A named catalogue of checks and the fixtures they share."""

    def __init__(self, name: str, *, title: str) -> None:
        self.name = name
        self.title = title
        self.checks: list[Check] = []
        self.fixtures: dict[str, Fixture] = {}

    def check(self, check_id: str, *, clause: str, level: Level, title: str, group: str,
              writes: bool = False, per_rendering: bool = False,
              renderings: Sequence[str] = ()) -> Callable[[F], F]:
        """Decorator registering ``function(ctx)`` as check ``check_id`` (ids are unique);
        ``renderings``: the only renderings a ``per_rendering`` check can be expressed in."""

        def register(function: F) -> F:
            if any(c.id == check_id for c in self.checks):
                raise ValueError(f"duplicate check id {check_id}")
            if renderings and not per_rendering:
                raise ValueError(f"{check_id}: renderings are given to per_rendering checks")
            self.checks.append(Check(check_id, clause, level, title, group, function,
                                     writes=writes, per_rendering=per_rendering,
                                     renderings=tuple(renderings)))
            return function

        return register

    def fixture(self, name: str, *, writes: bool = False,
                per_rendering: bool = False) -> Callable[[F], F]:
        """Decorator registering ``function(ctx) -> value`` as fixture ``name``."""

        def register(function: F) -> F:
            self.fixtures[name] = Fixture(name, function, writes=writes,
                                          per_rendering=per_rendering)
            return function

        return register


@dataclass(frozen=True)
class Settings:
    """What a run was asked to do (the command line, minus credentials)."""

    base_url: str
    renderings: tuple[str, ...] = ()
    read_only: bool = False
    prefix: str = "nimbo-conformance"
    poll_timeout: float = 120.0
    poll_interval: float = 0.5
    only: tuple[str, ...] = ()
    """Run only checks whose id starts with one of these (empty: all)."""


# --- outcomes of a check ----------------------------------------------------------------------


class CheckFailed(Exception):
    """A requirement was not met; ``exchange`` is the evidence (may be None)."""

    def __init__(self, message: str, exchange: Exchange | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exchange = exchange


class CheckSkipped(Exception):
    """The check cannot run (a precondition failed, read-only run, feature not offered)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Result:
    """One run of one check (``variant`` is the rendering of per-rendering checks)."""

    check: Check
    variant: str | None
    outcome: Outcome
    message: str = ""
    evidence: list[Exchange] = field(default_factory=list)
    duration: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.check.id} [{self.variant}]" if self.variant else self.check.id


# --- cleanup ----------------------------------------------------------------------------------


class LeftBehind(Exception):
    """Raised by a cleanup step when the server keeps something the run made and offers no way
    to remove it (e.g. an OS template made by an OCCI ``save`` the server will not delete):
    reported as left behind, not as a cleanup error."""


class Cleanup:
    """What the run created, undone in reverse order at its end."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []
        self.errors: list[str] = []
        self.left_behind: list[str] = []

    def push(self, description: str, undo: Callable[[], object]) -> None:
        self._steps.append((description, undo))

    def __len__(self) -> int:
        return len(self._steps)

    def run(self) -> None:
        """Every step, newest first; a failing step is noted and the others still run."""
        while self._steps:
            description, undo = self._steps.pop()
            try:
                undo()
            except LeftBehind as kept:
                self.left_behind.append(f"{description}: {kept}")
            except Exception as exc:  # cleanup must go on
                self.errors.append(f"{description}: {type(exc).__name__}: {exc}")


def delete_location(client: Client, url: str, *, attempts: int = 20,
                    interval: float = 0.5) -> None:
    """DELETE ``url`` until it answers 2xx or 404 (retrying 409 and 503: a resource still busy
    with an earlier request, a server catching up); raise RuntimeError otherwise."""
    status = 0
    for attempt in range(attempts):
        status = client.delete(url).status_code
        if status < 300 or status == 404:
            return
        if status not in (409, 503):
            break
        if attempt < attempts - 1:
            time.sleep(interval)
    raise RuntimeError(f"DELETE {url} answered {status}")


# --- the context a check runs in ---------------------------------------------------------------


class Context:
    """Handed to every check and fixture: the HTTP client, the settings, the rendering of this
    run of the check, fixtures, assertions and the cleanup registry."""

    def __init__(self, runner: Runner, rendering: str | None) -> None:
        self._runner = runner
        self.rendering = rendering
        self.client = runner.client
        self.settings = runner.settings

    # assertions

    def fail(self, message: str, response: requests.Response | None = None) -> NoReturn:
        """Fail the check; evidence is ``response`` or else the last exchange of the client."""
        raise CheckFailed(message, self._evidence(response))

    def expect(self, condition: object, message: str,
               response: requests.Response | None = None) -> None:
        """Fail with ``message`` (what was expected) unless ``condition`` holds."""
        if not condition:
            self.fail(message, response)

    def expect_status(self, response: requests.Response, *expected: int,
                      what: str = "") -> None:
        """Fail unless ``response`` answered one of ``expected``."""
        if response.status_code not in expected:
            wanted = " or ".join(str(s) for s in expected)
            request = response.request
            subject = what or f"{request.method} {request.url}"
            self.fail(f"{subject}: expected {wanted}, got {response.status_code}", response)

    def skip(self, reason: str) -> NoReturn:
        raise CheckSkipped(reason)

    def _evidence(self, response: requests.Response | None) -> Exchange | None:
        if response is not None:
            return exchange_of(response)
        last = self.client.last_response
        return exchange_of(last) if last is not None else None

    # fixtures and resources

    def need(self, name: str, *, failing: bool = False) -> Any:
        """The value of fixture ``name``. When the fixture failed this check is skipped, or
        fails with the fixture's message and evidence if ``failing`` (for the check whose
        subject the fixture is, e.g. the check of a create that later checks build on)."""
        return self._runner.fixture_value(name, self.rendering, failing=failing)

    def peer(self, role: str, *, hint: str = "") -> Client:
        """The client of another user (``role``, e.g. "user2"); the check is skipped when the
        run was given no credentials for it (``hint`` says which options give them)."""
        client = self._runner.peers.get(role)
        if client is None:
            self.skip(f"no credentials for {role}" + (f" ({hint})" if hint else ""))
        return client

    def created(self, url: str) -> str:
        """Register ``url`` for deletion at the end of the run; returns it."""
        self.on_cleanup(f"DELETE {url}", lambda: delete_location(self.client, url))
        return url

    def on_cleanup(self, description: str, undo: Callable[[], object]) -> None:
        """Run ``undo()`` at the end of the run (newest first), even after failures or Ctrl-C."""
        self._runner.cleanup.push(description, undo)

    def name(self, suffix: str) -> str:
        """A name for something this run creates: the run's unique prefix plus ``suffix``."""
        return f"{self.settings.prefix}-{suffix}"

    def require_writes(self) -> None:
        if self.settings.read_only:
            self.skip("--read-only: this check creates or changes resources")

    def poll(self, probe: Callable[[], Any], *, what: str,
             timeout: float | None = None) -> Any:
        """Call ``probe()`` until it returns something truthy (returned) or the bounded wait
        (``settings.poll_timeout``) ends, then fail with ``what`` (what was awaited)."""
        deadline = time.monotonic() + (self.settings.poll_timeout if timeout is None
                                       else timeout)
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() >= deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(self.settings.poll_interval)


# --- the runner -------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything a run found, for the report writers."""

    suite: str
    title: str
    settings: Settings
    started: datetime
    duration: float = 0.0
    results: list[Result] = field(default_factory=list)
    interrupted: bool = False
    cleanup_errors: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)
    """What the run made and the server would not let it remove (see :class:`LeftBehind`)."""

    def totals(self) -> dict[Level, dict[Outcome, int]]:
        counts = {level: dict.fromkeys(Outcome, 0) for level in Level}
        for result in self.results:
            counts[result.check.level][result.outcome] += 1
        return counts

    @property
    def conformant(self) -> bool:
        """Every MUST passed or was skipped, and the run was not interrupted."""
        return not self.interrupted and not any(
            r.check.level is Level.MUST and r.outcome is Outcome.FAILED for r in self.results)

    @property
    def exit_status(self) -> int:
        if self.interrupted:
            return 130
        return 0 if self.conformant else 1


@dataclass(frozen=True)
class _FixtureFailed:
    reason: str
    exchange: Exchange | None = None


class Runner:
    """Runs a suite's checks against one endpoint."""

    def __init__(self, suite: Suite, settings: Settings, client: Client, *,
                 peers: Mapping[str, Client] | None = None) -> None:
        self.suite = suite
        self.settings = settings
        self.client = client
        self.peers = dict(peers or {})
        """Clients with other credentials, by role (e.g. "user2" for the CDMI ACL checks)."""
        self.cleanup = Cleanup()
        self._fixtures: dict[tuple[str, str | None], Any] = {}

    def runs(self) -> Iterator[tuple[Check, str | None]]:
        """The (check, variant) pairs of this run, in order."""
        for check in self.suite.checks:
            if self.settings.only and not check.id.startswith(self.settings.only):
                continue
            for variant in check.variants(self.settings.renderings):
                yield check, variant

    def run(self, on_result: Callable[[Result], None] | None = None) -> Report:
        """Every check, then the cleanup (also after Ctrl-C, which ends the run early)."""
        report = Report(self.suite.name, self.suite.title, self.settings,
                        started=datetime.now(UTC))
        start = time.monotonic()
        try:
            for check, variant in self.runs():
                result = self.run_check(check, variant)
                report.results.append(result)
                if on_result is not None:
                    on_result(result)
        except KeyboardInterrupt:
            report.interrupted = True
        finally:
            try:
                self.cleanup.run()
            except KeyboardInterrupt:
                report.interrupted = True
            report.cleanup_errors = list(self.cleanup.errors)
            report.left_behind = list(self.cleanup.left_behind)
            report.duration = time.monotonic() - start
        return report

    def run_check(self, check: Check, variant: str | None) -> Result:
        start = time.monotonic()
        self.client.last_response = None
        result = Result(check, variant, Outcome.PASSED)
        try:
            if check.writes and self.settings.read_only:
                raise CheckSkipped("--read-only: this check creates or changes resources")
            check.function(Context(self, variant))
        except CheckSkipped as skipped:
            result.outcome, result.message = Outcome.SKIPPED, skipped.reason
        except CheckFailed as failed:
            result.outcome, result.message = Outcome.FAILED, failed.message
            result.evidence = [failed.exchange] if failed.exchange else []
        except Exception as exc:  # a check's bug is its failure, not the run's
            result.outcome, result.message = Outcome.FAILED, unexpected(exc)
            last = self.client.last_response
            result.evidence = [exchange_of(last)] if last is not None else []
        result.duration = time.monotonic() - start
        return result

    def fixture_value(self, name: str, rendering: str | None, *, failing: bool = False) -> Any:
        fixture = self.suite.fixtures[name]
        key = (name, rendering if fixture.per_rendering else None)
        if key not in self._fixtures:
            self._fixtures[key] = self._compute_fixture(fixture, key[1])
        value = self._fixtures[key]
        if isinstance(value, _FixtureFailed):
            if failing:
                raise CheckFailed(value.reason, value.exchange)
            raise CheckSkipped(f"precondition {name!r} failed: {value.reason}")
        return value

    def _compute_fixture(self, fixture: Fixture, rendering: str | None) -> Any:
        if fixture.writes and self.settings.read_only:
            return _FixtureFailed("--read-only: it would create resources")
        saved = self.client.last_response
        try:
            return fixture.function(Context(self, rendering))
        except CheckSkipped as skipped:
            return _FixtureFailed(skipped.reason)
        except CheckFailed as failed:
            return _FixtureFailed(failed.message, failed.exchange)
        except Exception as exc:
            last = self.client.last_response
            return _FixtureFailed(unexpected(exc), exchange_of(last) if last is not None else None)
        finally:
            self.client.last_response = saved


def unexpected(exc: BaseException) -> str:
    """One paragraph for an unexpected exception: type, message, the innermost frames."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames)
    if isinstance(exc, requests.RequestException):
        return f"request failed: {type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (at {where})"


def select_checks(suite: Suite, prefixes: Sequence[str]) -> list[Check]:
    """The checks of ``suite`` whose ids start with one of ``prefixes`` (all when empty)."""
    return [c for c in suite.checks if not prefixes or c.id.startswith(tuple(prefixes))]
