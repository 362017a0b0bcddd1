"""A small EtherNet/IP server that behaves like a Logix controller, for the demo and tests (ours: MIT, no cpppo).

It answers ListIdentity, RegisterSession, SendRRData (with Unconnected Send routing to a slot),
SendUnitData, Forward Open / Large Forward Open / Forward Close (with a connection limit), and the
Logix services Read Tag (0x4C), Read Tag Fragmented (0x52), Write Tag (0x4D), Multiple Service
Packet (0x0A), Get Instance Attribute List (0x55) on the Symbol object and Get Attribute List /
Read on the Template object, so clients can browse it. It is checked with pycomm3 and pylogix
(tests/bridges/ethernetip/test_sim_interop.py), not only with our own client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import struct
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Self, cast

from bridges.ethernetip.cip import (
    ATOMIC_TYPES,
    GET_ATTRIBUTE_LIST,
    GET_ATTRIBUTES_ALL,
    GET_INSTANCE_ATTRIBUTE_LIST,
    IDENTITY_CLASS,
    MULTIPLE_SERVICE,
    PROGRAM_NAME_CLASS,
    READ_TAG,
    READ_TAG_FRAGMENTED,
    STRING_HANDLE,
    STRUCT_MARK,
    SYMBOL_CLASS,
    TEMPLATE_CLASS,
    UNCONNECTED_SIZE,
    WRITE_TAG,
    CipDecodeError,
    decode_multiple,
    encode_multiple,
    encode_reply,
)
from bridges.ethernetip.encap import (
    CONNECTED_ADDRESS,
    CONNECTED_DATA,
    FORWARD_CLOSE,
    FORWARD_OPEN,
    HEADER,
    LARGE_FORWARD_OPEN,
    LIST_IDENTITY,
    NULL_ADDRESS,
    REGISTER_SESSION,
    SEND_RR_DATA,
    SEND_UNIT_DATA,
    UNCONNECTED_DATA,
    UNCONNECTED_SEND,
    UNREGISTER_SESSION,
    Encapsulation,
    ForwardOpen,
    decode_cpf,
    decode_forward_open,
    encode_cpf,
)

__all__ = ["LogixServer", "SimTag", "SimUdt", "Value"]

log = logging.getLogger(__name__)

Value = int | float | bool | str | list[int] | list[float] | list[bool] | dict[str, "Value"]
_STRING_TEMPLATE = 0x0F00
_ACCESS = b"\x01\x03"
"""After a template's ``Name;n``: two bytes per member, the second's low bits its external access (3 = read/write)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SimUdt:
    """A user-defined type: member name -> Logix atomic type (or STRING), in order."""

    name: str
    members: tuple[tuple[str, str], ...]


@dataclasses.dataclass(slots=True)
class SimTag:
    """One controller tag: name (``Program:Main.X`` for program scope), type (atomic, STRING or a UDT), value."""

    name: str
    type: str
    value: Value
    dims: int = 0
    """Elements of a one-dimensional array (0: not an array)."""


class _Error(Exception):
    def __init__(self, status: int, extended: Sequence[int] = ()) -> None:
        self.status = status
        self.extended = tuple(extended)
        super().__init__(f"CIP status 0x{status:02X}")


@dataclasses.dataclass(slots=True)
class _Path:
    names: list[tuple[str, list[int]]] = dataclasses.field(default_factory=list)
    logical: dict[str, int] = dataclasses.field(default_factory=dict)
    ports: list[tuple[int, int]] = dataclasses.field(default_factory=list)


