"""Request rates per principal and per client address, kept in Redis across API processes.

Three budgets, each ``N/SECONDS`` (``600/60``: 600 a minute, in bursts of up to 600):

- ``rate_limit_user``: requests per principal;
- ``rate_limit_address``: requests per client address (IPv6 addresses by their /64),
  authenticated or not;
- ``rate_limit_auth_failures``: refused passwords (HTTP Basic) per client address. Past it,
  every password login from that address is answered 429, right password or wrong, so a
  guesser learns nothing more until the budget recovers; tokens and certificates from the
  same address are not held up (a token cannot be guessed).

The algorithm is GCRA (the generic cell rate algorithm): one key per budget holds the
theoretical arrival time of the next request, and one Lua script checks and charges every
budget of a request in one round trip, atomically, with Redis's clock (API hosts' clocks do
not matter). Keys expire when their budget is whole again.

Where the checks happen:

1. before authentication, in-process: an address this process saw over its budget is refused
   at once, until its retry time, without Redis and without a password check;
2. after authentication: the one script call, for the address, the password-failure
   budget (only looked at) and the principal (a view that authenticates for itself, as
   ``POST /auth/tokens`` does, gets its principal checked when the chain admits it);
3. when the chain refuses credentials (a :class:`GuardedChain` wraps it): the other script
   charges the address and, for a password, the failure budget; were they spent already,
   the answer is 429 instead of 401.

Over a budget -> :class:`~gateway.errors.TooManyRequests` (429, ``Retry-After`` in whole
seconds, at least 1) with a message naming the limit. Addresses in ``rate_limit_exempt``
are never limited.

When Redis cannot be reached the limits are not applied (fail open): a warning is logged
(once a minute per process) and requests go on. The limiter protects the service; it must not
be the reason the API answers 500 or 503 while the store still serves reads (writes fail with
503 anyway while the job queue is down).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from flask import Flask, g, has_request_context, request
from redis.commands.core import Script

from auth.addresses import listed, networks
from auth.chain import AuthChain
from auth.credentials import Credentials
from auth.principal import Principal
from gateway.config import Config
from gateway.errors import ConfigurationError, NotAuthenticated, TooManyRequests
from gateway.hardening import client_address

log = logging.getLogger(__name__)

PREFIX = "nimbo:rate:"
WARN_EVERY = 60.0
CLEAR_SECONDS = 1.0  # how long a whole password-failure budget is believed without Redis
BLOCKED_MAX = 10000  # addresses remembered as over their budget, per process

# KEYS: one per budget. ARGV: per key, interval (us), period (us), cost (0: only look).
# All or nothing: when any budget is spent nothing is charged. Returns {index, wait us} of
# the budget that frees last, or {0, 0}.
CHECK = """
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local worst, wait, tats = 0, 0, {}
for i = 1, #KEYS do
  local interval, period = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  local ready = tat + interval - period
  if ready > now and ready - now > wait then worst, wait = i, ready - now end
  tats[i] = tat + tonumber(ARGV[3 * i]) * interval
end
if worst > 0 then return {worst, wait} end
for i = 1, #KEYS do
  if tonumber(ARGV[3 * i]) > 0 then
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]),
               'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
  end
end
return {0, 0}
"""

# KEYS: budgets to charge one unit each, spent or not (the request has happened).
# ARGV: per key, interval (us), period (us). A spent budget stays at most one period in debt.
# Returns {index, wait us} of the budget spent before this charge (or 0, 0), then the same
# after it.
CHARGE = """
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local before, before_wait, after, after_wait = 0, 0, 0, 0
for i = 1, #KEYS do
  local interval, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', KEYS[i])) or now, now)
  local ready = tat + interval - period
  if ready - now > before_wait then before, before_wait = i, ready - now end
  tat = math.min(tat + interval, now + period)
  redis.call('SET', KEYS[i], string.format('%.0f', tat),
             'PX', math.max(1, math.ceil((tat - now) / 1000)))
  ready = tat + interval - period
  if ready - now > after_wait then after, after_wait = i, ready - now end
end
return {before, before_wait, after, after_wait}
"""


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``seconds``."""

    count: int
    seconds: int

    @property
    def interval_us(self) -> int:
        return max(1, self.seconds * 1_000_000 // self.count)

    @property
    def period_us(self) -> int:
        return self.seconds * 1_000_000

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds} s"


