"""Browsing a controller from recorded CIP replies (cpppo cannot list tags), and the browse CLI against our server.

The replies are byte fixtures written from Rockwell's Logix 5000 Data Access manual (1756-PM020):
Get Instance Attribute List on the Symbol object (attributes 1 name, 2 type, 8 dimensions, paged
with status 0x06), Get Attribute List and Read on the Template object, including a UDT with a BOOL
member packed into a hidden SINT host, an I/O module tag and a system tag. They are written out by
hand, not produced by our encoder, and replayed by a stand-in for the controller.
"""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import redirect_stdout

import yaml

from bridges.ethernetip.browse import main
from bridges.ethernetip.cip import Reply, decode_reply
from bridges.ethernetip.symbols import upload
from bridges.sim.ethernetip_server import LogixServer, SimTag, SimUdt
from model.bridges.ethernetip import EthernetIpDevice

_CONTROLLER_PAGE_1 = bytes.fromhex(
    "d5 00 06 00"  # Get Instance Attribute List reply, status 0x06: more instances follow
    "57 0a 00 00  05 00 53 70 65 65 64  ca 00  00 00 00 00 00 00 00 00 00 00 00 00"  # 0x0A57 Speed REAL
    "11 1c 00 00  05 00 54 65 6d 70 73  ca 20  0a 00 00 00 00 00 00 00 00 00 00 00"  # 0x1C11 Temps REAL[10]
)
_CONTROLLER_PAGE_2 = bytes.fromhex(
    "d5 00 00 00"  # status 0: the last page
    "b4 21 00 00  04 00 50 75 6d 70  34 82  00 00 00 00 00 00 00 00 00 00 00 00"  # 0x21B4 Pump, UDT 0x234
    "7e 30 00 00  13 00 50 72 6f 67 72 61 6d 3a 4d 61 69 6e 50 72 6f 67 72 61 6d  68 10"  # Program:MainProgram
    "   00 00 00 00 00 00 00 00 00 00 00 00"
    "00 31 00 00  08 00 5f 5f 48 69 64 64 65 6e  c4 00  00 00 00 00 00 00 00 00 00 00 00 00"  # __Hidden: system
    "01 31 00 00  09 00 4c 6f 63 61 6c 3a 31 3a 49  56 84  00 00 00 00 00 00 00 00 00 00 00 00"  # Local:1:I (I/O)
)
_PROGRAM_PAGE = bytes.fromhex(
    "d5 00 00 00  01 01 00 00  05 00 43 6f 75 6e 74  c4 00  00 00 00 00 00 00 00 00 00 00 00 00"  # Count DINT
)
_TEMPLATE_ATTRIBUTES = bytes.fromhex(
    "83 00 00 00  04 00"  # Get Attribute List reply, 4 attributes
    "04 00 00 00 1a 00 00 00"  # 4 object definition size: 26 words
    "05 00 00 00 0c 00 00 00"  # 5 structure size: 12 bytes
    "02 00 00 00 04 00"  # 2 member count: 4
    "01 00 00 00 3c 5a"  # 1 structure handle 0x5A3C
)
_TEMPLATE_DEFINITION = bytes.fromhex(
    "cc 00 00 00"  # Read reply (26 x 4 - 23 = 81 bytes)
    "00 00 ca 00 00 00 00 00"  # Flow: REAL at 0
    "00 00 c4 00 04 00 00 00"  # Runs: DINT at 4
    "00 00 c2 00 08 00 00 00"  # ZZZZZZZZZZPump_UDT2: SINT at 8, the BOOLs' host
    "00 00 c1 00 08 00 00 00"  # Running: BOOL, bit 0 of byte 8
    "50 75 6d 70 5f 55 44 54 3b 6e 00"  # "Pump_UDT;n"
    "46 6c 6f 77 00  52 75 6e 73 00"  # "Flow", "Runs"
    "5a 5a 5a 5a 5a 5a 5a 5a 5a 5a 50 75 6d 70 5f 55 44 54 32 00"  # "ZZZZZZZZZZPump_UDT2"
    "52 75 6e 6e 69 6e 67 00"  # "Running"
)


