"""Contextualization attributes: SSH keys and user data, checked at create time (OCCI 1.2
``ssh_key``/``user_data`` and the EGI/OpenStack ``public_key``/``user_data`` mixins)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from typing import Any

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
