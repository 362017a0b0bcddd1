"""The S7 address parser: every notation, and errors that name the address and what is wrong."""

from __future__ import annotations

import pytest

from model.bridges.s7 import S7BridgeConfig
from model.bridges.s7_address import S7AddressError, S7Area, parse_address


@pytest.mark.parametrize(
    ("text", "type_name", "area", "db", "start", "bit", "s7type", "size"),
    [
        ("DB1.DBX0.3", None, S7Area.DB, 1, 0, 3, "BOOL", 1),
        ("db12.dbb7", None, S7Area.DB, 12, 7, None, "BYTE", 1),
        ("DB1.DBW2", None, S7Area.DB, 1, 2, None, "WORD", 2),
        ("DB1.DBW2", "INT", S7Area.DB, 1, 2, None, "INT", 2),
        ("DB1.DBD4", None, S7Area.DB, 1, 4, None, "DWORD", 4),
        ("DB1.DBD4:REAL", None, S7Area.DB, 1, 4, None, "REAL", 4),
        ("DB1.DBB8", "LREAL", S7Area.DB, 1, 8, None, "LREAL", 8),
        ("DB1.DBB20", "STRING", S7Area.DB, 1, 20, None, "STRING", 256),
        ("DB1.DBB20", "DTL", S7Area.DB, 1, 20, None, "DTL", 12),
        ("M10.1", None, S7Area.MK, 0, 10, 1, "BOOL", 1),
        ("MX10.1", None, S7Area.MK, 0, 10, 1, "BOOL", 1),
        ("MW20", None, S7Area.MK, 0, 20, None, "WORD", 2),
        ("MD30:DINT", None, S7Area.MK, 0, 30, None, "DINT", 4),
        ("I0.0", None, S7Area.PE, 0, 0, 0, "BOOL", 1),
        ("E1.7", None, S7Area.PE, 0, 1, 7, "BOOL", 1),
        ("IW64", None, S7Area.PE, 0, 64, None, "WORD", 2),
        ("QB1", None, S7Area.PA, 0, 1, None, "BYTE", 1),
        ("A0.5", None, S7Area.PA, 0, 0, 5, "BOOL", 1),
        ("V10.3", None, S7Area.DB, 1, 10, 3, "BOOL", 1),
        ("VW20", None, S7Area.DB, 1, 20, None, "WORD", 2),
        ("T5", None, S7Area.TM, 0, 5, None, "S5TIME", 2),
        ("C3", None, S7Area.CT, 0, 3, None, "COUNTER", 2),
        ("Z3", None, S7Area.CT, 0, 3, None, "COUNTER", 2),
    ],
)
def test_notations(
    text: str, type_name: str | None, area: S7Area, db: int, start: int, bit: int | None, s7type: str, size: int
) -> None:
    address = parse_address(text, type_name)
    assert (address.area, address.db, address.start, address.bit, address.type.name, address.size) == (
        area,
        db,
        start,
        bit,
        s7type,
        size,
    )
    assert str(address) == text


@pytest.mark.parametrize(
    ("text", "type_name", "length", "reason"),
    [
        ("DB1.DBX0.8", None, None, "bit must be 0..7 (got 8)"),
        ("DB1.DBX0", None, None, "a bit address needs .bit"),
        ("DB1.DBW2.1", None, None, "width W takes no bit"),
        ("DB0.DBW2", None, None, "DB number must be 1..65535"),
        ("M10", None, None, "give a width (MB, MW, MD) or a bit"),
        ("DB1.DBW2", "REAL", None, "type REAL needs a double word (D) address, not width W"),
        ("DB1.DBD2", "BOOL", None, "type BOOL needs a bit (.n) address, not width D"),
        ("DB1.DBD2:REAL", "DINT", None, "the suffix says REAL but the tag's type is DINT"),
        ("DB1.DBB2:FLOAT", None, None, "unknown type FLOAT"),
        ("DB1.DBB0", "STRING", 300, "STRING length must be 1..254 (got 300)"),
        ("DB1.DBW0", "INT", 4, "length applies to STRING and WSTRING, not INT"),
        ("DB1.DBB65534", "DTL", None, "is past the area's end"),
        ("DB1,REAL4", None, None, "not an S7 address"),
        ("%MW10", None, None, "not an S7 address"),
    ],
)
def test_errors_name_the_address_and_the_problem(
    text: str, type_name: str | None, length: int | None, reason: str
) -> None:
    with pytest.raises(S7AddressError) as raised:
        parse_address(text, type_name, length)
    assert reason in str(raised.value)
    assert repr(text) in str(raised.value)


def test_config_errors_name_the_tag_field_and_address() -> None:
    spec = {"id": "plc", "tags": [{"name": "ok", "address": "MW0"}, {"name": "bad", "address": "DB1.DBX0.9"}]}
    with pytest.raises(ValueError, match=r"tags\[1\] \(bad\)\.address: S7 address 'DB1.DBX0.9': bit must be 0..7"):
        S7BridgeConfig.model_validate({"name": "s7", "edge": {"group": "g"}, "devices": [spec]})


def test_a_logo_has_only_v_memory() -> None:
    spec = {"id": "logo", "cpu": "LOGO", "tags": [{"name": "x", "address": "DB2.DBW0"}]}
    with pytest.raises(ValueError, match="a LOGO! has only V memory"):
        S7BridgeConfig.model_validate({"name": "s7", "edge": {"group": "g"}, "devices": [spec]})
