"""Contextualization: SSH keys, user data and the hostname, checked at create time (OCCI 1.2
``ssh_key``/``user_data`` and the EGI/OpenStack ``public_key``/``user_data`` mixins), and the
:class:`~backends.configdrive.ContextSpec` the worker writes onto the config drive."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from backends.configdrive import ContextSpec, InterfaceContext
from gateway.errors import Conflict, InvalidAttribute
from occi import infrastructure as infra
from occi.core import Mixin

_KEY_TYPES = (
    r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|"
    r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
)
SSH_KEY_LINE = re.compile(rf"^(?:\S+\s+)?{_KEY_TYPES}\s+[A-Za-z0-9+/]+={{0,3}}(\s+\S.*)?$")

KEY_ATTRIBUTES = ("occi.credentials.ssh.publickey", "org.openstack.credentials.publickey.data")
USERDATA_ATTRIBUTES = ("occi.compute.userdata", "org.openstack.compute.user_data")
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def check_context(
    mixins: Iterable[Mixin], attributes: dict[str, Any], max_bytes: int
) -> str | None:
    """Validate context attributes in place; returns a note for ``state.message`` when user
    data is kept raw (not base64). Raises 409 for both variants of one mixin, 400 otherwise."""
    given = set(mixins)
    if infra.SSH_KEY in given and infra.OS_PUBLIC_KEY in given:
        raise Conflict(
            "give either the OCCI ssh_key mixin or the OpenStack public_key mixin, not both"
        )
    if infra.USER_DATA in given and infra.OS_USER_DATA in given:
        raise Conflict(
            "give either the OCCI user_data mixin or the OpenStack user_data mixin, not both"
        )
    hostname = attributes.get("occi.compute.hostname")
    if hostname is not None and not HOSTNAME.match(str(hostname)):
        raise InvalidAttribute(
            f"occi.compute.hostname {hostname!r} is not a host name (RFC 1123: labels of "
            "letters, digits and inner hyphens, separated by dots)"
        )
    for name in KEY_ATTRIBUTES:
        key = attributes.get(name)
        if key is not None and not SSH_KEY_LINE.match(str(key).strip()):
            raise InvalidAttribute(
                f"{name} must be one OpenSSH public key line (e.g. 'ssh-ed25519 AAAA... user@host')"
            )
    note = None
    for name in USERDATA_ATTRIBUTES:
        data = attributes.get(name)
        if data is None:
            continue
        compact = re.sub(r"\s+", "", str(data))
        if len(compact) > max_bytes:
            raise InvalidAttribute(
                f"{name} is {len(compact)} bytes; at most {max_bytes} bytes of base64 are accepted"
            )
        try:
            base64.b64decode(compact, validate=True)
            attributes[name] = compact
        except (binascii.Error, ValueError):
            note = f"{name} is not base64; it is passed to the guest as given"
    return note


def default_hostname(compute_id: str, title: object) -> str:
    """The title made a host name label when it can be, else ``vm-`` and the id's start."""
    label = re.sub(r"[^A-Za-z0-9-]+", "-", str(title or "")).strip("-")[:63].strip("-")
    return label if label else f"vm-{compute_id.replace('-', '')[:12]}"


def context_spec(
    compute_id: str,
    attributes: Mapping[str, Any],
    interfaces: Sequence[Mapping[str, Any]],
) -> ContextSpec:
    """What the guest learns from its config drive: host name, addresses per MAC (from the
    interfaces' leases), SSH keys and user data (base64 decoded; raw when it was not base64)."""
    hostname = attributes.get("occi.compute.hostname") or default_hostname(
        compute_id, attributes.get("occi.core.title")
    )
    keys = tuple(str(attributes[n]).strip() for n in KEY_ATTRIBUTES if attributes.get(n))
    user_data = None
    for name in USERDATA_ATTRIBUTES:
        data = attributes.get(name)
        if data:
            try:
                user_data = base64.b64decode(str(data), validate=True)
            except (binascii.Error, ValueError):
                user_data = str(data).encode()
            break
    return ContextSpec(
        instance_id=compute_id,
        hostname=str(hostname),
        interfaces=tuple(
            InterfaceContext(
                name=str(nic.get("occi.networkinterface.interface") or f"eth{n}"),
                mac=str(nic["occi.networkinterface.mac"]).lower(),
                address=nic.get("occi.networkinterface.address"),
                gateway=nic.get("occi.networkinterface.gateway"),
            )
            for n, nic in enumerate(interfaces)
        ),
        ssh_keys=keys,
        user_data=user_data,
    )
