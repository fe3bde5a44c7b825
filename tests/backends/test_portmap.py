"""Port mapping for guests (backends.portmap): rulesets against golden files, validation, the
runner seam and error translation; then real nftables in network namespaces the test creates.

To regenerate the golden rulesets after an intended change: ``NIMBO_UPDATE_GOLDEN=1 pytest
tests/backends/test_portmap.py``, then review the diff of ``tests/fixtures/portmap/``.

The ``netns`` tests build, and delete afterwards, three namespaces joined by two veth pairs::

    client 198.18.0.2 ── 198.18.0.1 host 10.99.0.1 ── 10.99.0.2 guest
           (eth0)        (public0)       (bridge0)      (eth0)

Client and guest both route by default through the host, which forwards (ip_forward=1 set in
its namespace only).

The veth pairs are created inside the namespaces (``ip -n``), so the root namespace's
interfaces, routes and ruleset are never touched; all traffic stays inside the namespaces.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from backends.portmap import (
    PortMapper,
    PortMapping,
    nft_table_name,
    render_ruleset,
    run_command,
)
from gateway.errors import BackendError, BackendUnavailable, ConfigurationError, InvalidAttribute
from tests import golden
from tests.netns import must, netns_unavailable, run

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "portmap"

SSH = PortMapping("tcp", 2222, "10.99.0.2", 8080)
DNS = PortMapping("udp", 5300, "10.99.0.2", 5353)
WEB = PortMapping("tcp", 8443, "10.99.0.3", 443)
ALT = PortMapping("tcp", 2223, "10.99.0.2", 8080)  # a second public port, same guest port


def assert_golden(name: str, text: str) -> None:
    golden.assert_golden(GOLDEN, name, text)


GOLDEN_CASES = {
    "public_address.nft": lambda: render_ruleset("web", [WEB, DNS, ALT, SSH], "198.18.0.1"),
    "any_local_address.nft": lambda: render_ruleset("web", [SSH, DNS]),
    "empty.nft": lambda: render_ruleset("idle", []),
}


# --- rendering ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_ruleset(name: str) -> None:
    assert_golden(name, GOLDEN_CASES[name]())


def test_rules_are_sorted_whatever_the_input_order() -> None:
    forward = render_ruleset("web", [SSH, DNS, WEB, ALT], "198.18.0.1")
    assert render_ruleset("web", [ALT, WEB, DNS, SSH], "198.18.0.1") == forward
    assert render_ruleset("web", (WEB, SSH, ALT, DNS), "198.18.0.1") == forward


def test_one_masquerade_rule_per_guest_port() -> None:
    text = render_ruleset("web", [SSH, ALT])
    assert text.count("dnat to 10.99.0.2:8080") == 4  # prerouting and output, two ports each
    assert text.count("ip daddr 10.99.0.2 tcp dport 8080 ct status dnat masquerade") == 1


def test_ruleset_recreates_the_table_in_one_script() -> None:
    lines = render_ruleset("web", [SSH]).splitlines()
    assert lines[1:4] == [
        "table ip nimbo_web {}",
        "delete table ip nimbo_web",
        "table ip nimbo_web {",
    ]


def test_same_public_port_twice_is_refused() -> None:
    other = PortMapping("tcp", 2222, "10.99.0.9", 22)
    with pytest.raises(InvalidAttribute, match="tcp public port 2222 is mapped twice"):
        render_ruleset("web", [SSH, other])


def test_same_port_number_for_tcp_and_udp_is_fine() -> None:
    text = render_ruleset("web", [SSH, PortMapping("udp", 2222, "10.99.0.2", 8080)])
    assert "udp dport 2222 dnat to 10.99.0.2:8080" in text


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("sctp", 80, "10.0.0.5", 80), "protocol must be tcp or udp, not 'sctp'"),
        (("TCP", 80, "10.0.0.5", 80), "protocol must be tcp or udp, not 'TCP'"),
        (("tcp", 0, "10.0.0.5", 80), "public port must be an integer from 1 to 65535, not 0"),
        (("tcp", 65536, "10.0.0.5", 80), "public port must be .* not 65536"),
        (("tcp", True, "10.0.0.5", 80), "public port must be .* not True"),
        (("tcp", "80", "10.0.0.5", 80), "public port must be .* not '80'"),
        (("udp", 53, "10.0.0.5", -1), "guest port must be .* not -1"),
        (("udp", 53, "10.0.0.5", 70000), "guest port must be .* not 70000"),
        (("tcp", 80, "10.0.0.256", 80), "guest address must be an IPv4 address .* '10.0.0.256'"),
        (("tcp", 80, "010.0.0.5", 80), "guest address must be an IPv4 address .* '010.0.0.5'"),
        (("tcp", 80, "fd00::5", 80), "guest address must be an IPv4 address .* 'fd00::5'"),
        (("tcp", 80, "guest.example", 80), "guest address must be an IPv4 address"),
        (("tcp", 80, "127.0.0.1", 80), "guest address must be a unicast, non-loopback"),
        (("tcp", 80, "0.0.0.0", 80), "guest address must be a unicast, non-loopback"),
        (("tcp", 80, "224.0.0.1", 80), "guest address must be a unicast, non-loopback"),
        (("tcp", 80, "255.255.255.255", 80), "guest address must be a unicast, non-loopback"),
    ],
)
def test_invalid_mapping(arguments: tuple[object, ...], message: str) -> None:
    with pytest.raises(InvalidAttribute, match=message):
        PortMapping(*arguments)  # type: ignore[arg-type]


def test_valid_mapping_extremes() -> None:
    mapping = PortMapping("udp", 1, "198.18.0.77", 65535)
    assert (mapping.public_port, mapping.guest_port) == (1, 65535)
    with pytest.raises(AttributeError):
        mapping.public_port = 2  # type: ignore[misc]


@pytest.mark.parametrize("address", ["198.18.0.256", "localhost", "127.0.0.1", "::1", ""])
def test_invalid_public_address(address: str) -> None:
    with pytest.raises(InvalidAttribute, match="public address must be"):
        render_ruleset("web", [SSH], address)


@pytest.mark.parametrize(
    "table", ["", "Web", "a b", "x;flush ruleset", "-x", "_x", "web\n", "a" * 65, "é"]
)
def test_invalid_table_name(table: str) -> None:
    with pytest.raises(InvalidAttribute, match="table name must be"):
        nft_table_name(table)
    with pytest.raises(InvalidAttribute, match="table name must be"):
        PortMapper(runner=RecordingRunner()).remove(table)


def test_table_names_are_prefixed() -> None:
    assert nft_table_name("web") == "nimbo_web"
    name = uuid.UUID(int=7).hex
    assert nft_table_name(name) == f"nimbo_{name}"
    assert nft_table_name("a" * 64) == "nimbo_" + "a" * 64
    assert nft_table_name(str(uuid.UUID(int=7))) == f"nimbo_{uuid.UUID(int=7)}"


@pytest.mark.parametrize("netns", ["", ".", "..", "a/b", "-n", "x y"])
def test_invalid_namespace_name(netns: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid network namespace name"):
        PortMapper(netns=netns)


# --- the runner seam ---------------------------------------------------------------------


@dataclass
class RecordingRunner:
    """A :data:`backends.portmap.Runner` that records calls and answers with a set result."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    raises: BaseException | None = None
    calls: list[tuple[list[str], str]] = field(default_factory=list)

    def __call__(self, argv: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
        self.calls.append((argv, stdin))
        if self.raises is not None:
            raise self.raises
        return subprocess.CompletedProcess(argv, self.returncode, self.stdout, self.stderr)


def test_apply_feeds_the_ruleset_to_nft() -> None:
    runner = RecordingRunner()
    PortMapper(runner=runner).apply("web", [SSH], public_address="198.18.0.1")
    assert runner.calls == [(["nft", "-f", "-"], render_ruleset("web", [SSH], "198.18.0.1"))]


def test_netns_prefixes_ip_netns_exec() -> None:
    runner = RecordingRunner()
    PortMapper(netns="hv-1", runner=runner, nft="/usr/sbin/nft").apply("web", [SSH])
    argv, _stdin = runner.calls[0]
    assert argv == ["ip", "netns", "exec", "hv-1", "/usr/sbin/nft", "-f", "-"]


def test_remove_deletes_the_table_even_when_absent() -> None:
    runner = RecordingRunner()
    PortMapper(netns="hv-1", runner=runner).remove("web")
    assert runner.calls == [
        (
            ["ip", "netns", "exec", "hv-1", "nft", "-f", "-"],
            "table ip nimbo_web {}\ndelete table ip nimbo_web\n",
        )
    ]


def test_list_tables_keeps_only_ours() -> None:
    listing = {
        "nftables": [
            {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "ip", "name": "nimbo_web", "handle": 3}},
            {"table": {"family": "ip", "name": "filter", "handle": 1}},
            {"table": {"family": "ip", "name": "nimbo_4f0c", "handle": 4}},
            {"table": {"family": "ip", "name": "nimbo", "handle": 5}},
        ]
    }
    runner = RecordingRunner(stdout=json.dumps(listing))
    assert PortMapper(runner=runner).list_tables() == ["4f0c", "web"]
    assert runner.calls == [(["nft", "-j", "list", "tables", "ip"], "")]