def _parse_path(path: bytes) -> _Path:
    out, at = _Path(), 0
    try:
        while at < len(path):
            kind = path[at]
            if kind == 0x91:
                length = path[at + 1]
                out.names.append((path[at + 2 : at + 2 + length].decode("latin-1"), []))
                at += 2 + length + (length % 2)
            elif kind in (0x28, 0x29, 0x2A) and out.names:
                size = {0x28: 1, 0x29: 2, 0x2A: 4}[kind]
                start = at + (1 if size == 1 else 2)
                out.names[-1][1].append(int.from_bytes(path[start : start + size], "little"))
                at = start + size
            elif kind & 0xE0 == 0x20:
                name = {0x20: "class", 0x24: "instance", 0x30: "attribute"}.get(kind & 0xFC)
                size = 1 << (kind & 0x03)
                start = at + (1 if size == 1 else 2)
                if name is None or size > 4:
                    raise _Error(0x04)
                out.logical[name] = int.from_bytes(path[start : start + size], "little")
                if name == "instance" and out.logical.get("class") == SYMBOL_CLASS:
                    out.names.append((f"#{out.logical[name]}", []))  # a tag addressed by its symbol instance
                at = start + size
            elif kind < 0x10:
                out.ports.append((kind, path[at + 1]))
                at += 2
            else:
                raise _Error(0x04)
    except IndexError:
        raise _Error(0x04) from None
    return out


