"""The serial source's pure core: framing, MT-SICS and Sartorius SBI answers, scanners, regex devices, MES events.

The scale answers are the examples of the makers' manuals: MT-SICS ("Response S S 100.00 g: the
current stable weight value is 100.00 g"; S I busy, S + overload, S - underload; ES, ET, EL) and
Sartorius's SBI output format (16 bytes: sign, space, 8 digits with the point, space, 3 of unit,
CR LF; 22 with a 6-byte ID such as "N     " first; H overload, L underload, "Err ##").
"""

from __future__ import annotations

import orjson
import pytest

from bridges.serial.events import EventError, EventMaker
from bridges.serial.framing import Frame, FrameError, make_framer
from bridges.serial.protocols import ParseError, Reading, make_parser, mass
from model.bridges.serial import (
    FixedFraming,
    MtSicsProtocol,
    RegexProtocol,
    SartoriusProtocol,
    ScannerProtocol,
    SerialEvent,
    StxEtxFraming,
    TerminatorFraming,
)

# -- framing --------------------------------------------------------------------------------------


def _frames(out: list[Frame | FrameError]) -> list[tuple[str, int, str]]:
    return [
        ("frame", item.offset, item.data.decode("latin-1"))
        if isinstance(item, Frame)
        else ("error", item.offset, item.reason)
        for item in out
    ]


def test_lines_split_across_reads_keep_their_offsets() -> None:
    framer = make_framer(TerminatorFraming(kind="terminator"))
    out = (
        framer.feed(b"S S      1.000 kg\r", 0.0) + framer.feed(b"\nS D      1.5", 0.0) + framer.feed(b"00 kg\r\n", 0.0)
    )
    assert _frames(out) == [("frame", 0, "S S      1.000 kg"), ("frame", 19, "S D      1.500 kg")]


def test_an_over_long_line_is_refused_once_with_its_offset_and_the_next_line_is_read() -> None:
    framer = make_framer(TerminatorFraming(kind="terminator", max_length=8))
    out = framer.feed(b"ok\r\n" + b"x" * 30, 0.0) + framer.feed(b"y" * 30 + b"\r\nnext\r\n", 0.0)
    assert _frames(out) == [
        ("frame", 0, "ok"),
        ("error", 4, "no terminator within 8 bytes"),
        ("frame", 66, "next"),
    ]


def test_a_line_longer_than_max_but_complete_in_one_read_is_refused() -> None:
    framer = make_framer(TerminatorFraming(kind="terminator", max_length=4, terminator="\r"))
    assert _frames(framer.feed(b"12345\rab\r", 0.0)) == [
        ("error", 0, "frame of 5 bytes is longer than max_length 4"),
        ("frame", 6, "ab"),
    ]


def test_fixed_length_frames_resynchronise_after_a_pause() -> None:
    framer = make_framer(FixedFraming(kind="fixed", length=4, gap_s=0.05))
    out = framer.feed(b"abcdef", 0.0) + framer.feed(b"WXYZ", 1.0) + framer.feed(b"12", 1.01) + framer.feed(b"34", 1.02)
    assert _frames(out) == [
        ("frame", 0, "abcd"),
        ("error", 4, "2 of 4 bytes, then a pause"),
        ("frame", 6, "WXYZ"),
        ("frame", 10, "1234"),
    ]


def test_stx_etx_frames_with_garbage_a_cut_frame_and_block_checks() -> None:
    framer = make_framer(StxEtxFraming(kind="stx_etx", bcc=True))
    good = b"\x0212.5\x03" + bytes([0x31 ^ 0x32 ^ 0x2E ^ 0x35 ^ 0x03])
    bad_bcc = b"\x0299\x03\x00"
    cut = b"\x02abc"
    out = framer.feed(b"\xff\xfe" + good + bad_bcc + cut + good, 0.0)
    assert _frames(out) == [
        ("error", 0, "2 bytes outside STX/ETX: b'\\xff\\xfe'"),
        ("frame", 3, "12.5"),
        ("error", 13, "block check 0x00, expected 0x03"),
        ("error", 14, "STX again before ETX (a frame cut off)"),
        ("frame", 19, "12.5"),
    ]


def test_stx_etx_waits_for_the_check_byte() -> None:
    framer = make_framer(StxEtxFraming(kind="stx_etx", bcc=True))
    assert framer.feed(b"\x02A\x03", 0.0) == []
    assert _frames(framer.feed(bytes([0x41 ^ 0x03]), 0.0)) == [("frame", 1, "A")]


# -- MT-SICS --------------------------------------------------------------------------------------

_KG = make_parser(MtSicsProtocol(kind="mt_sics"))


