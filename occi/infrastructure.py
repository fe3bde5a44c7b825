"""OCCI Core and Infrastructure categories (GFD-R-P.221 and GFD-R-P.224), plus the EGI /
OpenStack contextualization mixins that the EGI clients send.

Only declarations; the state rules of actions live in :data:`ACTION_STATES`.
"""

from __future__ import annotations

from occi.core import CORE, Action, AttributeDefinition, AttributeType, Kind, Mixin

A = AttributeDefinition
T = AttributeType

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
COMPUTE_ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
NETWORK_ACTION = "http://schemas.ogf.org/occi/infrastructure/network/action#"
STORAGE_ACTION = "http://schemas.ogf.org/occi/infrastructure/storage/action#"
NETWORK_MIXINS = "http://schemas.ogf.org/occi/infrastructure/network#"
NETIF_MIXINS = "http://schemas.ogf.org/occi/infrastructure/networkinterface#"
CREDENTIALS = "http://schemas.ogf.org/occi/infrastructure/credentials#"
COMPUTE_MIXINS = "http://schemas.ogf.org/occi/infrastructure/compute#"
OPENSTACK_CREDENTIALS = "http://schemas.openstack.org/instance/credentials#"
OPENSTACK_COMPUTE = "http://schemas.openstack.org/compute/instance#"
NIMBO_NETIF = "http://schemas.nimbostratus.org/occi/infrastructure/networkinterface#"

# --- core -------------------------------------------------------------------------------

ENTITY = Kind(
    CORE,
    "entity",
    "Entity",
    attributes=(
        A(
            "occi.core.id",
            T.STRING,
            required=True,
            mutable=False,
            description="Unique identifier (URN)",
        ),
        A("occi.core.title", T.STRING, description="Display name"),
    ),
)
RESOURCE = Kind(
    CORE,
    "resource",
    "Resource",
    parent=ENTITY,
    attributes=(A("occi.core.summary", T.STRING, description="Short description"),),
)
LINK = Kind(
    CORE,
    "link",
    "Link",
    parent=ENTITY,
    attributes=(
        A(
            "occi.core.source",
            T.STRING,
            required=True,
            description="Location of the source resource",
        ),
        A(
            "occi.core.target",
            T.STRING,
            required=True,
            description="Location of the target resource",
        ),
    ),
)


def _state_attrs(prefix: str, states: tuple[str, ...], default: str) -> tuple[A, A]:
    return (
        A(
            f"{prefix}.state",
            T.ENUM,
            required=True,
            mutable=False,
            enum=states,
            default=default,
            description="Current state",
        ),
        A(
            f"{prefix}.state.message",
            T.STRING,
            mutable=False,
            description="Human-readable explanation of the current state",
        ),
    )


# --- tenancy (every instantiable kind) ----------------------------------------------------

OWNER_ATTRIBUTE = "org.nimbostratus.owner"
GROUP_ATTRIBUTE = "org.nimbostratus.group"
TENANCY_ATTRIBUTES = (
    A(
        OWNER_ATTRIBUTE,
        T.STRING,
        mutable=False,
        description="User who owns the entity (set by the server)",
    ),
    A(
        GROUP_ATTRIBUTE,
        T.STRING,
        description="Group whose members share the entity (one of the owner's groups; a "
        "link's is its source compute's)",
    ),
)

# --- compute ----------------------------------------------------------------------------

START = Action(COMPUTE_ACTION, "start", "Start the compute")
STOP = Action(
    COMPUTE_ACTION,
    "stop",
    "Stop the compute",
    attributes=(A("method", T.ENUM, enum=("graceful", "acpioff", "poweroff"), default="poweroff"),),
)
RESTART = Action(
    COMPUTE_ACTION,
    "restart",
    "Restart the compute",
    attributes=(A("method", T.ENUM, enum=("graceful", "warm", "cold"), default="warm"),),
)
SUSPEND = Action(
    COMPUTE_ACTION,
    "suspend",
    "Suspend the compute",
    attributes=(A("method", T.ENUM, enum=("hibernate", "suspend"), default="suspend"),),
)
SAVE = Action(
    COMPUTE_ACTION,
    "save",
    "Save the compute's disk as a new OS template",
    attributes=(
        A("method", T.ENUM, enum=("hot", "deferred", "deffered"), default="hot"),
        A("name", T.STRING, description="Name of the new OS template"),
    ),
)

CONSOLE_ATTRIBUTE = "org.nimbostratus.compute.console"
"""A compute's attribute naming where its serial console log is read: ``GET`` on that location
answers the end of the log as text/plain (see :func:`console_location`). Set by the server.

An attribute rather than an HTTP ``Link`` header: in the text/occi rendering the ``Link``
header *is* OCCI's rendering of an entity's links and action invocations, so clients would
read one more as an OCCI link of the compute (to an entity that is none), while an attribute
renders the same way in every media type (OCCI-OS advertised its VNC console alike, as
``org.openstack.compute.console.vnc``). Its value is a path, like ``occi.core.source``.
"""