class LogixServer:
    """A simulated Logix controller serving tags over EtherNet/IP.

    Args:
        tags: The controller's tags (program-scoped ones named ``Program:<program>.<tag>``).
        udts: The user-defined types the tags use.
        slot: The backplane slot the controller sits in (Unconnected Send and Forward Open routes must name it).
        max_connections: Forward Opens granted at once; one more is refused with 0x01 / 0x0113.
        product_name: Identity product name (``2080-...`` is a Micro800 to pycomm3).
        large_forward_open, forward_open, multiple_service: Off = answer 0x08 (service not supported), as
            older or smaller controllers do.
    """

    def __init__(
        self,
        *,
        tags: Sequence[SimTag],
        udts: Sequence[SimUdt] = (),
        bind: str = "127.0.0.1",
        port: int = 0,
        slot: int = 0,
        max_connections: int = 32,
        product_name: str = "1756-L83E/B",
        large_forward_open: bool = True,
        forward_open: bool = True,
        multiple_service: bool = True,
    ) -> None:
        self.bind = bind
        self.port = port
        self.slot = slot
        self.max_connections = max_connections
        self.product_name = product_name.encode("latin-1")
        self.large_forward_open = large_forward_open
        self.forward_open = forward_open
        self.multiple_service = multiple_service
        self.served: Counter[int] = Counter()
        """How many requests of each service were answered (tests count round trips)."""
        self.faults: dict[str, tuple[int, tuple[int, ...]]] = {}
        """Tag name -> CIP status (and extended words) to answer instead of its value."""
        self.writes: list[tuple[str, Value]] = []
        self.wrapped: Counter[int] = Counter()
        """Services that arrived inside an Unconnected Send (routed), by service code."""
        self.forward_opens: list[ForwardOpen] = []
        """Every Forward Open granted (tests read the sizes and RPI asked for)."""
        self._server: asyncio.Server | None = None
        self._connections: dict[int, tuple[int, int]] = {}
        """O->T connection id -> (message budget, T->O connection id)."""
        self._next_id = 0x1000
        self._handlers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.define(tags, udts)

    def define(self, tags: Sequence[SimTag], udts: Sequence[SimUdt] = ()) -> None:
        """Load a program: the tags and types (a new download changes instance ids and what clients list)."""
        self.tags: dict[str, SimTag] = {tag.name: tag for tag in tags}
        self.udts = {udt.name: udt for udt in udts}
        self._template_ids = {name: 0x100 + i for i, name in enumerate(self.udts)}

    @property
    def endpoint(self) -> tuple[str, int]:
        """(host, port), the real port once entered."""
        return self.bind, self.port

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.bind, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            # end each session by closing its socket (its reader then sees EOF) rather than cancelling
            # the handler task, which asyncio's stream callback would report as an error
            for writer in list(self._handlers.values()):
                writer.close()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()
        self._connections.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers[task] = writer
        session, owned = 0, list[int]()
        try:
            while True:
                header, length = Encapsulation.decode_header(await reader.readexactly(HEADER.size))
                data = await reader.readexactly(length)
                answer = self._encapsulated(header, data, session, owned)
                if header.command == REGISTER_SESSION:
                    session = answer.session
                if header.command == UNREGISTER_SESSION:
                    break
                writer.write(answer.encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except (CipDecodeError, ValueError, IndexError, struct.error, KeyError) as exc:
            # a client's malformed message ends its session only: the demo's other clients go on
            log.warning("simulated Logix %s:%d: session ended by a malformed message: %s", self.bind, self.port, exc)
        finally:
            for connection in owned:
                self._connections.pop(connection, None)
            if task is not None:
                self._handlers.pop(task, None)
            writer.close()

    def _encapsulated(self, header: Encapsulation, data: bytes, session: int, owned: list[int]) -> Encapsulation:
        def answer(payload: bytes, status: int = 0, new_session: int = session) -> Encapsulation:
            return Encapsulation(header.command, new_session, status, header.context, payload)

        if header.command == LIST_IDENTITY:
            return answer(struct.pack("<H", 1) + self._identity_item())
        if header.command == REGISTER_SESSION:
            return answer(data[:4], new_session=0x5E55 + len(self._handlers))
        if header.session != session or header.command not in (SEND_RR_DATA, SEND_UNIT_DATA):
            return answer(b"", status=0x64 if header.session != session else 0x01)
        items = dict(decode_cpf(data))
        if header.command == SEND_RR_DATA and UNCONNECTED_DATA in items:
            reply = self._unconnected(items[UNCONNECTED_DATA], owned)
            return answer(encode_cpf([(NULL_ADDRESS, b""), (UNCONNECTED_DATA, reply)]))
        if header.command == SEND_UNIT_DATA and CONNECTED_ADDRESS in items and CONNECTED_DATA in items:
            (connection,) = struct.unpack("<I", items[CONNECTED_ADDRESS])
            if connection not in self._connections:
                return answer(b"", status=0x03)
            sequence, request = items[CONNECTED_DATA][:2], items[CONNECTED_DATA][2:]
            budget, t_o_id = self._connections[connection]
            reply = self._message(request, budget=budget)
            address = struct.pack("<I", t_o_id)
            return answer(encode_cpf([(CONNECTED_ADDRESS, address), (CONNECTED_DATA, sequence + reply)]))
        return answer(b"", status=0x03)

    def _identity_item(self) -> bytes:
        body = struct.pack("<H", 1) + struct.pack(">HHI8s", 2, self.port, 0x7F000001, b"\x00" * 8)
        body += self._identity() + b"\x03"
        return struct.pack("<HH", 0x0C, len(body)) + body

    def _identity(self) -> bytes:
        """Identity object attributes 1-7: vendor 1 (Rockwell), type 0x0E (PLC), code, revision 32.11, ..."""
        head = struct.pack("<HHHBBHI", 1, 0x0E, 166, 32, 11, 0x3060, 0xC0FFEE)
        return head + bytes((len(self.product_name),)) + self.product_name

    def _route_ok(self, ports: Sequence[tuple[int, int]]) -> None:
        if ports and ports != [(1, self.slot)]:
            port = ports[0][0]
            raise _Error(0x01, (0x0311 if port != 1 else 0x0312,))

    def _unconnected(self, request: bytes, owned: list[int]) -> bytes:
        service = request[0] if request else 0
        try:
            path = _parse_path(request[2 : 2 + 2 * request[1]])
            data = request[2 + 2 * request[1] :]
            is_cm = path.logical.get("class") == 0x06 and not path.names
            if service == UNCONNECTED_SEND and is_cm:
                (size,) = struct.unpack_from("<H", data, 2)
                embedded = data[4 : 4 + size]
                route_at = 4 + size + size % 2
                self._route_ok(_parse_path(data[route_at + 2 : route_at + 2 + 2 * data[route_at]]).ports)
                if embedded:
                    self.wrapped[embedded[0]] += 1
                return self._unconnected(embedded, owned)
            if service in (FORWARD_OPEN, LARGE_FORWARD_OPEN) and is_cm:
                return self._forward_open(service, data, owned)
            if service == FORWARD_CLOSE and is_cm:
                return encode_reply(service, 0, data[2:10] + b"\x00\x00")
        except _Error as exc:
            return encode_reply(service, exc.status, extended=exc.extended)
        except (IndexError, struct.error):
            return encode_reply(service, 0x13)
        return self._message(request, budget=UNCONNECTED_SIZE)

    def _forward_open(self, service: int, data: bytes, owned: list[int]) -> bytes:
        if not self.forward_open or (service == LARGE_FORWARD_OPEN and not self.large_forward_open):
            raise _Error(0x08)  # as a controller before v20 (no Large Forward Open) or a device without class 3
        fo = decode_forward_open(data, large=service == LARGE_FORWARD_OPEN)
        self._route_ok(_parse_path(fo.path).ports)
        if len(self._connections) >= self.max_connections:
            raise _Error(0x01, (0x0113,))
        if fo.t_o_size > 4002 or (not fo.large and fo.t_o_size > 511):
            raise _Error(0x01, (0x0109,))
        self._next_id += 1
        connection = self._next_id
        self._connections[connection] = (fo.t_o_size - 2, fo.t_o_id)
        self.forward_opens.append(fo)
        owned.append(connection)
        reply = struct.pack("<IIHHIII", connection, fo.t_o_id, fo.serial, fo.vendor, fo.originator_serial, fo.rpi_us,
                            fo.rpi_us) + b"\x00\x00"  # fmt: skip
        return encode_reply(service, 0, reply)

    def _message(self, request: bytes, *, budget: int) -> bytes:
        service = request[0] if request else 0
        self.served[service] += 1
        try:
            if len(request) < 2 or len(request) < 2 + 2 * request[1]:
                raise _Error(0x13)
            path = _parse_path(request[2 : 2 + 2 * request[1]])
            data = request[2 + 2 * request[1] :]
            return encode_reply(service, 0, self._dispatch(service, path, data, budget))
        except _Embedded as embedded:
            return encode_reply(service, 0x1E, embedded.data)
        except _Partial as partial:
            return encode_reply(service, 0x06, partial.data)
        except _Error as exc:
            return encode_reply(service, exc.status, extended=exc.extended)
        except (IndexError, struct.error):
            return encode_reply(service, 0x13)

    def _dispatch(self, service: int, path: _Path, data: bytes, budget: int) -> bytes:
        cls = path.logical.get("class")
        if service == MULTIPLE_SERVICE and cls == 0x02 and self.multiple_service:
            return self._multiple(data, budget)
        if service == GET_ATTRIBUTES_ALL and cls == IDENTITY_CLASS:
            return self._identity()
        if service == GET_ATTRIBUTES_ALL and cls == PROGRAM_NAME_CLASS:
            return struct.pack("<H", 7) + b"UnsDemo"
        if service == GET_INSTANCE_ATTRIBUTE_LIST and cls == SYMBOL_CLASS:
            return self._symbols(path, data, budget)
        if cls == TEMPLATE_CLASS:
            return self._template(service, path.logical.get("instance", 0), data, budget)
        if not path.names:
            raise _Error(0x08 if cls in (None, 0x02) else 0x05)
        if service == READ_TAG:
            return self._read(path, data, budget, offset=None)
        if service == READ_TAG_FRAGMENTED:
            return self._read(path, data, budget, offset=struct.unpack_from("<I", data, 2)[0])
        if service == WRITE_TAG:
            return self._write(path, data)
        raise _Error(0x08)

    def _multiple(self, data: bytes, budget: int) -> bytes:
        replies = [self._message(part, budget=budget) for part in decode_multiple(data)]
        body = encode_multiple(replies)
        if len(body) + 4 > budget:
            raise _Error(0x11)
        if any(reply[2] for reply in replies):
            raise _Embedded(body)
        return body

    # tags -------------------------------------------------------------------------------------

    def _resolve(self, path: _Path) -> tuple[SimTag, str, list[Value], int]:
        """The tag, the type at the path, the list holding the value and its index there."""
        names = list(path.names)
        first, indices = names.pop(0)
        if first.startswith("Program:") and names:
            second, indices = names.pop(0)
            first = f"{first}.{second}"
        tag = self._by_instance(first) if "#" in first else self.tags.get(first)
        if tag is None:
            # cpppo-style flat names ("Motor.Speed") are not Logix; a real controller says 0x05 here
            raise _Error(0x05, (0x0000,))
        if tag.name in self.faults:
            status, extended = self.faults[tag.name]
            raise _Error(status, extended)
        holder: list[Value] = _Slot(tag.value, lambda value: setattr(tag, "value", value))
        index, type_ = 0, tag.type
        if tag.dims:
            if len(indices) > 1 or (indices and indices[0] >= tag.dims):
                raise _Error(0x05)
            holder, index = tag.value, indices[0] if indices else 0  # type: ignore[assignment]
        elif indices:
            raise _Error(0x05)
        for member, member_indices in names:
            udt = self.udts.get(type_)
            fields = dict(udt.members) if udt else {}
            if member not in fields or member_indices:
                raise _Error(0x05)
            record = holder[index]
            assert isinstance(record, dict)  # noqa: S101  (a UDT value is a dict by construction)
            holder = _Slot(record[member], functools.partial(record.__setitem__, member))
            index, type_ = 0, fields[member]
        return tag, type_, holder, index

    def _read(self, path: _Path, data: bytes, budget: int, *, offset: int | None) -> bytes:
        (count,) = struct.unpack_from("<H", data)
        tag, type_, holder, index = self._resolve(path)
        if type_ == "STRING":
            text = str(holder[index]).encode("latin-1")[:82]
            payload = struct.pack("<HHi", STRUCT_MARK, STRING_HANDLE, len(text)) + text.ljust(84, b"\x00")
        elif type_ in ATOMIC_TYPES:
            kind = ATOMIC_TYPES[type_]
            values = holder[index : index + count] if isinstance(holder, list) and tag.dims else [holder[index]]
            if len(values) < count:
                raise _Error(0xFF, (0x2105,))
            payload = struct.pack("<H", kind.code) + struct.pack(f"<{count}{kind.fmt}", *values)
        else:
            raise _Error(0x08)  # whole structures are not served: read members
        if offset is None:
            if len(payload) + 4 > budget:
                raise _Partial(payload[: budget - 4])
            return payload
        head, body = payload[:2], payload[2:]
        chunk = body[offset : offset + budget - 6]
        if offset + len(chunk) < len(body):
            raise _Partial(head + chunk)
        return head + chunk

    def _write(self, path: _Path, data: bytes) -> bytes:
        _tag, type_, holder, index = self._resolve(path)
        (code,) = struct.unpack_from("<H", data)
        if type_ == "STRING":
            if code != STRUCT_MARK:
                raise _Error(0xFF, (0x2107,))
            (length,) = struct.unpack_from("<i", data, 6)  # type, handle, count, then LEN and DATA
            holder[index] = data[10 : 10 + max(0, min(length, 82))].decode("latin-1")
        else:
            kind = ATOMIC_TYPES.get(type_)
            if kind is None or code != kind.code:
                raise _Error(0xFF, (0x2107,))
            (count,) = struct.unpack_from("<H", data, 2)
            values = struct.unpack_from(f"<{count}{kind.fmt}", data, 4)
            for offset, value in enumerate(values):
                holder[index + offset] = bool(value) if type_ == "BOOL" else value
        self.writes.append((".".join(name for name, _ in path.names), holder[index]))
        return b""

    # browsing ---------------------------------------------------------------------------------

    def _type_word(self, type_: str, dims: int) -> int:
        if type_ in ATOMIC_TYPES:
            word = ATOMIC_TYPES[type_].code
        else:
            word = 0x8000 | (_STRING_TEMPLATE if type_ == "STRING" else self._template_ids[type_])
        return word | ((1 << 13) if dims else 0)

    def _entries(self, scope: str | None) -> list[tuple[str, int, int, SimTag | None]]:
        """A scope's symbol instances in order (instance id = position + 1): name, type word, dims, tag."""
        programs = sorted({name.split(".")[0] for name in self.tags if name.startswith("Program:")})
        if scope is None:
            return [(program, 0x1068, 0, None) for program in programs] + [
                (t.name, self._type_word(t.type, t.dims), t.dims, t) for t in self.tags.values() if ":" not in t.name
            ]
        if scope not in programs:
            raise _Error(0x05)
        inside = [t for t in self.tags.values() if t.name.startswith(scope + ".")]
        return [(t.name[len(scope) + 1 :], self._type_word(t.type, t.dims), t.dims, t) for t in inside]

    def _by_instance(self, name: str) -> SimTag | None:
        scope, _, instance = name.rpartition("#")
        entries = self._entries(scope.rstrip(".") or None)
        number = int(instance)
        return entries[number - 1][3] if 0 < number <= len(entries) else None

    def _symbols(self, path: _Path, data: bytes, budget: int) -> bytes:
        scope = path.names[0][0] if path.names and not path.names[0][0].startswith("#") else None
        (count,) = struct.unpack_from("<H", data)
        attributes = struct.unpack_from(f"<{count}H", data, 2)
        entries = [(name, word, dims) for name, word, dims, _ in self._entries(scope)]
        start, out = path.logical.get("instance", 0), b""
        for instance, (name, word, dims) in enumerate(entries, start=1):
            if instance < start:
                continue
            raw = name.encode("latin-1")
            entry = struct.pack("<I", instance)
            for attribute in attributes:
                entry += {
                    1: struct.pack("<H", len(raw)) + raw,
                    2: struct.pack("<H", word),
                    8: struct.pack("<3I", dims, 0, 0),
                    10: b"\x00",
                }.get(attribute, struct.pack("<I", 0))
            if out and len(out) + len(entry) + 8 > budget:
                raise _Partial(out)
            out += entry
        return out

    def _template_body(self, instance: int) -> tuple[bytes, int, int, int]:
        """Definition bytes, structure size, member count and handle of a template instance."""
        if instance == _STRING_TEMPLATE:
            infos = struct.pack("<HHI", 0, 0xC4, 0) + struct.pack("<HHI", 82, 0xC2, 4)
            names = b"ASCIISTRING82;n" + _ACCESS * 2 + b"\x00LEN\x00DATA\x00"
            return infos + names, 88, 2, STRING_HANDLE
        udt = next((u for u in self.udts.values() if self._template_ids[u.name] == instance), None)
        if udt is None:
            raise _Error(0x05)
        infos, offset = b"", 0
        for _name, type_ in udt.members:
            size = 88 if type_ == "STRING" else ATOMIC_TYPES[type_].size
            offset = -(-offset // min(size, 8)) * min(size, 8)  # natural alignment, as Logix lays members out
            infos += struct.pack("<HHI", 0, self._type_word(type_, 0), offset)
            offset += size
        names = f"{udt.name};n".encode() + _ACCESS * len(udt.members) + b"\x00"
        names += b"".join(n.encode() + b"\x00" for n, _ in udt.members)
        handle = sum(infos + names) & 0xFFFF  # stands in for Logix's CRC of the definition
        return infos + names, -(-offset // 4) * 4, len(udt.members), handle

    def _template(self, service: int, instance: int, data: bytes, budget: int) -> bytes:
        body, size, members, handle = self._template_body(instance)
        words = -(-(len(body) + 23) // 4)
        if service == GET_ATTRIBUTE_LIST:
            (count,) = struct.unpack_from("<H", data)
            values = {4: struct.pack("<I", words), 5: struct.pack("<I", size), 2: struct.pack("<H", members),
                      1: struct.pack("<H", handle)}  # fmt: skip
            out = struct.pack("<H", count)
            for attribute in struct.unpack_from(f"<{count}H", data, 2):
                out += struct.pack("<HH", attribute, 0) + values.get(attribute, b"\x00\x00")
            return out
        if service == READ_TAG:
            offset, length = struct.unpack_from("<IH", data)
            # Logix sends the definition padded to whole 32-bit words: (words * 4 - 23) rounded up
            padded = body.ljust(words * 4 - 20, b"\x00")
            chunk = padded[offset : offset + min(length, budget - 8)]
            if offset + len(chunk) < min(len(padded), offset + length):
                raise _Partial(chunk)
            return chunk
        raise _Error(0x08)


class _Partial(Exception):
    """Status 0x06: this much now, ask again for the rest."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class _Embedded(_Partial):
    """A Multiple Service Packet with a failed member: status 0x1E with all replies."""


class _Slot(list[Value]):
    """A one-slot list onto a tag's or UDT member's value, so they are written like array elements."""

    def __init__(self, value: Value, store: Callable[[Value], object]) -> None:
        super().__init__([value])
        self._store = store

    def __setitem__(self, index: object, value: object) -> None:
        stored = cast(Value, value)
        self._store(stored)
        super().__setitem__(0, stored)
