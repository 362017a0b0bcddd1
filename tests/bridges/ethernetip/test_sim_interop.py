"""The demo's Logix-like server read by clients nobody here wrote: pycomm3 and pylogix (test-only, in threads).

So the server is not only a mirror of our own reading of the spec: both libraries open a
connection, upload the tag and UDT list, read members, arrays, program tags and STRINGs, and write.
"""

from __future__ import annotations

import asyncio

import pytest
from pycomm3 import LogixDriver
from pylogix import PLC  # type: ignore[import-untyped]  # ships no type information

from bridges.sim.ethernetip_server import LogixServer, SimTag, SimUdt

pytestmark = pytest.mark.timeout(30)


def _server() -> LogixServer:
    udt = SimUdt("Boiler_UDT", (("State", "DINT"), ("Temperature", "REAL"), ("Energy", "LREAL"), ("Label", "STRING")))
    tags = [
        SimTag("Boiler", "Boiler_UDT", {"State": 3, "Temperature": 81.5, "Energy": 1234.5, "Label": "B1"}),
        SimTag("Temps", "REAL", [1.0, 2.0, 3.0, 4.0], dims=4),
        SimTag("Name", "STRING", "hello"),
        SimTag("Big", "LINT", -(2**40)),
        SimTag("Program:MainProgram.Setpoint", "REAL", 80.0),
    ]
    return LogixServer(tags=tags, udts=[udt])


async def test_pycomm3_uploads_the_tag_list_reads_and_writes() -> None:
    async with _server() as server:
        host, port = server.endpoint

        def session() -> tuple[dict[str, object], list[object], list[object]]:
            with LogixDriver(f"{host}:{port}/0") as plc:
                tags = {name: plc.tags[name]["data_type_name"] for name in plc.tags}
                written = plc.write(("Program:MainProgram.Setpoint", 70.25), ("Name", "pc3"), ("Boiler.State", 5))
                read = plc.read("Boiler.Temperature", "Temps{4}", "Name", "Program:MainProgram.Setpoint", "Big")
                return tags, [t.error for t in written], [(t.value, t.error) for t in read]

        tags, write_errors, read = await asyncio.to_thread(session)
    assert tags == {"Boiler": "Boiler_UDT", "Temps": "REAL", "Name": "STRING", "Big": "LINT",
                    "Program:MainProgram.Setpoint": "REAL"}  # fmt: skip
    assert write_errors == [None, None, None]
    assert read == [(81.5, None), ([1.0, 2.0, 3.0, 4.0], None), ("pc3", None), (70.25, None), (-(2**40), None)]
    boiler = server.tags["Boiler"].value
    assert isinstance(boiler, dict)
    assert boiler["State"] == 5


async def test_pylogix_lists_tags_with_udt_names_reads_and_writes() -> None:
    async with _server() as server:
        host, port = server.endpoint

        def session() -> tuple[list[tuple[str, str]], list[tuple[object, str]], str]:
            with PLC(host) as comm:
                comm.conn.msg_socket.close()  # pylogix 1.1.6 opens this unsolicited-message socket and never closes it
                comm.Port = port
                listed = comm.GetTagList(True)
                written = comm.Write("Program:MainProgram.Setpoint", 12.5).Status
                read = comm.Read(["Boiler.Temperature", "Temps[2]", "Name", "Program:MainProgram.Setpoint", "Big"])
                return [(t.TagName, t.DataType) for t in listed.Value], [(r.Value, r.Status) for r in read], written

        listed, read, written = await asyncio.to_thread(session)
    assert listed == [("Program:MainProgram", ""), ("Boiler", "Boiler_UDT"), ("Temps", "REAL"),
                      ("Name", "ASCIISTRING82"), ("Big", "LINT"), ("Program:MainProgram.Setpoint", "REAL")]  # fmt: skip
    assert written == "Success"
    assert read == [(81.5, "Success"), (3.0, "Success"), ("hello", "Success"), (12.5, "Success"), (-(2**40), "Success")]