@pytest.mark.parametrize(
    ("answer", "values", "stable"),
    [
        (b"S S     12.345 kg", {"Weight": 12.345, "Stable": True, "Status": "stable"}, True),
        (b"S S      100.00 g", {"Weight": 0.1, "Stable": True, "Status": "stable"}, True),  # the manual's example
        (b"S D      1.2345 kg", {"Weight": 1.2345, "Stable": False, "Status": "dynamic"}, False),
        (b"S S     -0.005 kg", {"Weight": -0.005, "Stable": True, "Status": "stable"}, True),
        (b"S S     12345 g", {"Weight": 12.345, "Stable": True, "Status": "stable"}, True),
        (b"S S      2.000 lb", {"Weight": 0.90718474, "Stable": True, "Status": "stable"}, True),
        (b"S I", {"Stable": False, "Status": "busy"}, False),
        (b"S +", {"Weight": None, "Stable": False, "Status": "overload"}, False),
        (b"S -", {"Weight": None, "Stable": False, "Status": "underload"}, False),
    ],
)
def test_mt_sics_weight_answers(answer: bytes, values: dict[str, object], stable: bool) -> None:
    reading = _KG.parse(answer)
    assert dict(reading.values) == values
    assert reading.stable is stable
    assert reading.answers == "S"


@pytest.mark.parametrize(
    ("answer", "answers", "refusal", "values"),
    [
        (b"Z A", "Z", "", {}),
        (b"Z I", "Z", "Z I: not zeroed (busy)", {}),
        (b"T S      0.250 kg", "T", "", {"Tare": 0.25}),
        (b"T +", "T", "T +: not tared (overload)", {}),
        (b"ES", "*", "ES: syntax error", {}),
        (b"EL", "*", "EL: logical error", {}),
        (b'I4 A "0123456789"', "I4", "", {}),
    ],
)
def test_mt_sics_command_answers(answer: bytes, answers: str, refusal: str, values: dict[str, object]) -> None:
    reading = _KG.parse(answer)
    assert (reading.answers, reading.refusal, dict(reading.values)) == (answers, refusal, values)


