"""The LwM2M server's registrations on disk, so a restarted server reads its clients again at once.

A client registers once per lifetime (often a day) and updates at a fraction of it; a server that
forgot its registrations would leave every client dark until its next Update (answered 4.04, so it
registers again). So each change is written (atomically: a temporary file, then a rename), and a
server entering reads back those still within their lifetime, with the address each came from.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path

from bridges.lwm2m.registration import Registration
from uns.files import replace_file

__all__ = ["load_registrations", "save_registrations"]

log = logging.getLogger(__name__)


def save_registrations(path: Path, registrations: list[tuple[Registration, str]]) -> None:
    """Write every registration with its client's address (``host:port``), replacing the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "endpoint": reg.endpoint, "location": reg.location, "lifetime_s": reg.lifetime_s, "binding": reg.binding,
            "version": reg.version, "objects": [list(p) for p in reg.objects], "expires_ms": reg.expires_ms,
            "address": address,
        }
        for reg, address in registrations
    ]  # fmt: skip
    replace_file(path, json.dumps(rows, indent=1))


def load_registrations(path: Path, *, now_ms: int) -> list[tuple[Registration, str]]:
    """The registrations saved at ``path`` whose lifetime has not run out; none if the file is missing.

    A file that cannot be read is logged and set aside (renamed ``.bad``): the clients register
    again at their next Update, as if the server had never known them.
    """
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        out = [
            (
                Registration(
                    endpoint=str(row["endpoint"]), location=str(row["location"]), lifetime_s=int(row["lifetime_s"]),
                    binding=str(row["binding"]), version=str(row["version"]),
                    objects=tuple(tuple(int(i) for i in p) for p in row["objects"]), expires_ms=int(row["expires_ms"]),
                ),
                str(row["address"]),
            )
            for row in rows
        ]  # fmt: skip
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("lwm2m registrations %s unreadable (%s): set aside as .bad; clients will register again", path, exc)
        with contextlib.suppress(OSError):
            os.replace(path, path.with_suffix(".bad"))
        return []
    return [(reg, address) for reg, address in out if reg.expires_ms >= now_ms]
