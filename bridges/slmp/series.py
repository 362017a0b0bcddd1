"""Which plc-comm-slmp profile and which request limits a configured series (and port) has."""

from __future__ import annotations

from slmp import SlmpProfileLimitKey, profile_limit
from slmp.capability_profiles import capability_profile

from bridges.slmp.plan import Limits
from model.bridges.slmp import SlmpDevice

__all__ = ["library_profile", "limits_of"]

# (series, through an Ethernet module) -> plc-comm-slmp profile
_PROFILES: dict[tuple[str, bool], str] = {
    ("Q", False): "melsec:qnu",
    ("Q", True): "melsec:qnu:qj71e71-100",
    ("L", False): "melsec:lcpu",
    ("L", True): "melsec:lcpu:lj71e71-100",
    ("iQ-R", False): "melsec:iq-r",
    ("iQ-R", True): "melsec:iq-r:rj71en71",
    ("iQ-F", False): "melsec:iq-f",
    ("iQ-F", True): "melsec:iq-f",
    ("FX5", False): "melsec:iq-f",
    ("FX5", True): "melsec:iq-f",
}


def library_profile(device: SlmpDevice) -> str:
    """The plc-comm-slmp profile: device grammar (iQ-F's octal X/Y), subcommands (Q/L vs iQ-R) and limits."""
    return _PROFILES[device.series, device.ethernet_module]


def limits_of(device: SlmpDevice) -> Limits:
    """The request limits of the device's series and port, with its configured gap and read size."""
    profile = library_profile(device)
    random = profile_limit(profile, SlmpProfileLimitKey.RANDOM_READ_WORD)
    words = profile_limit(profile, SlmpProfileLimitKey.DIRECT_WORD_READ)
    capability = capability_profile(profile)
    block = capability is not None and capability.features["block"].state == "supported"
    return Limits(
        random_points=random.max_points if random else 96,
        block_reads=block,
        block_count=60 if device.series == "iQ-R" else 120,
        block_points=words.max_points if words else 960,
        max_gap=device.max_gap,
        max_read=device.max_read,
    )
