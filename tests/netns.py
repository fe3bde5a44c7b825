"""Commands for tests that build their own network namespaces (``ip netns``, ``nft``)."""

from __future__ import annotations

import shutil
import subprocess
import uuid


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command, output captured, never raising on its exit status."""
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


def must(*argv: str) -> None:
    """Run a command that has to succeed."""
    completed = run(*argv)
    assert completed.returncode == 0, f"{' '.join(argv)}: {completed.stderr.strip()}"


def netns_unavailable() -> str | None:
    """Why namespaced nftables tests cannot run here, or None when they can."""
    for program, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian package {package})"
    probe = f"nimbo-probe-{uuid.uuid4().hex[:8]}"
    created = run("ip", "netns", "add", probe)
    if created.returncode != 0:
        return f"cannot create a network namespace: {created.stderr.strip()}"
    try:
        listed = run("ip", "netns", "exec", probe, "nft", "list", "ruleset")
        if listed.returncode != 0:
            return f"nft is not permitted in a network namespace: {listed.stderr.strip()}"
    finally:
        run("ip", "netns", "delete", probe)
    return None