COMPUTE = Kind(
    INFRA,
    "compute",
    "Compute Resource",
    parent=RESOURCE,
    location="/compute/",
    actions=(START, STOP, RESTART, SUSPEND, SAVE),
    attributes=(
        A(
            "occi.compute.architecture",
            T.ENUM,
            enum=("x86", "x64"),
            default="x64",
            description="CPU architecture",
        ),
        A("occi.compute.cores", T.INTEGER, minimum=1, maximum=1024, description="Number of cores"),
        A("occi.compute.share", T.INTEGER, minimum=0, description="Relative CPU share"),
        A(
            "occi.compute.hostname",
            T.STRING,
            pattern=r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*",
            description="Fully qualified DNS hostname",
        ),
        A(
            "occi.compute.memory",
            T.NUMBER,
            minimum=0.0625,
            maximum=4096.0,
            description="Memory in GiB",
        ),
        A(
            "occi.compute.speed",
            T.NUMBER,
            minimum=0.0,
            description="CPU speed in GHz (OCCI 1.1; accepted, not used)",
        ),
        *_state_attrs("occi.compute", ("active", "inactive", "suspended", "error"), "inactive"),
        A(
            CONSOLE_ATTRIBUTE,
            T.STRING,
            mutable=False,
            description="Location of the serial console log (GET: text/plain, ?bytes=N: the "
            "last N bytes)",
        ),
        *TENANCY_ATTRIBUTES,
    ),
)


def console_location(compute_id: str) -> str:
    """Path of a compute's serial console log (the value of :data:`CONSOLE_ATTRIBUTE`)."""
    return f"{COMPUTE.location}{compute_id}/console"


# --- storage ----------------------------------------------------------------------------

ONLINE = Action(STORAGE_ACTION, "online", "Bring the storage online")
OFFLINE = Action(STORAGE_ACTION, "offline", "Take the storage offline")

STORAGE = Kind(
    INFRA,
    "storage",
    "Storage Resource",
    parent=RESOURCE,
    location="/storage/",
    actions=(ONLINE, OFFLINE),
    attributes=(
        A(
            "occi.storage.size",
            T.NUMBER,
            required=True,
            minimum=0.001,
            maximum=65536.0,
            description="Size in GiB",
        ),
        *_state_attrs("occi.storage", ("online", "offline", "error"), "offline"),
        *TENANCY_ATTRIBUTES,
    ),
)

# --- network ----------------------------------------------------------------------------

UP = Action(NETWORK_ACTION, "up", "Bring the network up")
DOWN = Action(NETWORK_ACTION, "down", "Take the network down")

NETWORK = Kind(
    INFRA,
    "network",
    "Network Resource",
    parent=RESOURCE,
    location="/network/",
    actions=(UP, DOWN),
    attributes=(
        A("occi.network.vlan", T.INTEGER, minimum=0, maximum=4095, description="802.1q VLAN id"),
        A("occi.network.label", T.STRING, pattern=r"[A-Za-z0-9._-]+", description="Label"),
        *_state_attrs("occi.network", ("active", "inactive", "error"), "inactive"),
        *TENANCY_ATTRIBUTES,
    ),
)

_IPV4_CIDR = r"([0-9]{1,3}\.){3}[0-9]{1,3}(/[0-9]{1,2})?"
_IPV4 = r"([0-9]{1,3}\.){3}[0-9]{1,3}"

IPNETWORK = Mixin(
    NETWORK_MIXINS,
    "ipnetwork",
    "IP Network Mixin",
    applies=(NETWORK,),
    attributes=(
        A("occi.network.address", T.STRING, pattern=_IPV4_CIDR, description="CIDR of the network"),
        A("occi.network.gateway", T.STRING, pattern=_IPV4, description="Gateway address"),
        A(
            "occi.network.allocation",
            T.ENUM,
            enum=("dynamic", "static"),
            default="dynamic",
            description="Address allocation",
        ),
    ),
)

# --- links ------------------------------------------------------------------------------

NETWORKINTERFACE = Kind(
    INFRA,
    "networkinterface",
    "NetworkInterface Link",
    parent=LINK,
    location="/networkinterface/",
    attributes=(
        A(
            "occi.networkinterface.interface",
            T.STRING,
            mutable=False,
            description="Interface name in the guest (eth0...)",
        ),
        A(
            "occi.networkinterface.mac",
            T.STRING,
            pattern=r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}",
            description="MAC address",
        ),
        *_state_attrs("occi.networkinterface", ("active", "inactive", "error"), "inactive"),
        *TENANCY_ATTRIBUTES,
    ),
)

IPNETWORKINTERFACE = Mixin(
    NETIF_MIXINS,
    "ipnetworkinterface",
    "IP Network Interface Mixin",
    applies=(NETWORKINTERFACE,),
    attributes=(
        A("occi.networkinterface.address", T.STRING, pattern=_IPV4_CIDR, description="IP address"),
        A("occi.networkinterface.gateway", T.STRING, pattern=_IPV4, description="Gateway"),
        A(
            "occi.networkinterface.allocation",
            T.ENUM,
            enum=("dynamic", "static"),
            default="dynamic",
            description="Address allocation",
        ),
    ),
)

