"""The one table from libvirt domain states to :class:`~backends.base.PowerState`."""

from __future__ import annotations

import libvirt

from backends.base import PowerState

POWER_STATES: dict[int, PowerState] = {
    # transitional and rare; treated as active so that stop/delete still act on the domain
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,  # running, waiting on I/O
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.RUNNING,  # shutting down, not yet off
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.PAUSED,  # guest suspended to RAM
}


def power_state(libvirt_state: int) -> PowerState:
    """Our state for a libvirt ``virDomainState``; an unknown code counts as crashed."""
    return POWER_STATES.get(libvirt_state, PowerState.CRASHED)
