"""The capabilities this server really has, as CDMI capability objects (CDMI 1.1.1 §12).

Everything advertised here is implemented and tested; an operation whose capability is absent
answers 400 (see :mod:`gateway.services.cdmi`). Values are JSON strings, as the spec says.
Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

# limits on user metadata (also enforced, see cdmi.model.check_metadata)
METADATA_MAX_ITEMS = 1024
METADATA_MAX_SIZE = 4096  # bytes of one item's name and JSON value
METADATA_MAX_TOTAL = 65536  # bytes of all items together
CHILDREN_MAX = 10000  # children listed per request; 400 above (use ?children:a-b)

_STORAGE_METADATA = (
    "cdmi_acl",
    "cdmi_size",
    "cdmi_ctime",
    "cdmi_atime",
    "cdmi_mtime",
    "cdmi_acount",
    "cdmi_mcount",
)

SYSTEM: dict[str, str] = {
    "cdmi_domains": "true",
    "cdmi_dataobjects": "true",
    "cdmi_export_occi_iscsi": "true",
    "cdmi_metadata_maxitems": str(METADATA_MAX_ITEMS),
    "cdmi_metadata_maxsize": str(METADATA_MAX_SIZE),
    "cdmi_metadata_maxtotalsize": str(METADATA_MAX_TOTAL),
    "cdmi_security_access_control": "true",
    "cdmi_snapshots": "true",
    "cdmi_object_move_from_local": "true",
    "cdmi_object_copy_from_local": "true",
    "cdmi_object_access_by_ID": "true",
    "cdmi_object_move_from_ID": "true",
    "cdmi_object_move_to_ID": "true",
    "cdmi_post_dataobject_by_ID": "true",
    "cdmi_copy_dataobject_by_ID": "true",
}

CONTAINER: dict[str, str] = {
    **{name: "true" for name in _STORAGE_METADATA},
    "cdmi_list_children": "true",
    "cdmi_list_children_range": "true",
    "cdmi_read_metadata": "true",
    "cdmi_modify_metadata": "true",
    "cdmi_snapshot": "true",
    "cdmi_create_dataobject": "true",
    "cdmi_post_dataobject": "true",
    "cdmi_create_container": "true",
    "cdmi_delete_container": "true",
    "cdmi_move_container": "true",
    "cdmi_copy_container": "true",
    "cdmi_move_dataobject": "true",
    "cdmi_copy_dataobject": "true",
    "cdmi_export_container_occi": "true",
}

DATAOBJECT: dict[str, str] = {
    **{name: "true" for name in _STORAGE_METADATA},
    "cdmi_read_value": "true",
    "cdmi_read_value_range": "true",
    "cdmi_read_metadata": "true",
    "cdmi_modify_value": "true",
    "cdmi_modify_value_range": "true",
    "cdmi_modify_metadata": "true",
    "cdmi_delete_dataobject": "true",
}

DOMAIN: dict[str, str] = {
    "cdmi_list_children": "true",
    "cdmi_read_metadata": "true",
}

# CDMI 1.0.x spelled the export capabilities the other way round.
_LEGACY_NAMES = {"cdmi_export_occi_iscsi": "cdmi_occi_export"}
_LEGACY_CONTAINER = {"cdmi_export_container_occi": "cdmi_occi_export"}


@dataclass(frozen=True)
class CapabilityNode:
    """One capability object: its path below ``cdmi_capabilities/`` and its values."""

    path: str  # "" (the root), "container/", "dataobject/", "domain/"
    capabilities: dict[str, str]
    children: tuple[str, ...] = ()


TREE: dict[str, CapabilityNode] = {
    "": CapabilityNode("", SYSTEM, ("container/", "dataobject/", "domain/")),
    "container/": CapabilityNode("container/", CONTAINER),
    "dataobject/": CapabilityNode("dataobject/", DATAOBJECT),
    "domain/": CapabilityNode("domain/", DOMAIN),
}


def values(node: CapabilityNode, *, legacy: bool) -> dict[str, str]:
    """The node's capabilities in the vocabulary of the client's version."""
    if not legacy:
        return dict(node.capabilities)
    renames = {**_LEGACY_NAMES, **_LEGACY_CONTAINER}
    return {renames.get(name, name): value for name, value in node.capabilities.items()}


def has(kind: str, name: str) -> bool:
    """Whether objects of ``kind`` (container/dataobject/domain, or "" for the system) have
    the capability ``name``."""
    table = {"": SYSTEM, "container": CONTAINER, "dataobject": DATAOBJECT, "domain": DOMAIN}
    return table[kind].get(name) == "true"
