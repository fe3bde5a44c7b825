"""A throwaway slapd for the LDAP tests (python-ldap's ``slapdtest`` with our directory).

The directory ``dc=example,dc=org`` holds people under ``ou=people`` (inetOrgPerson with a
posixAccount side, so ``uid`` and a ``description`` holding a grid DN) and groups under
``ou=groups``: a groupOfNames (``member`` DNs) and a posixGroup (``memberUid`` names). A
read-only service account ``cn=nimbo,ou=services`` searches; anonymous reads are refused, so
the tests prove the service account is used. slapd serves ``ldap://127.0.0.1:<port>`` with
StartTLS, its certificate issued by the tests' CA (:mod:`tests.auth.certs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slapdtest import SlapdObject
from slapdtest._slapdtest import SLAPD_CONF_TEMPLATE

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SERVICE_DN = f"cn=nimbo,ou=services,{SUFFIX}"
SERVICE_PASSWORD = "service-pw-1"


@dataclass(frozen=True)
class Person:
    uid: str
    cn: str
    password: str
    grid_dn: str = ""

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{PEOPLE}"


PEOPLE_ENTRIES = (
    Person("ldapann", "Ann Example", "ann-pw-123", "/DC=org/DC=example/CN=Ann Example"),
    Person("ldapben", "Ben Example", "ben-pw-456"),
    Person("ldapcid", "Cid Example", "cid-pw-789"),
)
GROUP_MEMBERS = {  # group cn -> (groupOfNames member uids, posixGroup memberUid names)
    "physics": (("ldapann", "ldapben"), ()),
    "cms": ((), ("ldapann",)),
}

# Only the service account and each person itself read the directory; anonymous binds may
# authenticate and nothing more.
ACCESS = (
    "olcAccess: {0}to attrs=userPassword by anonymous auth by self write by * none\n"
    f'olcAccess: {{1}}to * by dn.regex="^{SERVICE_DN}$" read by self read by * none\n'
)  # dn.regex: the schema of dc/ou is not loaded yet when slapadd reads this


class NimboSlapd(SlapdObject):
    """slapd with the cosine, inetOrgPerson and nis schemas, TLS from our CA, and the
    directory above. ``directory`` holds its run directory (pytest's tmp_path)."""

    suffix = SUFFIX
    # unauthenticated binds (a DN, no password) succeed, as in directories where that pitfall
    # bites (OpenLDAP refuses them by default); the access rules go to the database entry
    slapd_conf_template = (
        SLAPD_CONF_TEMPLATE.replace("olcAllows: bind_v2", "olcAllows: bind_v2 bind_anon_dn")
        + ACCESS
    )
    slapd_loglevel = "0"
    openldap_schema_files = ("core.ldif", "cosine.ldif", "inetorgperson.ldif", "nis.ldif")

    def __init__(self, directory: Path, *, ca_file: Path, cert_file: Path, key_file: Path) -> None:
        self.TMPDIR = str(directory)
        super().__init__()
        self.cafile, self.servercert, self.serverkey = str(ca_file), str(cert_file), str(key_file)

    def start(self) -> None:
        super().start()
        self.ldapadd(directory_ldif())

    def stop_slapd(self) -> None:
        """Stop the daemon, keep its data (``resume()`` starts it again on the same port)."""
        self.terminate()
        self.wait()

    @property
    def running(self) -> bool:
        proc: Any = self._proc
        return proc is not None and proc.poll() is None


def directory_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
        "o: Example\n",
        *(
            f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n"
            for ou in ("people", "groups", "services")
        ),
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: nimbo\nuserPassword: {SERVICE_PASSWORD}\n",
    ]
    for number, person in enumerate(PEOPLE_ENTRIES):
        entry = (
            f"dn: {person.dn}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            f"uid: {person.uid}\ncn: {person.cn}\nsn: {person.cn.split()[-1]}\n"
            f"uidNumber: {2000 + number}\ngidNumber: 2000\n"
            f"homeDirectory: /home/{person.uid}\nuserPassword: {person.password}\n"
        )
        if person.grid_dn:
            entry += f"description: {person.grid_dn}\n"
        entries.append(entry)
    for number, (group, (members, member_uids)) in enumerate(GROUP_MEMBERS.items()):
        if members:
            entries.append(
                f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n"
                + "".join(f"member: uid={m},{PEOPLE}\n" for m in members)
            )
        else:
            entries.append(
                f"dn: cn={group},{GROUPS}\nobjectClass: posixGroup\ncn: {group}\n"
                f"gidNumber: {3000 + number}\n" + "".join(f"memberUid: {m}\n" for m in member_uids)
            )
    return "\n".join(entries)
