"""Tag import from a TIA Portal DB source: offsets by the S7 rules for standard DBs, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.s7.device import S7Plc
from bridges.s7.tia import DbSourceError, db_tags, device_tags, parse_db_source
from model.bridges.s7 import S7DbSource
from tests.bridges.s7.servers import bridge, python_server
from uns.errors import ConfigError

SAMPLE = Path(__file__).parent / "data" / "Compressor.db"

EXPECTED = [
    ("Enable", "DB5.DBX0.0", "BOOL"),
    ("Reset", "DB5.DBX0.1", "BOOL"),
    ("State", "DB5.DBW2", "INT"),
    ("Pressure", "DB5.DBD4", "REAL"),
    ("Setpoint", "DB5.DBD8", "REAL"),
    ("Name", "DB5.DBB12", "STRING"),  # 2 + 20 bytes
    ("Stages[1]", "DB5.DBB34", "BYTE"),  # an array starts on an even byte
    ("Stages[2]", "DB5.DBB35", "BYTE"),
    ("Stages[3]", "DB5.DBB36", "BYTE"),
    ("Motor/Running", "DB5.DBX38.0", "BOOL"),  # ... and ends on one: 37 is padding
    ("Motor/Fault", "DB5.DBX38.1", "BOOL"),
    ("Motor/Current", "DB5.DBD40", "REAL"),
    ("Motor/Hours", "DB5.DBD44", "DINT"),
    *((f"Flags[{i}]", f"DB5.DBX{48 + i // 8}.{i % 8}", "BOOL") for i in range(10)),
    ("Stamp", "DB5.DBB50", "DTL"),
    ("Temperatures[0]", "DB5.DBB62", "LREAL"),
    ("Temperatures[1]", "DB5.DBB70", "LREAL"),
    ("Total", "DB5.DBD78", "UDINT"),
    ("Label", "DB5.DBB82", "WSTRING"),
]


def test_a_tia_portal_db_source_gets_s7_offsets() -> None:
    tags = db_tags(S7DbSource(path=SAMPLE, db=5, poll="default"), SAMPLE.read_text())
    assert [(t.name, t.address, t.type) for t in tags] == EXPECTED
    by_name = {t.name: t for t in tags}
    assert (by_name["Name"].length, by_name["Label"].length) == (20, 8)
    assert by_name["State"].description == "UMH state code"
    assert by_name["Motor/Running"].description == "Contactor feedback"
    assert by_name["Enable"].description == "Enable from HMI"


async def test_imported_tags_read_the_plc() -> None:
    db = bytearray(110)
    db[0] = 0b01
    db[4:8] = bytes.fromhex("40f00000")  # 7.5
    db[12:26] = bytes([20, 12]) + b"Compressor 1"
    db[48:50] = bytes([0, 0b10])  # Flags[9]
    async with python_server({"DB5": db}) as port:
        config = bridge(port, [], db_sources=[{"path": str(SAMPLE), "db": 5, "prefix": "DB/"}])
        tags = device_tags(config.devices[0], "devices[0]")
        device = S7Plc(bridge="s7", config=config.devices[0], tags=tags)
        await device.connect()
        try:
            read = await device.read("default")
        finally:
            await device.close()
    values = {s.name: s.value for s in read.samples}
    assert values["DB/Enable"] is True
    assert values["DB/Pressure"] == 7.5
    assert values["DB/Name"] == "Compressor 1"
    assert values["DB/Flags[9]"] is True
    assert values["DB/Flags[8]"] is False
    # an all-zero DTL is no date: that tag alone is bad, its problem names the byte
    assert [(p.address, p.reason) for p in read.problems] == [
        ("DB5.DBB50", "DB5.DBB50: not a DTL at byte 50: year 0 is out of range")
    ]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('DATA_BLOCK "X"\nSTRUCT\n  a : Bool;\n  b : Motor_t;\nEND_STRUCT;\nBEGIN\n', "line 4: type MOTOR_T"),
        ('DATA_BLOCK "X"\nSTRUCT\n  a : "udt";\nEND_STRUCT;', 'line 3: type "udt" is not defined in this file'),
        ('DATA_BLOCK "X"\nSTRUCT\n  a  Bool;\nEND_STRUCT;', "line 3: expected :, found 'Bool'"),
        ('DATA_BLOCK "X"\nSTRUCT\n  a : Array[3..1] of Int;\nEND_STRUCT;', "line 3: array bounds 3..1"),
        ('DATA_BLOCK "X"\nSTRUCT\n  a : Int;\n', "STRUCT without END_STRUCT"),
        (
            'TYPE "t"\nSTRUCT\n a : Int;\nEND_STRUCT;\nEND_TYPE\nDATA_BLOCK "X"\n{ S7_Optimized_Access := \'TRUE\' }\n',
            "line 6: the DB has S7_Optimized_Access := 'TRUE': an optimized DB has no fixed offsets",
        ),
    ],
)
def test_errors_name_the_line(source: str, reason: str) -> None:
    with pytest.raises(DbSourceError, match=reason.replace("[", r"\[").replace(".", r"\.")):
        parse_db_source(source)


def test_a_bad_file_is_a_config_error_naming_file_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "Broken.db"
    broken.write_text('DATA_BLOCK "X"\nSTRUCT\n  a : Quux;\nEND_STRUCT;\n')
    config = bridge(102, [], db_sources=[{"path": str(broken), "db": 1}])
    with pytest.raises(ConfigError) as raised:
        device_tags(config.devices[0], "devices[0]")
    assert str(raised.value) == f"{broken}: devices[0].db_sources[0]: line 3: type QUUX is not supported"