def test_invalid_input_never_reaches_nft() -> None:
    runner = RecordingRunner()
    with pytest.raises(InvalidAttribute):
        PortMapper(runner=runner).apply("web", [SSH, SSH])
    assert runner.calls == []


# --- error translation -------------------------------------------------------------------


def test_nft_failure_is_a_backend_error_with_stderr() -> None:
    stderr = "Error: Could not process rule: Operation not permitted\n"
    runner = RecordingRunner(returncode=1, stderr=stderr)
    with pytest.raises(BackendError) as caught:
        PortMapper(runner=runner).apply("web", [SSH])
    error = caught.value
    assert type(error) is BackendError
    assert error.message == (
        "apply port mappings of table web: nft -f - failed: "
        "Error: Could not process rule: Operation not permitted"
    )
    assert isinstance(error.__cause__, subprocess.CalledProcessError)
    assert error.__cause__.stderr == stderr


def test_silent_failure_names_the_exit_status() -> None:
    runner = RecordingRunner(returncode=3)
    with pytest.raises(BackendError, match="failed: exit status 3, no message"):
        PortMapper(runner=runner).remove("web")


def test_unreadable_listing_is_a_backend_error() -> None:
    runner = RecordingRunner(stdout="table ip nimbo_web\n")
    with pytest.raises(BackendError, match="unexpected nft output") as caught:
        PortMapper(runner=runner).list_tables()
    assert isinstance(caught.value.__cause__, ValueError)