class _RecordedController:
    """Answers each request with the reply recorded for its service and path; counts what was asked."""

    def __init__(self) -> None:
        program = b"\x91\x13Program:MainProgram\x00"
        self.replies = {
            (0x55, bytes.fromhex("20 6b 24 00")): _CONTROLLER_PAGE_1,
            (0x55, bytes.fromhex("20 6b 25 00 12 1c")): _CONTROLLER_PAGE_2,  # continues at 0x1C11 + 1
            (0x55, program + bytes.fromhex("20 6b 24 00")): _PROGRAM_PAGE,
            (0x03, bytes.fromhex("20 6c 25 00 34 02")): _TEMPLATE_ATTRIBUTES,
            (0x4C, bytes.fromhex("20 6c 25 00 34 02")): _TEMPLATE_DEFINITION,
        }
        self.asked: list[tuple[int, bytes]] = []

    async def request(self, message: bytes) -> Reply:
        key = (message[0], message[2 : 2 + 2 * message[1]])
        self.asked.append(key)
        return decode_reply(self.replies.get(key, b"\xff\x00\x05\x00"))  # anything else: 0x05 no such object


async def test_recorded_replies_upload_into_tags_and_udt_members_and_browse_as_config() -> None:
    controller = _RecordedController()
    table = await upload(controller)
    assert sorted(table.symbols) == ["Program:MainProgram.Count", "Pump", "Speed", "Temps"]  # no system or I/O tags
    assert table.symbols["Temps"].dims == (10,)
    pump = table.templates[0x234]
    assert (pump.name, pump.handle, pump.size) == ("Pump_UDT", 0x5A3C, 12)
    assert [(m.name, m.type_word, m.offset) for m in pump.members][:2] == [("Flow", 0xCA, 0), ("Runs", 0xC4, 4)]
    assert table.browse() == [
        {"name": "MainProgram/Count", "type": "DINT", "address": "Program:MainProgram.Count"},
        {"name": "Pump/Flow", "type": "REAL", "address": "Pump.Flow"},
        {"name": "Pump/Runs", "type": "DINT", "address": "Pump.Runs"},
        {"name": "Pump/Running", "type": "BOOL", "address": "Pump.Running"},
        {"name": "Speed", "type": "REAL", "address": "Speed"},
        {"name": "Temps", "type": "REAL", "address": "Temps[0]{10}"},
    ]
    assert table.type_of("Pump.Running") == "BOOL"
    assert len(controller.asked) == 5  # two pages, the program, the template's attributes and its definition
    again = type(table).from_json(table.to_json())
    assert again.browse() == table.browse()
    assert json.loads(table.to_json())["templates"]["564"][0] == "Pump_UDT"


async def test_the_browse_cli_prints_a_device_config_that_loads_and_reads() -> None:
    udt = SimUdt("Tank_UDT", (("Level", "REAL"), ("Alarms", "DINT"), ("Product", "STRING")))
    tags = [SimTag("Tank", "Tank_UDT", {"Level": 2.5, "Alarms": 0, "Product": "milk"}),
            SimTag("Valves", "BOOL", [False] * 4, dims=4), SimTag("Program:Cip.Step", "INT", 3)]  # fmt: skip
    async with LogixServer(tags=tags, udts=[udt]) as server:
        host, port = server.endpoint
        out = io.StringIO()
        with redirect_stdout(out):
            code = await asyncio.to_thread(main, [host, "--port", str(port), "--id", "tank"])
    assert code == 0
    printed = yaml.safe_load(out.getvalue())
    device = EthernetIpDevice.model_validate(printed["devices"][0])
    assert [(t.name, t.address, t.type) for t in device.tags] == [
        ("Cip/Step", "Program:Cip.Step", "INT"),
        ("Tank/Level", "Tank.Level", "REAL"),
        ("Tank/Alarms", "Tank.Alarms", "DINT"),
        ("Tank/Product", "Tank.Product", "STRING"),
        ("Valves", "Valves[0]{4}", "BOOL"),
    ]
