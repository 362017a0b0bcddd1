"""A small LwM2M 1.1 client on aiocoap: the demo's warehouse sensors, and the tests' client for what others lack.

It registers at a server's ``/rd``, updates and de-registers; serves its resources for Read (plain
text, CBOR, TLV, SenML JSON, SenML CBOR as the Accept option asks; an object instance as TLV or
SenML), Observe (a notification on every ``set``), Write (PUT in any of those formats) and Execute
(POST). ``inject`` makes the next answer for a path a given payload, so tests can send the server
broken bytes through a real CoAP exchange.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Self

import aiocoap  # type: ignore[import-untyped]  # no py.typed in aiocoap 0.4.17
import aiocoap.resource  # type: ignore[import-untyped]
import cbor2

from bridges.lwm2m.coap import Code
from bridges.lwm2m.content import (
    CBOR,
    OPAQUE,
    SENML_CBOR,
    SENML_JSON,
    TEXT,
    TLV,
    decode,
    plain_value,
    tlv_value,
)
from bridges.lwm2m.ipso import Path, parse_path, resource_info
from bridges.lwm2m.senml import encode_senml_cbor, encode_senml_json
from bridges.lwm2m.tlv import ContentError, encode_tlv
from bridges.lwm2m.udp import open_context
from uns.clock import now_ms
from uns.sparkplug import DataType, MetricValue

__all__ = ["Lwm2mClient", "SimResource"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class SimResource:
    """One resource the client serves: its datatype and current value."""

    datatype: DataType
    value: MetricValue
    writable: bool = False
    executable: bool = False


def _text(path: str) -> Path:
    return parse_path(path)


class _Node(aiocoap.resource.ObservableResource):  # type: ignore[misc]
    """An object instance (``/3303/0``) or a resource (``/3303/0/5700``) of the client."""

    def __init__(self, client: Lwm2mClient, path: Path) -> None:
        super().__init__()
        self._client = client
        self.path = path

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        injected = self._client.injected.pop(self.path, None)
        if injected is not None:
            payload, fmt = injected
            return aiocoap.Message(payload=payload, content_format=fmt)
        accept = request.opt.accept
        fmt = None if accept is None else int(accept)
        try:
            payload, fmt = self._client.render(self.path, fmt)
        except ValueError as exc:
            return aiocoap.Message(code=Code.NOT_ACCEPTABLE, payload=str(exc).encode())
        message = aiocoap.Message(payload=payload)
        if fmt is not None:
            message.opt.content_format = fmt
        return message

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        fmt = None if request.opt.content_format is None else int(request.opt.content_format)
        try:
            self._client.written(self.path, request.payload, fmt)
        except (ContentError, ValueError, KeyError) as exc:
            return aiocoap.Message(code=Code.BAD_REQUEST, payload=str(exc).encode())
        return aiocoap.Message(code=Code.CHANGED)

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        res = self._client.resources.get(self.path)
        if res is None or not res.executable:
            return aiocoap.Message(code=Code.METHOD_NOT_ALLOWED)
        self._client.executed.append(self.path)
        return aiocoap.Message(code=Code.CHANGED)


class Lwm2mClient:
    """An LwM2M client with the given resources (``{"3303/0/5700": 21.5}``; datatypes from the IPSO registry).

    Args:
        endpoint: the endpoint name it registers with.
        resources: resource path -> initial value (or a ``SimResource`` for one the registry does not know).
        lifetime_s: the lifetime it asks for.
        host: the address its CoAP socket binds (it registers, and is reached, from there).
    """

    def __init__(
        self,
        *,
        endpoint: str,
        resources: Mapping[str, MetricValue | SimResource],
        lifetime_s: int = 60,
        host: str = "127.0.0.1",
    ) -> None:
        self.endpoint = endpoint
        self.lifetime_s = lifetime_s
        self.resources: dict[Path, SimResource] = {}
        for text, value in resources.items():
            path = _text(text)
            if isinstance(value, SimResource):
                self.resources[path] = value
                continue
            _, info = resource_info(path)
            if info is None:
                raise ValueError(f"{text}: not in the IPSO registry; give a SimResource")
            datatype = info.datatype if info.datatype is not None else DataType.Boolean
            self.resources[path] = SimResource(datatype, value, "W" in info.ops, info.ops == "E")
        self.executed: list[Path] = []
        self.writes: list[tuple[Path, MetricValue]] = []
        self.injected: dict[Path, tuple[bytes, int | None]] = {}
        self.location: str | None = None
        self._host = host
        self._nodes: dict[Path, _Node] = {}
        self._ctx: aiocoap.Context | None = None
        self._port = 0
        self._server: tuple[str, int] | None = None
        self.on_write: Callable[[Path, MetricValue], None] | None = None

    @property
    def port(self) -> int:
        """The UDP port the client is reached on."""
        if self._ctx is None:
            raise RuntimeError("Lwm2mClient not entered")
        return self._port

    async def __aenter__(self) -> Self:
        site = aiocoap.resource.Site()
        instances = sorted({p[:2] for p in self.resources})
        for path in [*instances, *sorted(self.resources)]:
            node = _Node(self, path)
            self._nodes[path] = node
            site.add_resource([str(p) for p in path], node)
        self._ctx, self._port = await open_context(site, self._host, 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await ctx.shutdown()

    # -- registration -------------------------------------------------------------------------

    def _links(self) -> bytes:
        instances = sorted({p[:2] for p in self.resources})
        return ",".join(['</>;rt="oma.lwm2m"', *(f"</{o}/{i}>" for o, i in instances)]).encode()

    async def _send(self, code: object, path: str, query: Sequence[str], payload: bytes = b"") -> aiocoap.Message:
        if self._ctx is None or self._server is None:
            raise RuntimeError("Lwm2mClient not entered or not registered")
        host, port = self._server
        message = aiocoap.Message(code=code, uri=f"coap://{host}:{port}/{path}", payload=payload)
        message.opt.uri_query = tuple(query)
        if payload:
            message.opt.content_format = 40  # application/link-format
        return await self._ctx.request(message).response

    async def register(self, host: str, port: int, *, query: Sequence[str] | None = None) -> aiocoap.Message:
        """Register (POST /rd); the answer. ``query`` replaces the usual ``ep``, ``lt``, ``lwm2m``, ``b``."""
        self._server = (host, port)
        base = [f"ep={self.endpoint}", f"lt={self.lifetime_s}", "lwm2m=1.1", "b=U"]
        answer = await self._send(Code.POST, "rd", base if query is None else query, self._links())
        if answer.code == Code.CREATED:
            self.location = "/".join(answer.opt.location_path)
        return answer

    async def update(self) -> aiocoap.Message:
        """Update (POST /rd/<id>) with the same lifetime."""
        if self.location is None:
            raise RuntimeError(f"{self.endpoint}: not registered")
        return await self._send(Code.POST, self.location, [f"lt={self.lifetime_s}"])

    async def deregister(self) -> aiocoap.Message:
        """De-register (DELETE /rd/<id>)."""
        if self.location is None:
            raise RuntimeError(f"{self.endpoint}: not registered")
        answer = await self._send(Code.DELETE, self.location, [])
        self.location = None
        return answer

    # -- values -------------------------------------------------------------------------------

    def set(self, path: str, value: MetricValue) -> None:
        """A new value: observers of the resource and of its instance are notified."""
        key = _text(path)
        self.resources[key].value = value
        self._notify(key)

    def _notify(self, path: Path) -> None:
        for node_path in (path, path[:2]):
            node = self._nodes.get(node_path)
            if node is not None:
                node.updated_state()

    def inject(self, path: str, payload: bytes, fmt: int | None) -> None:
        """The next answer for ``path`` (a read or a notification) is this payload, sent now to observers."""
        key = _text(path)
        self.injected[key] = (payload, fmt)
        self._nodes[key].updated_state()

    def render(self, path: Path, fmt: int | None) -> tuple[bytes, int | None]:
        """A resource or instance in format ``fmt`` (None: text for a resource, TLV for an instance)."""
        if len(path) == 2:
            inside = sorted((p, r) for p, r in self.resources.items() if p[:2] == path and not r.executable)
            fmt = TLV if fmt is None else fmt
            if fmt == TLV:
                return encode_tlv([(p[2], tlv_value(r.value, r.datatype)) for p, r in inside]), TLV
            values = [(p, plain_value(r.value, r.datatype)) for p, r in inside]
            if fmt == SENML_JSON:
                return encode_senml_json(values), SENML_JSON
            if fmt == SENML_CBOR:
                return encode_senml_cbor(values), SENML_CBOR
            raise ValueError(f"an object instance is TLV or SenML, not format {fmt}")
        res = self.resources[path]
        if fmt is None or fmt == TEXT:
            plain = plain_value(res.value, res.datatype)
            text = ("1" if plain else "0") if isinstance(plain, bool) else str(plain)
            return text.encode(), None if fmt is None else TEXT
        if fmt == TLV:
            return encode_tlv([(path[2], tlv_value(res.value, res.datatype))]), TLV
        if fmt == SENML_JSON:
            return encode_senml_json([(path, plain_value(res.value, res.datatype))]), SENML_JSON
        if fmt == SENML_CBOR:
            return encode_senml_cbor([(path, plain_value(res.value, res.datatype))]), SENML_CBOR
        if fmt == CBOR:
            return cbor2.dumps(plain_value(res.value, res.datatype)), CBOR
        if fmt == OPAQUE and isinstance(res.value, bytes):
            return res.value, OPAQUE
        raise ValueError(f"format {fmt} is not one this client serves")

    def written(self, path: Path, payload: bytes, fmt: int | None) -> None:
        """A Write of a resource: decoded by its datatype and kept; ValueError or ContentError if it cannot be."""
        res = self.resources[path]
        if not res.writable:
            raise ValueError(f"{'/'.join(map(str, path))} is not writable")
        decoded = decode(payload, fmt, path, lambda p: self.resources[p].datatype if p in self.resources else None,
                         now_ms=now_ms())  # fmt: skip
        if decoded.problems or not decoded.readings:
            raise ValueError("; ".join(decoded.problems) or "no value for the resource")
        for reading in decoded.readings:
            self.resources[reading.path].value = reading.value
            self.writes.append((reading.path, reading.value))
            self._notify(reading.path)  # observers see a written value as any other change
            if self.on_write is not None:
                self.on_write(reading.path, reading.value)
