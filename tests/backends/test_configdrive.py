"""The config drive: the ISO read back with pycdlib (no mounting), its files against golden
copies, the YAML parsed as cloud-init parses it, and ``context.sh`` sourced by a real ``sh`` to
prove hostile values stay data."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pycdlib
import pytest
import yaml

from backends.configdrive import (
    DEFAULT_USER_DATA,
    ContextSpec,
    InterfaceContext,
    build_config_drive,
    config_files,
    shell_quote,
)
from gateway.errors import InvalidAttribute
from tests import golden

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "configdrive"
FILES = ("meta-data", "user-data", "network-config", "context.sh")

ETH0 = InterfaceContext(
    name="eth0",
    mac="52:54:00:AB:cd:01",
    address="10.1.0.5/24",
    gateway="10.1.0.1",
    dns=("10.1.0.2", "2001:db8::53"),
)
ETH1 = InterfaceContext(name="data0", mac="52:54:00:ab:cd:02", address="192.168.7.20/28")
ETH2 = InterfaceContext(name="spare", mac="52:54:00:ab:cd:03")
KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn8kq0Vx9nQm5nYl2L0d0c1Xh3o3p0XW3o6kq5n1n1n alice@lab",
    'command="echo hi",no-pty ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bob@lab',
)
SPEC = ContextSpec(
    instance_id="6b5f0a1e-7c1d-4f3e-9a52-0c4e2d1b9f10",
    hostname="worker-1.grid.example",
    interfaces=(ETH0, ETH1, ETH2),
    ssh_keys=KEYS,
    user_data=b"#cloud-config\npackages: [htop]\n",
)
# Values a shell must never execute when it sources context.sh.
HOSTILE_KEYS = (
    "ssh-ed25519 AAAA it's $(touch PWNED) `touch PWNED` \"quoted\" \\ ${HOME} end'",
    "'; touch PWNED; echo '",
    "ssh-rsa AAAA trailing-quote'",
)
SHELL_OWN = frozenset({"PATH", "PWD", "OLDPWD", "SHLVL", "_"})
"""Variables ``sh`` exports by itself."""
HOSTILE_USER_DATA = b"#!/bin/sh\necho 'x'; $(touch PWNED)\n\"\\\n'\n\x00\xff binary"


def read_iso(image: bytes) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    return iso


def rr_file(iso: pycdlib.PyCdlib, name: str) -> bytes:
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
    return out.getvalue()


def root_names(iso: pycdlib.PyCdlib, **path: str) -> list[bytes]:
    return sorted(
        child.rock_ridge.name() if "rr_path" in path else child.file_identifier()
        for child in iso.list_children(**path)
        if not (child.is_dot() or child.is_dotdot())
    )


def extracted(image: bytes) -> dict[str, bytes]:
    iso = read_iso(image)
    try:
        return {name: rr_file(iso, name) for name in FILES}
    finally:
        iso.close()


def assert_golden(name: str, actual: bytes) -> None:
    golden.assert_golden(GOLDEN_DIR, name, actual)


def source_context(tmp_path: Path, context_sh: bytes) -> dict[str, str]:
    """Every variable ``sh`` has after sourcing ``context_sh`` in an empty environment."""
    (tmp_path / "context.sh").write_bytes(context_sh)
    # `set -a` exports every variable context.sh assigns, so `env` lists them
    result = subprocess.run(
        ["sh", "-c", "set -a && . ./context.sh && env -0"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    )
    assert result.stderr == b""
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if item)
    return {name: value for name, value in pairs if name not in SHELL_OWN}


# --- the image ----------------------------------------------------------------------------


def test_image_is_iso9660_labelled_cidata_with_rock_ridge_and_joliet() -> None:
    iso = read_iso(build_config_drive(SPEC))
    try:
        assert iso.pvd.volume_identifier.rstrip(b" ") == b"cidata"
        assert iso.has_rock_ridge() and iso.has_joliet()
        assert root_names(iso, rr_path="/") == sorted(name.encode() for name in FILES)
        joliet = [name.decode("utf-16-be") for name in root_names(iso, joliet_path="/")]
        assert joliet == sorted(FILES)
        assert root_names(iso, iso_path="/") == [
            b"CONTEXT.SH;1",
            b"META_DATA.;1",
            b"NETWORK_CONFIG.;1",
            b"USER_DATA.;1",
        ]
    finally:
        iso.close()


def test_every_file_on_the_image_is_what_config_files_says() -> None:
    files = config_files(SPEC)
    assert sorted(files) == sorted(FILES)
    assert extracted(build_config_drive(SPEC)) == files


@pytest.mark.parametrize("name", ["context.sh", "meta-data", "network-config"])
def test_golden_files(name: str) -> None:
    assert_golden(name, extracted(build_config_drive(SPEC))[name])


# --- meta-data, user-data, network-config as cloud-init reads them -------------------------


def test_meta_data() -> None:
    meta = yaml.safe_load(extracted(build_config_drive(SPEC))["meta-data"])
    assert meta == {
        "instance-id": SPEC.instance_id,
        "local-hostname": "worker-1.grid.example",
        "public-keys": list(KEYS),
    }


def test_meta_data_keeps_hostile_keys_and_no_keys_is_an_empty_list() -> None:
    hostile = replace(SPEC, ssh_keys=HOSTILE_KEYS)
    assert yaml.safe_load(config_files(hostile)["meta-data"])["public-keys"] == list(HOSTILE_KEYS)
    bare = replace(SPEC, ssh_keys=())
    assert yaml.safe_load(config_files(bare)["meta-data"])["public-keys"] == []


def test_user_data_is_passed_as_given_and_defaults_to_an_empty_cloud_config() -> None:
    files = extracted(build_config_drive(replace(SPEC, user_data=HOSTILE_USER_DATA)))
    assert files["user-data"] == HOSTILE_USER_DATA
    files = extracted(build_config_drive(replace(SPEC, user_data=None)))
    assert files["user-data"] == DEFAULT_USER_DATA == b"#cloud-config\n{}\n"
    assert yaml.safe_load(files["user-data"]) == {}


def test_network_config_version_2() -> None:
    network = yaml.safe_load(extracted(build_config_drive(SPEC))["network-config"])
    assert network == {
        "version": 2,
        "ethernets": {
            "eth0": {
                "match": {"macaddress": "52:54:00:ab:cd:01"},
                "set-name": "eth0",
                "dhcp4": False,
                "addresses": ["10.1.0.5/24"],
                "routes": [{"to": "0.0.0.0/0", "via": "10.1.0.1"}],
                "nameservers": {"addresses": ["10.1.0.2", "2001:db8::53"]},
            },
            "data0": {
                "match": {"macaddress": "52:54:00:ab:cd:02"},
                "set-name": "data0",
                "dhcp4": False,
                "addresses": ["192.168.7.20/28"],
            },
            "spare": {
                "match": {"macaddress": "52:54:00:ab:cd:03"},
                "set-name": "spare",
                "dhcp4": False,
            },
        },
    }


def test_network_config_keys_that_yaml_would_misread_are_quoted() -> None:
    spec = replace(SPEC, interfaces=(replace(ETH2, name="on"), replace(ETH1, name="null")))
    network = yaml.safe_load(config_files(spec)["network-config"])
    assert list(network["ethernets"]) == ["on", "null"]


def test_network_config_without_interfaces() -> None:
    network = yaml.safe_load(config_files(replace(SPEC, interfaces=()))["network-config"])
    assert network == {"version": 2, "ethernets": {}}


# --- context.sh sourced by a real shell ----------------------------------------------------


def test_context_sh_sourced(tmp_path: Path) -> None:
    variables = source_context(tmp_path, config_files(SPEC)["context.sh"])
    assert variables == {
        "HOSTNAME": "worker-1.grid.example",
        "SET_HOSTNAME": "worker-1.grid.example",
        "SSH_PUBLIC_KEY": "\n".join(KEYS),
        "USER_DATA_BASE64": base64.b64encode(SPEC.user_data or b"").decode(),
        "USERDATA_ENCODING": "base64",
        "NETWORK": "YES",
        "ETH0_MAC": "52:54:00:ab:cd:01",
        "ETH0_IP": "10.1.0.5",
        "ETH0_MASK": "255.255.255.0",
        "ETH0_PREFIX": "24",
        "ETH0_GATEWAY": "10.1.0.1",
        "ETH0_DNS": "10.1.0.2 2001:db8::53",
        "ETH1_MAC": "52:54:00:ab:cd:02",
        "ETH1_IP": "192.168.7.20",
        "ETH1_MASK": "255.255.255.240",
        "ETH1_PREFIX": "28",
        "ETH1_GATEWAY": "",
        "ETH1_DNS": "",
        "ETH2_MAC": "52:54:00:ab:cd:03",
        "ETH2_IP": "",
        "ETH2_MASK": "",
        "ETH2_PREFIX": "",
        "ETH2_GATEWAY": "",
        "ETH2_DNS": "",
    }


def test_hostile_values_stay_data_when_context_sh_is_sourced(tmp_path: Path) -> None:
    spec = replace(SPEC, ssh_keys=HOSTILE_KEYS, user_data=HOSTILE_USER_DATA)
    context_sh = extracted(build_config_drive(spec))["context.sh"]
    variables = source_context(tmp_path, context_sh)
    assert not (tmp_path / "PWNED").exists()
    assert variables["SSH_PUBLIC_KEY"] == "\n".join(HOSTILE_KEYS)
    assert base64.b64decode(variables["USER_DATA_BASE64"]) == HOSTILE_USER_DATA
    assert variables["HOSTNAME"] == "worker-1.grid.example"
    # each assignment is one statement: nothing but the expected variables appeared
    assert set(variables) == set(source_context(tmp_path, config_files(SPEC)["context.sh"]))


def test_context_sh_without_interfaces_or_user_data(tmp_path: Path) -> None:
    spec = ContextSpec(instance_id="i-1", hostname="bare")
    variables = source_context(tmp_path, config_files(spec)["context.sh"])
    assert variables == {
        "HOSTNAME": "bare",
        "SET_HOSTNAME": "bare",
        "SSH_PUBLIC_KEY": "",
        "USER_DATA_BASE64": "",
        "USERDATA_ENCODING": "base64",
    }


def test_every_context_sh_value_is_single_quoted() -> None:
    lines = config_files(replace(SPEC, ssh_keys=KEYS[:1]))["context.sh"].decode().splitlines()
    assert lines[0].startswith("# ")
    for line in lines[1:]:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*='[^']*'", line), line


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("", "''"), ("plain", "'plain'"), ("it's", "'it'\\''s'"), ("$(x) `y`", "'$(x) `y`'")],
)
def test_shell_quote(value: str, quoted: str) -> None:
    assert shell_quote(value) == quoted


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hostname": "bad_host"}, "RFC 1123"),
        ({"hostname": "-leading"}, "RFC 1123"),
        ({"hostname": "trailing-.example"}, "RFC 1123"),
        ({"hostname": "a" * 64}, "RFC 1123"),
        ({"hostname": "a..b"}, "RFC 1123"),
        ({"hostname": ""}, "RFC 1123"),
        ({"hostname": "x$(reboot)"}, "RFC 1123"),
        ({"hostname": ".".join(["a" * 63] * 4)}, "RFC 1123"),
        ({"instance_id": ""}, "instance id"),
        ({"instance_id": "i-1\nlocal-hostname: evil"}, "instance id"),
        ({"ssh_keys": ("ssh-ed25519 AAAA\nssh-rsa BBBB",)}, "ssh key"),
        ({"ssh_keys": ("   ",)}, "ssh key: empty"),
        ({"interfaces": (ETH0, replace(ETH1, mac="52:54:00:ab:cd:01"))}, "same MAC"),
        ({"interfaces": (ETH0, replace(ETH1, name="eth0"))}, "same name"),
    ],
)
def test_bad_spec_values_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAttribute, match=message):
        replace(SPEC, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mac": "52:54:00:ab:cd"}, "MAC address"),
        ({"mac": "52-54-00-ab-cd-01"}, "MAC address"),
        ({"mac": "52:54:00:ab:cd:0g"}, "MAC address"),
        ({"mac": "01:00:5e:00:00:01"}, "multicast"),
        ({"address": "10.1.0.5"}, "CIDR"),
        ({"address": "10.1.0.5/255.255.255.0"}, "CIDR"),
        ({"address": "10.1.0.300/24"}, "not an IPv4"),
        ({"address": "10.1.0.5/33"}, "not an IPv4"),
        ({"address": "2001:db8::5/64"}, "not an IPv4"),
        ({"address": "10.1.0.0/24"}, "network or broadcast"),
        ({"address": "10.1.0.255/24"}, "network or broadcast"),
        ({"gateway": "10.2.0.1"}, "outside"),
        ({"gateway": "gateway"}, "not an IPv4"),
        ({"address": None}, "without an address"),
        ({"dns": ("10.1.0.2", "ns.example")}, "name server"),
        ({"name": "a-very-long-ifname"}, "interface name"),
        ({"name": "eth 0"}, "interface name"),
        ({"name": ""}, "interface name"),
    ],
)
def test_bad_interface_values_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidAttribute, match=message):
        replace(ETH0, **changes)


def test_point_to_point_prefixes_are_addresses() -> None:
    assert replace(ETH1, address="10.9.0.0/31").interface is not None
    assert replace(ETH1, address="10.9.0.7/32").interface is not None