@pytest.mark.parametrize(
    ("answer", "column", "reason"),
    [
        (b"S S     12.3\xff5 kg", 12, "byte 0xff is not printable ASCII"),
        (b"S X     12.345 kg", 2, "weight status 'X' is not S, D, I, + or -"),
        (b"S S     12.3.4 kg", 8, "'12.3.4' is not a weight"),
        (b"S S     12.345 pcs", 14, "unit 'pcs' is not 'kg' nor a mass unit convertible to it"),
        (b"S S     12.345", 3, "a weight answer is 'S S <value> <unit>'"),
        (b"Z Q", 2, "zero status 'Q' is not A, I, + or -"),
    ],
)
def test_mt_sics_garbage_is_refused_naming_the_column(answer: bytes, column: int, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        _KG.parse(answer)
    assert (caught.value.column, caught.value.reason) == (column, reason)


def test_mass_conversion_keeps_decimal_text() -> None:
    assert mass(12345.0, "g", "kg", 0) == 12.345
    assert mass(1.1, "kg", "g", 1) == 1100.0
    assert mass(0.3, "t", "kg", 1) == 300.0


# -- Sartorius SBI --------------------------------------------------------------------------------

_SBI = make_parser(SartoriusProtocol(kind="sartorius", unit="g"))


@pytest.mark.parametrize(
    ("line", "values"),
    [
        (b"+  123.56 g  ", {"Weight": 123.56, "Stable": True, "Status": "stable"}),  # the manual's +123.56 g
        (b"+  123.5[6] g  ", {"Weight": 123.56, "Stable": True, "Status": "stable"}),  # a digit not verified
        (b"-    1255.7 g  ", {"Weight": -1255.7, "Stable": True, "Status": "stable"}),
        (b"N     +  123.56 g  ", {"Weight": 123.56, "Stable": True, "Status": "stable"}),  # 22 bytes with an ID
        (b"+    0.012 kg ", {"Weight": 12.0, "Stable": True, "Status": "stable"}),
        (b"+  123.50      ", {"Weight": 123.5, "Stable": False, "Status": "dynamic"}),  # no unit: not settled
        (b"      H       ", {"Weight": None, "Stable": False, "Status": "overload"}),
        (b"      LL      ", {"Weight": None, "Stable": False, "Status": "underload"}),
    ],
)
def test_sartorius_sbi_lines(line: bytes, values: dict[str, object]) -> None:
    assert dict(_SBI.parse(line).values) == values


def test_sartorius_error_and_garbage() -> None:
    assert _SBI.parse(b"   Err 54    ").refusal == "Sartorius Err 54"
    with pytest.raises(ParseError) as caught:
        _SBI.parse(b"+  12#.5 g  ")
    assert caught.value.column == 5  # the '#'


# -- scanners and regex devices -------------------------------------------------------------------


def test_scanner_prefix_suffix_and_named_groups() -> None:
    parser = make_parser(
        ScannerProtocol(kind="scanner", prefix="]C1", suffix="", pattern=r"01(?P<gtin>\d{14})10(?P<lot>[A-Z0-9]+)")
    )
    reading = parser.parse(b"]C10104012345678901" + b"10LOT42")
    assert dict(reading.values) == {"Code": "0104012345678901" + "10LOT42"}
    assert reading.fields["lot"] == "LOT42"
    assert reading.fields["gtin"] == "04012345678901"
    with pytest.raises(ParseError, match="prefix"):
        parser.parse(b"0104012345678901")
    with pytest.raises(ParseError, match="does not match the pattern") as caught:
        parser.parse(b"]C1XYZ")
    assert caught.value.column == 3


def test_regex_device_groups_typed() -> None:
    parser = make_parser(
        RegexProtocol.model_validate(
            {
                "kind": "regex",
                "pattern": r"T=(?P<t>-?[\d.]+)C RH=(?P<rh>\d+)% ALARM=(?P<alarm>[01])",
                "metrics": [
                    {"group": "t", "name": "Temperature", "unit": "degC"},
                    {"group": "rh", "name": "Humidity", "type": "Int32"},
                    {"group": "alarm", "name": "Alarm", "type": "Boolean"},
                ],
            }
        )
    )
    assert dict(parser.parse(b"T=21.5C RH=45% ALARM=1").values) == {
        "Temperature": 21.5,
        "Humidity": 45,
        "Alarm": True,
    }
    with pytest.raises(ParseError) as caught:
        parser.parse(b"T=21.5C RH=4x% ALARM=1")
    assert caught.value.reason.endswith("does not match the pattern")


# -- MES events -----------------------------------------------------------------------------------


def _weighed(weight: float, stable: bool) -> Reading:
    return Reading({"Weight": weight}, {"weight": weight, "unit": "kg"}, answers="S", stable=stable)


def test_one_lot_per_stable_load() -> None:
    maker = EventMaker(
        connector="pal",
        device="scale",
        events=[
            SerialEvent(
                event="lot_production",
                equipment_path="acme/dallas/packaging/line3/palletizer",
                trigger="stable_load",
                min_load=50.0,
                fields={"lot_id": "PAL-${time}", "quantity": "${weight}", "unit": "${unit}"},
                constants={"product_id": "cola-pallet"},
            )
        ],
    )
    t = 1_764_000_000_000
    made = [
        maker.make(_weighed(w, s), t + i * 1000)
        for i, (w, s) in enumerate(
            [(0.0, True), (420.0, False), (612.4, True), (612.4, True), (3.0, True), (598.0, True)]
        )
    ]
    assert [len(m) for m in made] == [0, 0, 1, 0, 0, 1]  # a load is one lot; the empty scale re-arms
    topic, body = made[2][0].topic, orjson.loads(made[2][0].body)
    assert topic == "acme/dallas/packaging/line3/palletizer/mes/lot_production"
    assert body == {
        "product_id": "cola-pallet", "timestamp_ms": t + 2000, "event_id": f"pal:scale:0:{t + 2000}",
        "source": "pal", "lot_id": "PAL-20251124160002", "quantity": 612.4, "unit": "kg",
    }  # fmt: skip


def test_a_scanned_lot_consumed_and_a_refusal_naming_the_field() -> None:
    event = SerialEvent(
        event="material_consumption",
        equipment_path="acme/dallas/packaging/line3/palletizer",
        fields={"lot_id": "${lot}", "material_id": "${gtin}", "quantity": "${qty}"},
    )
    maker = EventMaker(connector="scan", device="gun", events=[event])
    reading = Reading({"Code": "x"}, {"code": "x", "lot": "L1", "gtin": "0401", "qty": "2"})
    with pytest.raises(EventError) as caught:
        maker.make(Reading({"Code": "x"}, {"code": "x", "lot": "L1", "gtin": "0401", "qty": "-2"}), 1)
    assert str(caught.value).startswith("material_consumption.quantity:")
    (made,) = maker.make(reading, 1)
    assert orjson.loads(made.body)["lot_id"] == "L1"
    with pytest.raises(EventError, match="the frame has no value 'gtin'"):
        maker.make(Reading({"Code": "x"}, {"code": "x", "lot": "L1", "qty": "2"}), 1)
