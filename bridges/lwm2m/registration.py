"""The LwM2M registration interface's state (LwM2M 1.1 Core TS 6.2 / Transport TS 6.2): who is registered, until when.

Pure: no I/O, no clock (every call takes ``now_ms``). The CoAP shell (``bridges.lwm2m.server``) turns
``/rd`` requests into these calls and ``RegistrationRefused`` into a 4.xx answer carrying the reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

from bridges.lwm2m.ipso import Path, parse_path

__all__ = ["DEFAULT_LIFETIME_S", "Registration", "RegistrationRefused", "Registry", "parse_links", "parse_query"]

DEFAULT_LIFETIME_S = 86400
"""The lifetime of a Register without ``lt`` (Core TS 6.2.1)."""
_BINDINGS = frozenset("UMHTSN")  # 1.1: U (UDP), M (MQTT), H (HTTP), T (TCP), S (SMS), N (Non-IP); 1.0's Q is queue mode


class RegistrationRefused(Exception):
    """A register, update or deregister the server answers with ``code`` (4.00, 4.03, 4.04) and ``reason``."""

    def __init__(self, code: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclasses.dataclass(slots=True)
class Registration:
    """One registered client."""

    endpoint: str
    location: str
    """The path the client updates and deregisters on (``rd/3``), without a leading slash."""
    lifetime_s: int
    binding: str
    version: str
    objects: tuple[Path, ...]
    expires_ms: int


def parse_query(items: Iterable[str]) -> dict[str, str]:
    """CoAP Uri-Query options (``ep=abc``, ``b=U``, ``Q``) as a dict; a flag without ``=`` maps to ``""``."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def parse_links(payload: bytes) -> tuple[Path, ...]:
    """The object instances of a registration's CoRE link list (``</1/0>,</3/0>;ver=1.1,</3303/0>``).

    The root link (``</>;rt="oma.lwm2m"``) and attributes are skipped; an alternate path (``</lwm2m>``)
    is not supported and refused.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegistrationRefused("4.00", f"object links are not UTF-8 (byte {exc.start})") from None
    if not text.strip():
        return ()  # the spec wants the list; a client that sends none still gets its resources read
    out = []
    at = 0
    for link in text.split(","):
        target = link.split(";", 1)[0].strip()
        if not (target.startswith("<") and target.endswith(">")):
            raise RegistrationRefused("4.00", f"object link at character {at} is not <path>: {target[:40]!r}")
        inner = target[1:-1]
        if inner in ("/", ""):
            at += len(link) + 1
            continue
        try:
            out.append(parse_path(inner))
        except ValueError as exc:
            raise RegistrationRefused("4.00", f"object link at character {at}: {exc}") from None
        at += len(link) + 1
    return tuple(out)


class Registry:
    """The registered clients by endpoint name and location.

    Args:
        allowed: whether an endpoint name may register (the configured devices); others get 4.03.
        min_lifetime_s: a shorter requested lifetime is refused (4.00).
    """

    def __init__(self, *, allowed: Callable[[str], bool], min_lifetime_s: int = 1) -> None:
        self._allowed = allowed
        self._min_lifetime_s = min_lifetime_s
        self._by_endpoint: dict[str, Registration] = {}
        self._by_location: dict[str, Registration] = {}
        self._next = 0

    def __len__(self) -> int:
        return len(self._by_endpoint)

    def get(self, endpoint: str) -> Registration | None:
        """The current registration of an endpoint."""
        return self._by_endpoint.get(endpoint)

    def _lifetime(self, query: dict[str, str], default: int) -> int:
        text = query.get("lt")
        if text is None:
            return default
        if not text.isdigit() or int(text) < self._min_lifetime_s:
            raise RegistrationRefused(
                "4.00", f"lt: a lifetime is whole seconds >= {self._min_lifetime_s} (got {text!r})"
            )
        return int(text)

    @staticmethod
    def _binding(query: dict[str, str], default: str) -> str:
        binding = query.get("b", default)
        if not binding or not set(binding) <= _BINDINGS | {"Q"}:
            raise RegistrationRefused("4.00", f"b: binding {binding!r} is not letters of U, M, H, T, S, N, Q")
        return binding

    def register(
        self, query: dict[str, str], payload: bytes, *, now_ms: int
    ) -> tuple[Registration, Registration | None]:
        """A Register: the new registration and the one it replaces (same endpoint registering again)."""
        endpoint = query.get("ep", "")
        if not endpoint:
            raise RegistrationRefused("4.00", "ep: a Register needs the endpoint name")
        if not self._allowed(endpoint):
            raise RegistrationRefused("4.03", f"ep: endpoint {endpoint!r} is not configured on this server")
        lifetime = self._lifetime(query, DEFAULT_LIFETIME_S)
        binding = self._binding(query, "U")
        objects = parse_links(payload)
        old = self._by_endpoint.pop(endpoint, None)
        if old is not None:
            self._by_location.pop(old.location, None)
        self._next += 1
        reg = Registration(
            endpoint=endpoint,
            location=f"rd/{self._next}",
            lifetime_s=lifetime,
            binding=binding,
            version=query.get("lwm2m", "1.0"),
            objects=objects,
            expires_ms=now_ms + lifetime * 1000,
        )
        self._by_endpoint[endpoint] = self._by_location[reg.location] = reg
        return reg, old

    def restore(self, reg: Registration) -> None:
        """Take back a registration a previous run saved (same location; later ones are numbered after it)."""
        if not self._allowed(reg.endpoint) or reg.endpoint in self._by_endpoint:
            return
        self._by_endpoint[reg.endpoint] = self._by_location[reg.location] = reg
        number = reg.location.rpartition("/")[2]
        if number.isdigit():
            self._next = max(self._next, int(number))

    def registrations(self) -> list[Registration]:
        """Every current registration."""
        return list(self._by_endpoint.values())

    def _at(self, location: str) -> Registration:
        reg = self._by_location.get(location.strip("/"))
        if reg is None:
            raise RegistrationRefused("4.04", f"no registration at /{location.strip('/')}")
        return reg

    def update(self, location: str, query: dict[str, str], payload: bytes, *, now_ms: int) -> tuple[Registration, bool]:
        """An Update: the registration, and whether its object list changed."""
        reg = self._at(location)
        lifetime = self._lifetime(query, reg.lifetime_s)
        binding = self._binding(query, reg.binding)
        objects = parse_links(payload) if payload else reg.objects
        changed = objects != reg.objects
        reg.lifetime_s, reg.binding, reg.objects = lifetime, binding, objects
        reg.expires_ms = now_ms + lifetime * 1000
        return reg, changed

    def deregister(self, location: str) -> Registration:
        """A De-register: the registration removed."""
        reg = self._at(location)
        del self._by_location[reg.location]
        del self._by_endpoint[reg.endpoint]
        return reg

    def expired(self, *, now_ms: int, grace_ms: int = 0) -> Sequence[Registration]:
        """Remove and return the registrations whose lifetime (plus ``grace_ms``) ended without an update."""
        out = [r for r in self._by_endpoint.values() if now_ms > r.expires_ms + grace_ms]
        for reg in out:
            del self._by_location[reg.location]
            del self._by_endpoint[reg.endpoint]
        return out

    def next_expiry_ms(self) -> int | None:
        """When the next registration expires (before any grace), or None if none is registered."""
        return min((r.expires_ms for r in self._by_endpoint.values()), default=None)