def test_missing_nft_says_install_nftables() -> None:
    mapper = PortMapper(nft="nimbo-no-such-nft")  # the real runner, a program that is absent
    with pytest.raises(BackendUnavailable, match=r"apt-get install nftables") as caught:
        mapper.list_tables()
    assert "'nimbo-no-such-nft' was not found" in caught.value.message
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_missing_nft_in_namespace_says_install_nftables() -> None:
    stderr = 'exec of "nft" failed: No such file or directory\n'
    runner = RecordingRunner(returncode=1, stderr=stderr)
    with pytest.raises(BackendUnavailable) as caught:
        PortMapper(netns="hv-1", runner=runner).remove("web")
    assert caught.value.message == (
        "remove port mappings of table web: the program 'nft' was not found in network "
        "namespace hv-1; install the Debian package nftables (apt-get install nftables)"
    )


def test_missing_ip_says_install_iproute2() -> None:
    runner = RecordingRunner(raises=FileNotFoundError(2, "No such file or directory", "ip"))
    with pytest.raises(BackendUnavailable, match=r"'ip' was not found.*iproute2"):
        PortMapper(netns="hv-1", runner=runner).remove("web")


def test_hung_nft_is_unavailable() -> None:
    runner = RecordingRunner(raises=subprocess.TimeoutExpired(["nft"], 30))
    with pytest.raises(BackendUnavailable, match="nft did not finish in 30 s"):
        PortMapper(runner=runner).remove("web")


# --- real nftables in private network namespaces -----------------------------------------

PUBLIC = "198.18.0.1"
CLIENT = "198.18.0.2"
BRIDGE = "10.99.0.1"
GUEST = "10.99.0.2"

