"""Every setting of nimbostratus, defined once, with its default and a one-line meaning.

A setting is read, in order of precedence, from the environment variable ``NIMBO_<NAME>``
(upper case), from the TOML file (``NIMBO_CONFIG``, else ``<data_dir>/nimbo.toml``, else
``/etc/nimbostratus/nimbo.toml``), and finally from the default below. See
:mod:`gateway.config` for the loader; nothing else in the project holds a default value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One tunable: its name, default, Python type and a one-line description."""

    name: str
    default: Any
    type: type
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "data_dir",
        "/var/lib/nimbostratus",
        str,
        "Directory for the SQLite store, the private redis socket, pools and logs.",
    ),
    Setting("listen", "127.0.0.1:8787", str, "Address and port the API listens on."),
    Setting(
        "public_url",
        "",
        str,
        "Base URL clients use (e.g. https://cloud.example.org); empty: taken from the request.",
    ),
    Setting(
        "database_url",
        "",
        str,
        "SQLAlchemy URL of the state store; empty: SQLite file in data_dir.",
    ),
    Setting(
        "redis_url",
        "",
        str,
        "Redis URL of the job queue; empty: a private redis-server on a unix socket in data_dir.",
    ),
    Setting("libvirt_uri", "qemu:///system", str, "libvirt URI of the local hypervisor host."),
    Setting("host_name", "", str, "Name of this hypervisor host; empty: the machine's hostname."),
    Setting("host_cores", 0, int, "Cores this host offers to guests; 0: ask libvirt."),
    Setting("host_memory_mib", 0, int, "Memory (MiB) this host offers to guests; 0: ask libvirt."),
    Setting(
        "placement_policy",
        "packing",
        str,
        "How a host is chosen: 'packing' (fill hosts) or 'striping' (spread load).",
    ),
    Setting("api_workers", 2, int, "gunicorn worker processes for the API."),
    Setting(
        "api_malloc_arenas",
        2,
        int,
        "glibc malloc arenas of each API process (MALLOC_ARENA_MAX, unless the environment sets "
        "it): with one arena per thread a worker streaming large objects grows by megabytes it "
        "keeps; 0: glibc's default (8 per core).",
    ),
    Setting(
        "page_max", 1000, int, "Largest page size a client may ask for with ?number= (413 above)."
    ),
    Setting(
        "entity_cache_size",
        10000,
        int,
        "Entities each API process keeps as last rendered, valid until the next write to the "
        "store (0: off).",
    ),
    Setting("job_timeout", 900, int, "Seconds a backend job may run before RQ stops it."),
    Setting(
        "job_retries", 3, int, "How often a failed job is retried before the entity goes to error."
    ),
    Setting("job_result_ttl", 3600, int, "Seconds RQ keeps a finished job's record."),
    Setting("reconcile_interval", 60, int, "Seconds between reconciler passes in each worker."),
    Setting(
        "worker_nice",
        10,
        int,
        "Niceness (0-19) a worker takes: beside the API (nimbo up) requests are answered first "
        "and jobs take the CPU left over; on a hypervisor host the guests go first. 0: none.",
    ),
    Setting(
        "template_scheme",
        "http://schemas.nimbostratus.org/occi/",
        str,
        "Base of the schemes of provider templates (os_tpl#, resource_tpl#).",
    ),
    Setting(
        "flavours",
        {
            "small": {"cores": 1, "memory": 1.0, "share": 1, "title": "Small: 1 core, 1 GiB"},
            "medium": {"cores": 2, "memory": 4.0, "share": 2, "title": "Medium: 2 cores, 4 GiB"},
            "large": {"cores": 4, "memory": 8.0, "share": 4, "title": "Large: 4 cores, 8 GiB"},
        },
        dict,
        "resource_tpl flavours: term -> {cores, memory (GiB), share, title}.",
    ),
    Setting(
        "default_os_tpl",
        "",
        str,
        "os_tpl image term used when a compute create names none; empty: os_tpl required.",
    ),
    Setting(
        "default_flavour",
        "small",
        str,
        "resource_tpl applied when a compute create names none and gives no sizes.",
    ),
    Setting(
        "storage_pool", "nimbostratus", str, "libvirt storage pool for volumes and instance disks."
    ),
    Setting("storage_pool_type", "dir", str, "Pool type: 'dir' (qcow2 files) or 'logical' (LVM)."),
    Setting(
        "storage_pool_path",
        "",
        str,
        "Directory of a dir pool (empty: data_dir/pool) or volume group device of a logical pool.",
    ),
    Setting(
        "network_mode",
        "isolated",
        str,
        "Forward mode of new networks: 'isolated' (guests reach only each other; the host has no "
        "address on the bridge), 'nat' (the host is the gateway), or 'bridge' (to "
        "network_bridge_device).",
    ),
    Setting(
        "network_virtual_switch",
        "linux",
        str,
        "What the host's bridges are: 'linux' (Linux bridges) or 'openvswitch' (libvirt then "
        "tags a VLAN network's ports itself, in 'bridge' mode onto network_bridge_device).",
    ),
    Setting(
        "network_vlan_uplink",
        "",
        str,
        "Host interface carrying the site's 802.1Q-tagged traffic: a network with "
        "occi.network.vlan N is bridged onto a bridge of VLAN N made on it (Linux bridges). "
        "Empty: VLAN ids are recorded only (Open vSwitch tags them in 'bridge' mode).",
    ),
    Setting(
        "network_bridge_device", "", str, "Host interface new networks bridge to in 'bridge' mode."
    ),
    Setting(
        "portmap_netns",
        "",
        str,
        "Network namespace the host's public side lives in for ex_portmap (empty: the host's).",
    ),
    Setting(
        "portmap_public_address",
        "",
        str,
        "Public address ex_portmap forwards from (empty: any of the host's own addresses).",
    ),
    Setting(
        "virt_type", "auto", str, "Domain type: 'kvm', 'qemu' (TCG) or 'auto' (kvm if usable)."
    ),
    Setting("userdata_max_bytes", 16384, int, "Largest base64 user data accepted on create."),
    Setting("max_body_bytes", 1048576, int, "Largest OCCI request body accepted (413 above)."),
    # --- authentication ------------------------------------------------------------------
    Setting("auth_realm", "nimbostratus", str, "Realm named in WWW-Authenticate challenges."),
    Setting(
        "auth_methods",
        "local",
        str,
        "Authenticators tried in order, comma-separated: local, ldap, oidc, x509, token.",
    ),
    Setting(
        "auth_admin_groups",
        "",
        str,
        "Comma-separated groups (LDAP groups, OIDC entitlements) whose members are admins.",
    ),
    # --- auth: LDAP (helper block) ---
    Setting(
        "ldap_url",
        "",
        str,
        "URL of the LDAP directory, ldap://host[:port] or ldaps://host[:port] (for 'ldap').",
    ),
    Setting(
        "ldap_start_tls",
        False,
        bool,
        "Upgrade the ldap:// connection with StartTLS (the server certificate is verified).",
    ),
    Setting(
        "ldap_ca_file",
        "",
        str,
        "CA certificates (PEM) the directory's certificate is verified with; empty: the system's.",
    ),
    Setting(
        "ldap_bind_dn",
        "",
        str,
        "DN of the service account that searches users and groups; empty: anonymous searches.",
    ),
    Setting("ldap_bind_password", "", str, "Password of ldap_bind_dn."),
    Setting(
        "ldap_user_base", "", str, "DN users are searched under, e.g. ou=people,dc=example,dc=org."
    ),
    Setting(
        "ldap_user_filter",
        "(uid={user})",
        str,
        "Filter finding one user; {user} is the name the client gave, escaped (RFC 4515).",
    ),
    Setting("ldap_name_attr", "uid", str, "Attribute whose value is the user name."),
    Setting("ldap_display_name_attr", "cn", str, "Attribute whose value is the display name."),
    Setting(
        "ldap_group_base", "", str, "DN groups are searched under; empty: LDAP users get no groups."
    ),
    Setting(
        "ldap_group_filter",
        "(|(member={dn})(memberUid={user}))",
        str,
        "Filter finding a user's groups: {dn} the user's DN, {user} the user name (escaped).",
    ),
    Setting("ldap_group_name_attr", "cn", str, "Attribute whose value is a group's name."),
    Setting(
        "ldap_timeout",
        5,
        int,
        "Seconds to connect to the directory or wait for an answer (then 503).",
    ),
    Setting(
        "ldap_cache_seconds",
        60,
        int,
        "Seconds a process remembers a successful LDAP password check (an HMAC, not the password).",
    ),
    # --- auth: OIDC (helper block) ---
    Setting(
        "oidc_issuer",
        "",
        str,
        "OpenID Connect issuer URL; a token's iss must equal it exactly (required for 'oidc').",
    ),
    Setting(
        "oidc_audience",
        "",
        str,
        "Audience(s) this server answers to, comma-separated; a token's aud must name one.",
    ),
    Setting(
        "oidc_jwks_url",
        "",
        str,
        "URL of the issuer's JWKS; empty: discovered from the issuer's "
        "/.well-known/openid-configuration.",
    ),
    Setting(
        "oidc_algorithms",
        "RS256,ES256",
        str,
        "Signature algorithms accepted, comma-separated; asymmetric only (never none or HS*).",
    ),
    Setting("oidc_user_claim", "sub", str, "Claim whose value becomes the user name."),
    Setting(
        "oidc_groups_claim",
        "eduperson_entitlement",
        str,
        "Claim holding the groups or entitlements (a list, or a space/comma-separated string).",
    ),
    Setting(
        "oidc_group_pattern",
        "",
        str,
        "Regex with one group, matched against each whole entitlement: the group is the "
        "group name; entitlements not matching are dropped (empty: taken as they are).",
    ),
    Setting("oidc_leeway", 30, int, "Seconds of clock skew allowed on exp, nbf and iat."),
    Setting(
        "oidc_jwks_cache_seconds",
        900,
        int,
        "Seconds the issuer's keys are used before they are fetched again.",
    ),
    Setting(
        "oidc_jwks_refetch_seconds",
        10,
        int,
        "Least seconds between two key fetches an unknown key id or an unreachable issuer "
        "may cause (a bound on refetch storms from forged kids).",
    ),
    Setting("oidc_http_timeout", 5, int, "Seconds a fetch of discovery document or JWKS may take."),
    Setting(
        "oidc_token_cache_seconds",
        60,
        int,
        "Seconds a verified bearer token is remembered per process (never past its exp).",
    ),
    Setting(
        "oidc_issuers",
        [],
        list,
        "More trusted issuers, each a table ([[oidc_issuers]]; from the environment a JSON list "
        "of objects): issuer (required, the exact iss), audience (required), jwks_url (empty: "
        "discovered), algorithms, user_claim, groups_claim, group_pattern (left out: these "
        "settings' defaults), user_prefix. Only the first issuer (oidc_issuer, else the first "
        "entry) keeps bare user names; every other needs a user_prefix (e.g. 'wlcg:' makes "
        "sub alice the user wlcg:alice), no prefix may begin another, and a bare name that "
        "begins with one is refused: one sub from two issuers is never one user.",
    ),
    # --- auth: X.509 and tokens (helper block) ---
    Setting(
        "auth_trusted_proxies",
        "",
        str,
        "Front ends (addresses or CIDRs, comma-separated) whose client-certificate headers and "
        "X-Forwarded-For (the client address of rate limits and the audit log) are believed; "
        "empty: the headers are ignored from everyone.",
    ),
    Setting(
        "x509_header_subject",
        "SSL_CLIENT_S_DN",
        str,
        "Header a trusted front end puts the verified client certificate's subject DN in.",
    ),
    Setting(
        "x509_header_issuer",
        "SSL_CLIENT_I_DN",
        str,
        "Header a trusted front end puts the client certificate's issuer DN in.",
    ),
    Setting(
        "x509_header_verify",
        "SSL_CLIENT_VERIFY",
        str,
        "Header a trusted front end puts its verification result in; only SUCCESS is believed.",
    ),
    Setting(
        "x509_map_file",
        "",
        str,
        'grid-mapfile of certificate users: "<subject DN>" user[,group...] per line; re-read '
        "when it changes.",
    ),
    Setting(
        "x509_ldap_dn_filter",
        "",
        str,
        "LDAP filter finding a certificate's user with the ldap_* settings, e.g. "
        "(description={grid_dn}); {dn}: the subject DN as RFC 4514, {grid_dn}: as /DC=.../CN=...",
    ),
    Setting(
        "tls_cert",
        "",
        str,
        "Certificate (PEM, with its chain) the API serves HTTPS with; empty: plain HTTP.",
    ),
    Setting("tls_key", "", str, "Private key (PEM) of tls_cert."),
    Setting(
        "tls_client_ca",
        "",
        str,
        "CA certificates (PEM) client certificates are verified with; clients may still come "
        "without one (Basic, tokens). Empty: no client certificates.",
    ),
    Setting(
        "tls_plain_http_wait_ms",
        1000,
        int,
        "Milliseconds the HTTPS listener waits for the request line of a connection that began "
        "in clear text, to answer it 400 (use https://); never spent on TLS clients.",
    ),
    Setting(
        "auth_token_ttl",
        3600,
        int,
        "Seconds an X-Auth-Token from POST /auth/tokens is valid.",
    ),
    Setting(
        "auth_token_cache_seconds",
        5,
        int,
        "Seconds a process remembers a checked X-Auth-Token: a revocation takes effect in "
        "other API processes within this time (at once in the one that revoked it).",
    ),
    # --- auth: Keystone v3 federation (helper block) ---
    Setting(
        "keystone_federation_idps",
        "egi.eu",
        str,
        "Identity providers named in /auth/v3/OS-FEDERATION/identity_providers/<idp>/... whose "
        "access tokens the 'oidc' method verifies, comma-separated; empty: no federation.",
    ),
    Setting(
        "keystone_federation_protocols",
        "openid,oidc",
        str,
        "Protocols named in .../protocols/<protocol>/auth, comma-separated (rOCCI sends oidc, "
        "OpenStack clients of EGI sites openid).",
    ),
    # --- tenancy and quotas (helper block) ---
    Setting(
        "group_policy",
        "read",
        str,
        "What members of an entity's or CDMI object's group may do: 'read', 'full' (read, "
        "change, act, delete, link) or 'none'; everyone else but the owner and admins gets 404.",
    ),
    Setting(
        "tenancy_default_group",
        "none",
        str,
        "Group of what a user creates without naming one: 'none' (private) or 'primary' (the "
        "creator's group when they are in exactly one).",
    ),
    Setting(
        "quota_user_defaults",
        {},
        dict,
        "Quota of every user: resource -> limit (instances, cores, memory GiB, storage GiB, "
        "cdmi_bytes, public_addresses); a resource left out is unlimited; `nimbo quota set` "
        "overrides it per user.",
    ),
    Setting(
        "quota_group_defaults",
        {},
        dict,
        "Quota of every group (the sum over the entities and objects of the group), as "
        "quota_user_defaults; `nimbo quota set --group` overrides it per group.",
    ),
    Setting(
        "quota_exempt_admins",
        False,
        bool,
        "Administrators' requests skip the quota check (false: admins are held to quotas too).",
    ),
    # --- rate limits, audit, request limits (helper block) ---
    Setting(
        "rate_limit_user",
        "",
        str,
        "Requests per principal as N/SECONDS (600/60: 600 a minute, bursts up to 600), kept in "
        "Redis across API processes (429 above); empty or 0: no limit.",
    ),
    Setting(
        "rate_limit_address",
        "",
        str,
        "Requests per client address as N/SECONDS, whether or not they authenticate (an "
        "address over it is refused before authentication); empty or 0: no limit.",
    ),
    Setting(
        "rate_limit_auth_failures",
        "30/60",
        str,
        "Refused passwords (HTTP Basic) per client address as N/SECONDS; past it that "
        "address's password logins get 429, right or wrong, until it recovers; empty or 0: off.",
    ),
    Setting(
        "rate_limit_exempt",
        "",
        str,
        "Client addresses or networks no rate limit applies to, comma-separated "
        "(monitoring, e.g. 192.0.2.7, 10.1.0.0/16).",
    ),
    Setting(
        "audit_flush_seconds",
        2,
        int,
        "Seconds between moves of new audit records from Redis into the store (each API process).",
    ),
    Setting(
        "audit_retention_days",
        0,
        int,
        "Days audit records are kept in the store (0: for ever).",
    ),
    Setting(
        "json_max_depth",
        32,
        int,
        "Deepest nesting of arrays and objects in an OCCI or CDMI JSON body (400 deeper).",
    ),
    Setting(
        "request_line_max",
        8190,
        int,
        "Longest request line (method, URL, version) gunicorn reads, 1..8190 (414 above).",
    ),
    Setting("request_fields_max", 100, int, "Most header fields in a request (431 above)."),
    Setting("request_field_bytes", 8190, int, "Longest request header field (431 above)."),
    Setting(
        "hsts_seconds",
        31536000,
        int,
        "max-age of Strict-Transport-Security on answers sent over TLS (0: no such header).",
    ),
    Setting("cdmi_root", "/cdmi/", str, "URL path CDMI is served under (OCCI owns the rest)."),
    Setting(
        "cdmi_enterprise_number",
        32473,
        int,
        "IANA Private Enterprise Number in CDMI object IDs; 32473 is the documentation number "
        "(RFC 5612): set your site's own.",
    ),
    Setting(
        "cdmi_require_version_header",
        False,
        bool,
        "Refuse CDMI-typed requests without X-CDMI-Specification-Version (400).",
    ),
    Setting(
        "cdmi_max_json_bytes",
        67108864,
        int,
        "Largest CDMI JSON request body (413 above); larger values go by plain HTTP PUT, which "
        "streams and has no limit.",
    ),
    Setting("blob_dir", "", str, "Directory of the CDMI blob store; empty: data_dir/blobs."),
    Setting(
        "cdmi_orphan_grace_seconds",
        3600,
        int,
        "Age (s, at least 60) from which a blob no CDMI object names is removed by the orphan "
        "sweep (as `nimbo serve` starts, and `nimbo cdmi sweep`): younger ones may be values "
        "published ahead of a write transaction still running.",
    ),
    Setting("log_level", "INFO", str, "Python logging level of every nimbo process."),
)

DEFAULTS: dict[str, Setting] = {s.name: s for s in SETTINGS}
