"""The CoAP side of the LwM2M server: the ``/rd`` resource and the requests the server sends to its clients.

aiocoap (UDP only: the ``udp6`` transport, which also takes IPv4) serves ``/rd``; a request to a client
goes to the address its registration came from, through the same socket, as LwM2M expects (a client
behind NAT is reachable only there).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self

import aiocoap  # type: ignore[import-untyped]  # no py.typed in aiocoap 0.4.17
import aiocoap.message  # type: ignore[import-untyped]
import aiocoap.numbers.codes  # type: ignore[import-untyped]
import aiocoap.resource  # type: ignore[import-untyped]

from bridges.lwm2m.ipso import Path
from bridges.lwm2m.registration import RegistrationRefused
from bridges.lwm2m.udp import open_context

__all__ = ["CoapAnswer", "CoapServer", "ObservedStream", "RdHandler", "Remote"]

log = logging.getLogger(__name__)

Remote = Any  # aiocoap's EndpointAddress of a client (it exports no type for it), or "host:port"
Code = aiocoap.numbers.codes.Code
CodeValue = Any  # a member of aiocoap's Code enum (untyped)


class CoapAnswer:
    """A client's answer: code, content format (None = not given), payload."""

    __slots__ = ("code", "fmt", "payload")

    def __init__(self, message: aiocoap.Message) -> None:
        self.code = str(message.code).split(" ")[0]
        self.fmt: int | None = None if message.opt.content_format is None else int(message.opt.content_format)
        self.payload: bytes = message.payload

    @property
    def ok(self) -> bool:
        """2.xx."""
        return self.code.startswith("2.")


class RdHandler:
    """What ``/rd`` requests do; each raises ``RegistrationRefused`` to answer 4.xx with a reason."""

    async def register(self, query: dict[str, str], payload: bytes, remote: Remote) -> str:
        """A Register: the new registration's location (``rd/3``)."""
        raise NotImplementedError

    async def update(self, location: str, query: dict[str, str], payload: bytes, remote: Remote) -> None:
        """An Update of the registration at ``location``."""
        raise NotImplementedError

    async def deregister(self, location: str) -> None:
        """A De-register of the registration at ``location``."""
        raise NotImplementedError


def _query(request: aiocoap.Message) -> dict[str, str]:
    out = {}
    for item in request.opt.uri_query:
        key, _, value = item.partition("=")
        out[key] = value
    return out


class _Rd(aiocoap.resource.Resource):  # type: ignore[misc]
    """``/rd`` (POST: Register) and ``/rd/<id>`` (POST: Update, DELETE: De-register)."""

    def __init__(self, handler: RdHandler) -> None:
        super().__init__()
        self._handler = handler

    async def _answer(self, work: Callable[[], Awaitable[aiocoap.Message]]) -> aiocoap.Message:
        try:
            return await work()
        except RegistrationRefused as exc:
            code = {"4.00": Code.BAD_REQUEST, "4.03": Code.FORBIDDEN, "4.04": Code.NOT_FOUND}.get(
                exc.code, Code.BAD_REQUEST
            )
            return aiocoap.Message(code=code, payload=exc.reason.encode()[:1024])

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        path = [p for p in request.opt.uri_path if p]
        query = _query(request)

        async def register() -> aiocoap.Message:
            location = await self._handler.register(query, request.payload, request.remote)
            return aiocoap.Message(code=Code.CREATED, location_path=tuple(location.split("/")))

        async def update() -> aiocoap.Message:
            await self._handler.update("rd/" + "/".join(path), query, request.payload, request.remote)
            return aiocoap.Message(code=Code.CHANGED)

        return await self._answer(update if path else register)

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        path = [p for p in request.opt.uri_path if p]

        async def deregister() -> aiocoap.Message:
            if not path:
                raise RegistrationRefused("4.04", "De-register names a registration: DELETE /rd/<id>")
            await self._handler.deregister("rd/" + "/".join(path))
            return aiocoap.Message(code=Code.DELETED)

        return await self._answer(deregister)


class CoapServer:
    """An aiocoap server context with ``/rd`` served by ``handler``; ``async with`` binds it.

    Args:
        host: address to bind.
        port: UDP port; 0 = a free one (``port`` tells which once entered).
        handler: the registration interface's logic.
    """

    def __init__(self, *, host: str, port: int, handler: RdHandler) -> None:
        self._bind = (host, port)
        site = aiocoap.resource.Site()
        rd = _Rd(handler)
        site.add_resource(["rd"], rd)  # /rd itself
        site.add_resource(["rd"], _RdTree(rd))  # /rd/<id>
        self._site = site
        self._ctx: aiocoap.Context | None = None
        self.port = port

    async def __aenter__(self) -> Self:
        self._ctx, self.port = await open_context(self._site, *self._bind)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            await ctx.shutdown()

    def _message(
        self, code: CodeValue, remote: Remote, path: Path, *, payload: bytes = b"", fmt: int | None, accept: int | None
    ) -> aiocoap.Message:
        msg = aiocoap.Message(code=code, uri_path=tuple(str(p) for p in path), payload=payload)
        # a client known from a saved registration is an address (host:port) until it speaks again
        msg.remote = aiocoap.message.UndecidedRemote("coap", remote) if isinstance(remote, str) else remote
        if fmt is not None:
            msg.opt.content_format = fmt
        if accept is not None:
            msg.opt.accept = accept
        return msg

    def _context(self) -> aiocoap.Context:
        if self._ctx is None:
            raise RuntimeError("CoapServer not entered")
        return self._ctx

    async def request(
        self, code: CodeValue, remote: Remote, path: Path, *, payload: bytes = b"", fmt: int | None = None
    ) -> CoapAnswer:
        """One request to a client (a write, an execute); raises ``aiocoap.error.Error`` if it cannot be sent."""
        msg = self._message(code, remote, path, payload=payload, fmt=fmt, accept=None)
        return CoapAnswer(await self._context().request(msg).response)

    @contextlib.asynccontextmanager
    async def observe(self, remote: Remote, path: Path, *, accept: int | None) -> AsyncIterator[ObservedStream]:
        """A read with Observe: the first answer, then every notification; cancelled on leaving."""
        msg = self._message(Code.GET, remote, path, fmt=None, accept=accept)
        msg.opt.observe = 0
        pending = self._context().request(msg)
        try:
            yield ObservedStream(pending)
        finally:
            if pending.observation is not None and not pending.observation.cancelled:
                pending.observation.cancel()


class ObservedStream:
    """The answers of one observed read: ``await first()``, then ``async for`` the notifications."""

    def __init__(self, pending: Any) -> None:
        self._pending = pending

    async def first(self) -> CoapAnswer:
        """The answer to the read itself."""
        return CoapAnswer(await self._pending.response)

    @property
    def observing(self) -> bool:
        """The client took the observation (its answer carried an Observe option)."""
        obs = self._pending.observation
        return obs is not None and not obs.cancelled

    async def __aiter__(self) -> AsyncIterator[CoapAnswer]:
        async for message in self._pending.observation:
            yield CoapAnswer(message)


class _RdTree(aiocoap.resource.Resource, aiocoap.resource.PathCapable):  # type: ignore[misc]
    """Sends ``/rd/<id>`` to the ``/rd`` resource with the rest of the path still on the request."""

    def __init__(self, rd: _Rd) -> None:
        super().__init__()
        self._rd = rd

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        return await self._rd.render(request)