GUEST_SERVER = """
import selectors, socket
tcp = socket.create_server(("0.0.0.0", 8080))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 5353))
selector = selectors.DefaultSelector()
selector.register(tcp, selectors.EVENT_READ)
selector.register(udp, selectors.EVENT_READ)
print("ready", flush=True)
while True:
    for key, _ in selector.select():
        if key.fileobj is tcp:
            connection, peer = tcp.accept()
            connection.sendall(f"nimbo-guest tcp from {peer[0]}\\n".encode())
            connection.close()
        else:
            data, peer = udp.recvfrom(512)
            udp.sendto(f"nimbo-guest udp from {peer[0]}: ".encode() + data, peer)
"""

PROBE = """
import socket, sys
protocol, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if protocol == "tcp":
        with socket.create_connection((host, port), timeout=2) as connection:
            data = connection.makefile("rb").readline()
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as connection:
            connection.settimeout(2)
            connection.connect((host, port))
            connection.send(b"ping")
            data = connection.recv(512)
    print(data.decode().strip())
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("timeout")
"""


@dataclass
class Topology:
    """Names of the three namespaces of one test module run."""

    client: str
    host: str
    guest: str

    def probe(self, namespace: str, protocol: str, address: str, port: int) -> str:
        """What a fresh ``protocol`` connection from ``namespace`` to ``address:port`` gets."""
        argv = ["ip", "netns", "exec", namespace, sys.executable, "-c", PROBE]
        completed = subprocess.run(
            [*argv, protocol, address, str(port)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return completed.stdout.strip()


def _build(topology: Topology) -> None:
    client, host, guest = topology.client, topology.host, topology.guest
    for namespace in (client, host, guest):
        must("ip", "netns", "add", namespace)
        must("ip", "-n", namespace, "link", "set", "lo", "up")
    must(
        "ip", "-n", client, "link", "add", "eth0", "type", "veth", "peer", "public0", "netns", host
    )
    must(
        "ip", "-n", guest, "link", "add", "eth0", "type", "veth", "peer", "bridge0", "netns", host
    )
    for namespace, device, address in (
        (client, "eth0", f"{CLIENT}/24"),
        (host, "public0", f"{PUBLIC}/24"),
        (host, "bridge0", f"{BRIDGE}/24"),
        (guest, "eth0", f"{GUEST}/24"),
    ):
        must("ip", "-n", namespace, "address", "add", address, "dev", device)
        must("ip", "-n", namespace, "link", "set", device, "up")
    must("ip", "-n", guest, "route", "add", "default", "via", BRIDGE)
    must("ip", "-n", client, "route", "add", "default", "via", PUBLIC)  # answers to the guest
    forwarding = "open('/proc/sys/net/ipv4/ip_forward', 'w').write('1')"
    must("ip", "netns", "exec", host, sys.executable, "-c", forwarding)


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    """client, host and guest namespaces with a banner/echo server in guest; all removed after."""
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"network namespace tests need root, ip netns and nft: {reason}")
    token = uuid.uuid4().hex[:8]
    names = Topology(*(f"nimbo-{token}-{role}" for role in ("client", "host", "guest")))
    server: subprocess.Popen[str] | None = None
    try:
        _build(names)
        server = subprocess.Popen(
            ["ip", "netns", "exec", names.guest, sys.executable, "-c", GUEST_SERVER],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready", "the guest server did not start"
        yield names
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
            if server.stdout is not None:
                server.stdout.close()
        for namespace in (names.client, names.host, names.guest):
            run("ip", "netns", "delete", namespace)


@pytest.fixture
def mapper(topology: Topology) -> Iterator[PortMapper]:
    """A mapper for the host namespace; every nimbo table is gone after the test."""
    port_mapper = PortMapper(netns=topology.host)
    yield port_mapper
    for table in port_mapper.list_tables():
        port_mapper.remove(table)


@pytest.mark.netns
def test_tcp_mapping_reaches_the_guest_until_removed(
    topology: Topology, mapper: PortMapper
) -> None:
    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == "refused"

    mapper.apply("web", [SSH], public_address=PUBLIC)

    assert mapper.list_tables() == ["web"]
    # the guest sees the host's bridge address: the postrouting chain masqueraded the connection
    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == f"nimbo-guest tcp from {BRIDGE}"
    # the output chain: the host reaching its own public address
    assert topology.probe(topology.host, "tcp", PUBLIC, 2222) == f"nimbo-guest tcp from {BRIDGE}"

    mapper.remove("web")
    mapper.remove("web")  # idempotent

    assert mapper.list_tables() == []
    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == "refused"


@pytest.mark.netns
def test_udp_mapping_echoes_until_removed(topology: Topology, mapper: PortMapper) -> None:
    mapper.apply("dns", [DNS], public_address=PUBLIC)

    echoed = topology.probe(topology.client, "udp", PUBLIC, 5300)
    assert echoed == f"nimbo-guest udp from {BRIDGE}: ping"

    mapper.remove("dns")

    assert topology.probe(topology.client, "udp", PUBLIC, 5300) == "refused"


@pytest.mark.netns
def test_without_public_address_only_local_addresses_are_mapped(
    topology: Topology, mapper: PortMapper
) -> None:
    mapper.apply("web", [SSH])

    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == f"nimbo-guest tcp from {BRIDGE}"
    assert topology.probe(topology.host, "tcp", BRIDGE, 2222) == f"nimbo-guest tcp from {BRIDGE}"
    # the guest's own connection to the client's port 2222 is routed, not captured
    assert topology.probe(topology.guest, "tcp", CLIENT, 2222) == "refused"


@pytest.mark.netns
def test_reapplying_converges_to_the_new_mappings(topology: Topology, mapper: PortMapper) -> None:
    mapper.apply("web", [SSH], public_address=PUBLIC)
    mapper.apply("web", [SSH], public_address=PUBLIC)
    moved = PortMapping("tcp", 2424, GUEST, 8080)

    mapper.apply("web", [moved], public_address=PUBLIC)

    assert mapper.list_tables() == ["web"]
    assert topology.probe(topology.client, "tcp", PUBLIC, 2424) == f"nimbo-guest tcp from {BRIDGE}"
    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == "refused"
    listing = run("ip", "netns", "exec", topology.host, "nft", "list", "table", "ip", "nimbo_web")
    assert "dport 2424" in listing.stdout
    assert "dport 2222" not in listing.stdout


@pytest.mark.netns
def test_tables_are_independent(topology: Topology, mapper: PortMapper) -> None:
    mapper.apply("web", [SSH], public_address=PUBLIC)
    mapper.apply("dns", [DNS], public_address=PUBLIC)
    assert mapper.list_tables() == ["dns", "web"]

    mapper.remove("dns")

    assert mapper.list_tables() == ["web"]
    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == f"nimbo-guest tcp from {BRIDGE}"
    assert topology.probe(topology.client, "udp", PUBLIC, 5300) == "refused"


@pytest.mark.netns
def test_refused_ruleset_leaves_the_previous_table_working(
    topology: Topology, mapper: PortMapper
) -> None:
    mapper.apply("web", [SSH], public_address=PUBLIC)

    def corrupting(argv: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
        return run_command(argv, stdin.replace("masquerade", "masquerade bogus"))

    broken = PortMapper(netns=topology.host, runner=corrupting)
    with pytest.raises(BackendError, match=r"apply port mappings of table web: .*Error") as caught:
        broken.apply("web", [PortMapping("tcp", 2424, GUEST, 8080)], public_address=PUBLIC)

    assert "bogus" in caught.value.message  # nft's own report of the line it refused
    assert topology.probe(topology.client, "tcp", PUBLIC, 2222) == f"nimbo-guest tcp from {BRIDGE}"
    assert topology.probe(topology.client, "tcp", PUBLIC, 2424) == "refused"


@pytest.mark.netns
@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_rulesets_are_accepted_by_nft(topology: Topology, name: str) -> None:
    checked = run("ip", "netns", "exec", topology.host, "nft", "--check", "-f", str(GOLDEN / name))
    assert checked.returncode == 0, checked.stderr


@pytest.mark.netns
def test_absent_namespace_is_a_backend_error(topology: Topology) -> None:
    absent = f"{topology.host}-absent"
    with pytest.raises(BackendError, match=f'Cannot open network namespace "{absent}"'):
        PortMapper(netns=absent).list_tables()
