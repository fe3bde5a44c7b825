"""Port address translation for guests: a public port of the host forwarded to a guest's port.

Sites with few public addresses give a guest on a private bridge a reachable service by mapping
``<host public address>:<public port>`` to ``<guest address>:<guest port>``. This module owns the
host side of that with nftables: one table of family ``ip`` per set of mappings, named
``nimbo_<table>``, holding three nat chains:

- ``prerouting`` DNATs connections arriving from other machines;
- ``output`` DNATs connections the host itself opens to its own address;
- ``postrouting`` masquerades the translated connections towards the guest, so the guest answers
  the host (and the host un-NATs the reply) even when the guest's default route goes elsewhere.
  The guest therefore sees the host's bridge address as the peer, not the client's.

Without a ``public_address`` a mapping applies to every address of the host (``fib daddr type
local``), never to traffic the host merely routes to other machines.

A ruleset is applied as one ``nft -f`` transaction that creates, deletes and redefines the table,
so applying it twice converges and a failure leaves the previous table untouched.

What the host must provide (nimbostratus changes no sysctl in the host's namespace):

- IPv4 forwarding: ``sysctl -w net.ipv4.ip_forward=1`` (persist it in ``/etc/sysctl.d/``);
- a filter policy that lets the translated connections through: nftables evaluates every base
  chain on a hook, so a ``drop`` or ``reject`` anywhere (for example libvirt's own rules of a
  ``nat``-mode network, which admit only established connections towards the guests) wins over
  this table; use a ``routed`` or bridged network or accept ``ct status dnat`` in that policy;
- the ``nft`` binary (Debian package ``nftables``) and, for ``netns``, ``ip`` (``iproute2``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.errors import BackendError, BackendUnavailable, ConfigurationError, InvalidAttribute

TABLE_PREFIX = "nimbo_"
"""Every table this module manages is called ``nimbo_<table>``; other tables are left alone."""

PROTOCOLS = ("tcp", "udp")
NFT_TIMEOUT = 30.0
"""Seconds an ``nft`` invocation may take before it counts as failed."""

_TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NETNS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_EXEC_MISSING = re.compile(r'exec of "[^"]*" failed: No such file or directory')

Runner = Callable[[list[str], str], "subprocess.CompletedProcess[str]"]
"""Runs ``argv`` with ``stdin`` as its input and returns the completed process (never raises on a
non-zero exit status; raises ``FileNotFoundError`` when the program does not exist)."""


@dataclass(frozen=True, order=True)
class PortMapping:
    """``public_port`` of the host (for ``protocol``) forwarded to ``guest_address:guest_port``."""

    protocol: str
    public_port: int
    guest_address: str
    guest_port: int

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise InvalidAttribute(
                f"port mapping protocol must be tcp or udp, not {self.protocol!r}"
            )
        _check_port("public port", self.public_port)
        _check_port("guest port", self.guest_port)
        _check_unicast("guest address", self.guest_address)


def _check_port(what: str, port: object) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidAttribute(f"{what} must be an integer from 1 to 65535, not {port!r}")


def _check_unicast(what: str, address: object) -> None:
    """``address`` is a dotted-quad IPv4 address a connection can be sent to."""
    try:
        parsed = ipaddress.IPv4Address(address) if isinstance(address, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidAttribute(f"{what} must be an IPv4 address such as 10.0.0.5, not {address!r}")
    if parsed.is_unspecified or parsed.is_loopback or parsed.is_multicast or parsed == _BROADCAST:
        raise InvalidAttribute(f"{what} must be a unicast, non-loopback address, not {address}")


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def nft_table_name(table: str) -> str:
    """The nftables name of our ``table``: ``nimbo_<table>``, after checking ``table``."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise InvalidAttribute(
            f"port mapping table name must be 1 to 64 characters of a-z, 0-9, '_' and '-', "
            f"starting with a letter or digit, not {table!r}"
        )
    return TABLE_PREFIX + table


def render_ruleset(
    table: str, mappings: Sequence[PortMapping], public_address: str | None = None
) -> str:
    """The ``nft -f`` script that (re)defines table ``nimbo_<table>`` with exactly ``mappings``.

    ``public_address`` limits the mappings to connections addressed to it; without it they apply
    to every local address of the host. Raises ``InvalidAttribute`` for a bad table name or
    address, or two mappings of the same protocol and public port. Rules come out sorted.
    """
    name = nft_table_name(table)
    if public_address is not None:
        _check_unicast("public address", public_address)
    ordered = sorted(mappings)
    _check_unique(ordered)
    match = "fib daddr type local" if public_address is None else f"ip daddr {public_address}"
    dnat = [
        f"{match} {m.protocol} dport {m.public_port} dnat to {m.guest_address}:{m.guest_port}"
        for m in ordered
    ]
    targets = sorted({(m.guest_address, m.protocol, m.guest_port) for m in ordered})
    masquerade = [
        f"ip daddr {address} {protocol} dport {port} ct status dnat masquerade"
        for address, protocol, port in targets
    ]
    return "".join(
        [
            "# generated by nimbostratus (backends.portmap); applied with nft -f\n",
            f"table ip {name} {{}}\n",
            f"delete table ip {name}\n",
            f"table ip {name} {{\n",
            _chain("prerouting", "type nat hook prerouting priority dstnat", dnat),
            "\n",
            # the name "dstnat" is only valid on the prerouting hook; -100 is its value
            _chain("output", "type nat hook output priority -100", dnat),
            "\n",
            _chain("postrouting", "type nat hook postrouting priority srcnat", masquerade),
            "}\n",
        ]
    )


