"""The appliance's console report (see appliances/init), parsed strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BEGIN = "NIMBO-REPORT-BEGIN"
END = "NIMBO-REPORT-END"
BOOT = "nimbo-appliance: init starting"
"""The first line /init prints: a new boot of the guest."""

_REPORT_LINE = re.compile(
    r"hostname=(?P<hostname>\S+)"
    r"|iface=(?P<iface>\S+) mac=(?P<mac>[0-9a-f:]{17}) addr=(?P<addr>\S+)"
    r"|disk=(?P<disk>\S+) bytes=(?P<bytes>[0-9]+)"
    r"|userdata_sha256=(?P<userdata>[0-9a-f]{64}|none)"
    r"|sshkey_sha256=(?P<sshkey>[0-9a-f]{64}|none)"
)


@dataclass
class Report:
    """The guest's report, parsed strictly: any other line between the markers is an error."""

    hostname: str = ""
    ifaces: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (mac, addr)
    disks: dict[str, int] = field(default_factory=dict)  # name -> bytes
    userdata_sha256: str = ""
    sshkey_sha256: str = ""

    @classmethod
    def parse(cls, lines: list[str]) -> Report:
        report = cls()
        for line in lines:
            match = _REPORT_LINE.fullmatch(line)
            assert match, f"unexpected line in the report: {line!r}"
            if match["hostname"]:
                report.hostname = match["hostname"]
            elif match["iface"]:
                report.ifaces[match["iface"]] = (match["mac"], match["addr"])
            elif match["disk"]:
                report.disks[match["disk"]] = int(match["bytes"])
            elif match["userdata"]:
                report.userdata_sha256 = match["userdata"]
            else:
                report.sshkey_sha256 = match["sshkey"]
        return report


def console_lines(text: str) -> list[str]:
    """Console text as lines, without the carriage returns the serial line adds."""
    return [line.rstrip("\r") for line in text.split("\n")]


def reports(lines: list[str]) -> list[Report]:
    """Every complete report in ``lines`` (a report still being printed is left out)."""
    found: list[Report] = []
    current: list[str] | None = None
    for line in lines:
        if line == BEGIN:
            current = []
        elif line == END and current is not None:
            found.append(Report.parse(current))
            current = None
        elif current is not None:
            current.append(line)
    return found