def parse_rate(setting: str, value: str) -> Rate | None:
    """``"600/60"`` -> ``Rate(600, 60)``; empty, ``0`` or ``0/S`` -> None (no limit)."""
    text = value.strip()
    if text in ("", "0"):
        return None
    match = re.fullmatch(r"([0-9]+)\s*/\s*([0-9]+)", text)
    if match is None or int(match[2]) == 0:
        raise ConfigurationError(
            f"{setting}: {value!r} is not N/SECONDS (600/60: 600 requests a minute), empty or 0"
        )
    count, seconds = int(match[1]), int(match[2])
    return Rate(count, seconds) if count else None


@functools.lru_cache(maxsize=4096)  # asked several times a request, of a few addresses
def bucket(address: str) -> str:
    """What an address is counted as: itself, or for IPv6 its /64 (one subscriber's)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Budget:
    """One budget a request is checked against."""

    scope: str  # address | failures | user
    setting: str
    rate: Rate
    subject: str  # the address or the user name
    cost: int = 1

    @property
    def key(self) -> str:
        return f"{PREFIX}{self.scope}:{self.subject}"

    def refusal(self, wait_seconds: int) -> TooManyRequests:
        what = {
            "address": f"too many requests from {self.subject}",
            "failures": f"too many refused passwords from {self.subject}",
            "user": f"too many requests by user {self.subject}",
        }[self.scope]
        return TooManyRequests(
            f"{what}: the limit is {self.rate} ({self.setting}); retry after {wait_seconds} s",
            retry_after=wait_seconds,
        )


def _seconds(wait_us: int) -> int:
    return max(1, math.ceil(wait_us / 1_000_000))


class RateLimiter:
    """The three budgets of one gateway, their Redis scripts and this process's memory of
    addresses over budget."""

    def __init__(self, connection: redis.Redis, config: Config) -> None:
        self.user = parse_rate("rate_limit_user", config.rate_limit_user)
        self.address = parse_rate("rate_limit_address", config.rate_limit_address)
        self.failures = parse_rate("rate_limit_auth_failures", config.rate_limit_auth_failures)
        self.exempt = networks(config.rate_limit_exempt, "rate_limit_exempt")
        self._check = connection.register_script(CHECK)
        self._charge = connection.register_script(CHARGE)
        self._blocked: dict[tuple[str, str], tuple[float, Budget]] = {}
        self._clear: dict[str, float] = {}  # failure-budget keys found whole, until
        self._lock = threading.Lock()
        self._warned = -WARN_EVERY

    @property
    def enabled(self) -> bool:
        return bool(self.user or self.address or self.failures)

    def init_app(self, app: Flask) -> None:
        """Register the two request hooks: call after the authentication hook is registered
        (the in-process refusal is put in front of it, the check behind it)."""
        app.before_request_funcs.setdefault(None, []).insert(0, self._refuse_known)
        app.before_request(self._check_request)

    def guard(self, chain: AuthChain) -> AuthChain:
        return GuardedChain(chain, self)

    # --- hooks ----------------------------------------------------------------------------

    def _refuse_known(self) -> None:
        if not self.enabled:
            return
        address = client_address()
        if listed(address, self.exempt):
            g.nimbo_rate_exempt = True
            return
        scopes = ("address", "failures") if _offers_password() else ("address",)
        now = time.monotonic()
        for scope in scopes:
            blocked = self._blocked.get((scope, bucket(address)))
            if blocked is not None and blocked[0] > now:
                raise blocked[1].refusal(math.ceil(blocked[0] - now))

    def _check_request(self) -> None:
        if not self.enabled or g.get("nimbo_rate_exempt"):
            return
        password = _offers_password()
        g.nimbo_rate_checked, g.nimbo_rate_password = True, password
        self._check_budgets(self.budgets(client_address(), g.get("principal"), password=password))

    def admitted(self, credentials: Credentials, principal: Principal) -> None:
        """A principal the chain accepted after the request was checked: a view that
        authenticates for itself (``POST /auth/tokens``, a password in its body). Check its
        user budget, and the failure budget for a password the check did not see."""
        if not has_request_context() or not g.get("nimbo_rate_checked"):
            return
        if g.get("nimbo_rate_exempt"):
            return
        unseen = credentials.basic is not None and not g.get("nimbo_rate_password")
        budgets = self.budgets(client_address(), principal, password=unseen)
        self._check_budgets([b for b in budgets if b.scope != "address"])

    def _check_budgets(self, budgets: list[Budget]) -> None:
        if not budgets:
            return
        look_only = all(b.cost == 0 for b in budgets)
        if look_only and self._clear.get(budgets[0].key, 0.0) > time.monotonic():
            return
        answer = self._run(self._check, budgets, [b.cost for b in budgets])
        if answer and answer[0]:
            spent = budgets[answer[0] - 1]
            self._remember(spent, answer[1])
            raise spent.refusal(_seconds(answer[1]))
        if look_only and answer is not None:
            self._note_clear(budgets[0].key)

    def _note_clear(self, key: str) -> None:
        """Nothing to charge and the password-failure budget found whole: looking again
        within ``CLEAR_SECONDS`` would cost a Redis round trip per Basic request for
        nothing. A lockout another process counts reaches this one at most that late (its
        own refusals reach it at once, see ``refused``)."""
        now = time.monotonic()
        with self._lock:
            if len(self._clear) >= BLOCKED_MAX:
                self._clear = {k: t for k, t in self._clear.items() if t > now}
            self._clear[key] = now + CLEAR_SECONDS

    def budgets(self, address: str, principal: Principal | None, *, password: bool) -> list[Budget]:
        """What a request from ``address`` by ``principal`` is checked against (the failure
        budget only looked at, when it offers a password)."""
        where = bucket(address)
        budgets = []
        if self.address:
            budgets.append(Budget("address", "rate_limit_address", self.address, where))
        if self.failures and password:
            budgets.append(
                Budget("failures", "rate_limit_auth_failures", self.failures, where, cost=0)
            )
        if self.user and principal is not None:
            budgets.append(Budget("user", "rate_limit_user", self.user, principal.name))
        return budgets

    def refused(self, credentials: Credentials) -> TooManyRequests | None:
        """Count credentials the chain refused. The refusal to answer instead of 401 when
        the address was over a budget already (so the answer does not tell a right password
        from a wrong one), else None."""
        address = client_address() if has_request_context() else credentials.remote_addr
        if listed(address, self.exempt):
            return None
        where = bucket(address)
        budgets = []
        if self.address:
            budgets.append(Budget("address", "rate_limit_address", self.address, where))
        if self.failures and credentials.basic is not None:
            budgets.append(Budget("failures", "rate_limit_auth_failures", self.failures, where))
        for budget in budgets:
            self._clear.pop(budget.key, None)  # charged now: look again next time
        answer = self._run(self._charge, budgets, None) if budgets else None
        if not answer:
            return None
        before, before_wait, after, after_wait = answer
        if after:
            self._remember(budgets[after - 1], after_wait)
        return budgets[before - 1].refusal(_seconds(before_wait)) if before else None

    # --- Redis ----------------------------------------------------------------------------

    def _run(
        self, script: Script, budgets: Sequence[Budget], costs: list[int] | None
    ) -> list[int] | None:
        args: list[int] = []
        for i, budget in enumerate(budgets):
            args += [budget.rate.interval_us, budget.rate.period_us]
            if costs is not None:
                args.append(costs[i])
        try:
            answer = script(keys=[b.key for b in budgets], args=args)
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - self._warned >= WARN_EVERY:
                self._warned = now
                log.warning("rate limits not applied: Redis cannot be reached (%s)", exc)
            return None
        return [int(v) for v in answer]

    def _remember(self, budget: Budget, wait_us: int) -> None:
        if budget.scope == "user":
            return  # a principal can come from anywhere; it is checked in Redis each time
        now = time.monotonic()
        with self._lock:
            if len(self._blocked) >= BLOCKED_MAX:
                for key in [k for k, (until, _) in self._blocked.items() if until <= now]:
                    del self._blocked[key]
                if len(self._blocked) >= BLOCKED_MAX:
                    self._blocked.clear()
            self._blocked[(budget.scope, budget.subject)] = (now + wait_us / 1_000_000, budget)


def _offers_password() -> bool:
    scheme = request.headers.get("Authorization", "").lstrip()[:6].lower()
    return scheme == "basic "


ADMITTED = "nimbo_admitted"
"""``flask.g`` attribute: the principal the chain admitted in this request, also when a view
authenticated for itself (the audit log names it)."""


class GuardedChain(AuthChain):
    """The gateway's authentication chain, with its answers counted per address.

    It is the chain it wraps (same authenticators, same admit step) with two differences:
    a refusal goes through :meth:`RateLimiter.refused` first, which may turn the 401 into
    a 429; an admitted principal through :meth:`RateLimiter.admitted`, and it is kept in
    ``g.nimbo_admitted`` for the audit log."""

    def __init__(self, chain: AuthChain, limiter: RateLimiter) -> None:
        vars(self).update(vars(chain))  # the wrapped chain's state, whatever it holds
        self.limiter = limiter

    def authenticate(self, credentials: Credentials) -> Principal:
        try:
            principal = super().authenticate(credentials)
        except NotAuthenticated as refused:
            spent = self.limiter.refused(credentials)
            if spent is not None:
                raise spent from refused
            raise
        if has_request_context():
            setattr(g, ADMITTED, principal)
        self.limiter.admitted(credentials, principal)
        return principal