PORT_MAP_RULES = r"(tcp|udp):[0-9]{1,5}:[0-9]{1,5}([ ,]+(tcp|udp):[0-9]{1,5}:[0-9]{1,5})*"
PORTMAP = Mixin(
    NIMBO_NETIF,
    "ex_portmap",
    "Port address translation: host ports forwarded to the interface's address",
    applies=(NETWORKINTERFACE,),
    depends=(IPNETWORKINTERFACE,),
    attributes=(
        A(
            "org.nimbostratus.portmap",
            T.STRING,
            required=True,
            mutable=False,
            pattern=PORT_MAP_RULES,
            description="protocol:public_port:guest_port, comma separated (tcp:2222:22)",
        ),
    ),
)

STORAGELINK = Kind(
    INFRA,
    "storagelink",
    "StorageLink Link",
    parent=LINK,
    location="/storagelink/",
    attributes=(
        A("occi.storagelink.deviceid", T.STRING, description="Device in the guest (vdb...)"),
        A("occi.storagelink.mountpoint", T.STRING, description="Mount point in the guest"),
        *_state_attrs("occi.storagelink", ("active", "inactive", "error"), "inactive"),
        *TENANCY_ATTRIBUTES,
    ),
)

# --- templates and contextualization ----------------------------------------------------

OS_TPL = Mixin(INFRA, "os_tpl", "OS Template", applies=(COMPUTE,))
RESOURCE_TPL = Mixin(INFRA, "resource_tpl", "Resource Template", applies=(COMPUTE,))

SSH_KEY = Mixin(
    CREDENTIALS,
    "ssh_key",
    "SSH public key credentials",
    applies=(COMPUTE,),
    attributes=(
        A(
            "occi.credentials.ssh.publickey",
            T.STRING,
            required=True,
            mutable=False,
            description="OpenSSH public key line",
        ),
    ),
)
USER_DATA = Mixin(
    COMPUTE_MIXINS,
    "user_data",
    "Contextualization user data",
    applies=(COMPUTE,),
    attributes=(
        A(
            "occi.compute.userdata",
            T.STRING,
            required=True,
            mutable=False,
            description="Base64-encoded user data",
        ),
    ),
)
OS_PUBLIC_KEY = Mixin(
    OPENSTACK_CREDENTIALS,
    "public_key",
    "Public key (EGI/OpenStack)",
    applies=(COMPUTE,),
    attributes=(
        A(
            "org.openstack.credentials.publickey.data",
            T.STRING,
            required=True,
            mutable=False,
            description="OpenSSH public key line",
        ),
        A(
            "org.openstack.credentials.publickey.name",
            T.STRING,
            mutable=False,
            description="Key name",
        ),
    ),
)
OS_USER_DATA = Mixin(
    OPENSTACK_COMPUTE,
    "user_data",
    "User data (EGI/OpenStack)",
    applies=(COMPUTE,),
    attributes=(
        A(
            "org.openstack.compute.user_data",
            T.STRING,
            required=True,
            mutable=False,
            description="Base64-encoded user data",
        ),
    ),
)

KINDS: tuple[Kind, ...] = (
    ENTITY,
    RESOURCE,
    LINK,
    COMPUTE,
    STORAGE,
    NETWORK,
    NETWORKINTERFACE,
    STORAGELINK,
)
MIXINS: tuple[Mixin, ...] = (
    IPNETWORK,
    IPNETWORKINTERFACE,
    OS_TPL,
    RESOURCE_TPL,
    SSH_KEY,
    USER_DATA,
    OS_PUBLIC_KEY,
    OS_USER_DATA,
    PORTMAP,
)
ACTIONS: tuple[Action, ...] = (START, STOP, RESTART, SUSPEND, SAVE, ONLINE, OFFLINE, UP, DOWN)

# Input aliases of attribute names (§5 of the notes): accepted, rendered under the spec name.
ATTRIBUTE_ALIASES: dict[str, str] = {
    "occi.crendentials.ssh.publickey": "occi.credentials.ssh.publickey",
    "occi.credentials.ssh_key": "occi.credentials.ssh.publickey",
    "occi.compute.user_data": "occi.compute.userdata",
}

# Which actions are valid from which state (state attribute value -> action terms).
ACTION_STATES: dict[str, dict[str, tuple[str, ...]]] = {
    COMPUTE.type_id: {
        "start": ("inactive", "suspended", "error"),
        "stop": ("active", "suspended"),
        "restart": ("active",),
        "suspend": ("active",),
        "save": ("active", "inactive"),
    },
    STORAGE.type_id: {
        "online": ("online", "offline", "error"),
        "offline": ("online", "offline", "error"),
    },
    NETWORK.type_id: {
        "up": ("active", "inactive", "error"),
        "down": ("active", "inactive", "error"),
    },
}

STATE_ATTRIBUTE: dict[str, str] = {
    COMPUTE.type_id: "occi.compute.state",
    STORAGE.type_id: "occi.storage.state",
    NETWORK.type_id: "occi.network.state",
    NETWORKINTERFACE.type_id: "occi.networkinterface.state",
    STORAGELINK.type_id: "occi.storagelink.state",
}
