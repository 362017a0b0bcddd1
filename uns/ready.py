"""The one ready line a service prints once it serves, and its endpoints read back.

``uns up``, ``uns <component>``, ``uns sink`` and ``uns edge`` each print one: a prefix, the endpoints as
``name=value``, then notes; supervisors and tests read the endpoints back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["ready_endpoints", "ready_line"]


def ready_line(prefix: str, endpoints: Mapping[str, str | None], notes: Iterable[str] = ()) -> str:
    """``<prefix>: name=value name=value  [note]  [note]``, the endpoints in their order.

    An endpoint without a value (None or empty) is left out: a part that is off just does not show.
    """
    shown = " ".join(f"{name}={value}" for name, value in endpoints.items() if value)
    return f"{prefix}: " + shown + "".join(f"  [{note}]" for note in notes)


def ready_endpoints(line: str) -> dict[str, str]:
    """The ``name=value`` endpoints of a ready line, as a supervisor or a test reads them back.

    Words are split on whitespace and each at its first ``=``: a value keeps any further ``=``, a value with spaces
    keeps only its first word, and a word without ``=`` (the prefix, a note) is skipped.
    """
    return dict(part.split("=", 1) for part in line.split() if "=" in part)