def _check_unique(mappings: Sequence[PortMapping]) -> None:
    seen: dict[tuple[str, int], PortMapping] = {}
    for mapping in mappings:
        key = (mapping.protocol, mapping.public_port)
        if key in seen:
            raise InvalidAttribute(
                f"{mapping.protocol} public port {mapping.public_port} is mapped twice "
                f"(to {seen[key].guest_address}:{seen[key].guest_port} "
                f"and to {mapping.guest_address}:{mapping.guest_port})"
            )
        seen[key] = mapping


def _chain(name: str, hook: str, rules: Sequence[str]) -> str:
    body = "".join(f"\t\t{rule}\n" for rule in rules)
    return f"\tchain {name} {{\n\t\t{hook}; policy accept;\n{body}\t}}\n"


def run_command(argv: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    """The default :data:`Runner`: ``subprocess.run`` with captured text output."""
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, check=False, timeout=NFT_TIMEOUT
    )


class PortMapper:
    """Applies and removes port mapping tables with ``nft`` on this host or in a namespace.

    ``netns`` runs every ``nft`` as ``ip netns exec <netns> nft ...``; ``runner`` is the seam that
    executes commands (see :data:`Runner`); ``nft`` is the program name or path.
    """

    def __init__(
        self, *, netns: str | None = None, runner: Runner = run_command, nft: str = "nft"
    ) -> None:
        if netns is not None and (netns in (".", "..") or not _NETNS_NAME.fullmatch(netns)):
            raise ConfigurationError(f"invalid network namespace name {netns!r}")
        self.netns = netns
        self.runner = runner
        self.nft = nft

    def apply(
        self, table: str, mappings: Sequence[PortMapping], public_address: str | None = None
    ) -> None:
        """Make table ``nimbo_<table>`` hold exactly ``mappings`` (see :func:`render_ruleset`).

        Raises ``InvalidAttribute`` for bad input, ``BackendError`` when ``nft`` refuses it.
        """
        script = render_ruleset(table, mappings, public_address)
        self._nft(["-f", "-"], script, action=f"apply port mappings of table {table}")

    def remove(self, table: str) -> None:
        """Delete table ``nimbo_<table>``; nothing happens when it does not exist."""
        name = nft_table_name(table)
        script = f"table ip {name} {{}}\ndelete table ip {name}\n"
        self._nft(["-f", "-"], script, action=f"remove port mappings of table {table}")

    def list_tables(self) -> list[str]:
        """Our table names (without the ``nimbo_`` prefix) present on the host, sorted."""
        output = self._nft(["-j", "list", "tables", "ip"], "", action="list port mapping tables")
        try:
            items = json.loads(output)["nftables"]
            names = [item["table"]["name"] for item in items if "table" in item]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(
                f"list port mapping tables: unexpected nft output {output!r}"
            ) from exc
        prefix = len(TABLE_PREFIX)
        return sorted(name[prefix:] for name in names if name.startswith(TABLE_PREFIX))

    def argv(self, arguments: Sequence[str]) -> list[str]:
        """The command line running ``nft`` with ``arguments`` (in the namespace, if any)."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns is not None else []
        return [*prefix, self.nft, *arguments]

    def _nft(self, arguments: Sequence[str], stdin: str, *, action: str) -> str:
        """Run ``nft``; its standard output, or our error with its standard error."""
        argv = self.argv(arguments)
        try:
            completed = self.runner(argv, stdin)
        except FileNotFoundError as exc:
            raise self._missing(action, exc.filename or argv[0]) from exc
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailable(f"{action}: nft did not finish in {exc.timeout:g} s") from exc
        except OSError as exc:
            raise BackendError(f"{action}: cannot run {argv[0]}: {exc}") from exc
        if completed.returncode == 0:
            return completed.stdout
        stderr = completed.stderr.strip()
        failure = subprocess.CalledProcessError(
            completed.returncode, argv, completed.stdout, completed.stderr
        )
        if self.netns is not None and _EXEC_MISSING.search(stderr):
            raise self._missing(action, self.nft) from failure
        detail = stderr or f"exit status {completed.returncode}, no message"
        raise BackendError(f"{action}: {' '.join(argv)} failed: {detail}") from failure

    def _missing(self, action: str, program: str) -> BackendUnavailable:
        package = "iproute2" if program == "ip" else "nftables"
        where = f" in network namespace {self.netns}" if self.netns is not None else ""
        return BackendUnavailable(
            f"{action}: the program {program!r} was not found{where}; "
            f"install the Debian package {package} (apt-get install {package})"
        )
