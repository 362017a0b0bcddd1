"""The IPSO and OMA objects the LwM2M server knows by number: names, resource types, units, operations.

From the OMA LwM2M registry (https://technical.openmobilealliance.org/OMNA/LwM2M/LwM2MRegistry.html,
objects 3, 3200-3203, 3300-3331). A resource the table does not know can still be configured: its
name, datatype and unit then come from the config.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from uns.sparkplug import DataType

__all__ = ["OBJECTS", "IpsoObject", "IpsoResource", "Path", "parse_path", "resource_info"]

_TYPES = {
    "F": DataType.Double,
    "I": DataType.Int64,
    "B": DataType.Boolean,
    "S": DataType.String,
    "T": DataType.DateTime,
}


@dataclasses.dataclass(frozen=True, slots=True)
class IpsoResource:
    """One resource of an object: ``ops`` is R, W, RW or E (execute)."""

    name: str
    datatype: DataType | None
    """None for an executable resource (it has no value)."""
    ops: str
    unit: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class IpsoObject:
    """One object of the registry."""

    name: str
    resources: Mapping[int, IpsoResource]


def _res(spec: str) -> dict[int, IpsoResource]:
    """``"5700 SensorValue F R unit; ..."``: id, name, type letter (- = none), ops, optional unit."""
    out = {}
    for item in spec.split(";"):
        parts = item.split()
        rid, name, kind, ops = int(parts[0]), parts[1], parts[2], parts[3]
        out[rid] = IpsoResource(name, _TYPES.get(kind), ops, parts[4] if len(parts) > 4 else None)
    return out


_SENSOR = (
    "5601 MinMeasuredValue F R {u}; 5602 MaxMeasuredValue F R {u}; 5603 MinRangeValue F R {u}; "
    "5604 MaxRangeValue F R {u}; 5605 ResetMinAndMaxMeasuredValues - E; 5700 SensorValue F R {u}; "
    "5701 SensorUnits S R; 5750 ApplicationType S RW"
)


def _sensor(unit: str) -> dict[int, IpsoResource]:
    return _res(_SENSOR.replace(" {u}", f" {unit}" if unit else ""))


OBJECTS: Mapping[int, IpsoObject] = {
    3: IpsoObject(
        "Device",
        _res(
            "0 Manufacturer S R; 1 ModelNumber S R; 2 SerialNumber S R; 3 FirmwareVersion S R; 4 Reboot - E; "
            "5 FactoryReset - E; 7 PowerSourceVoltage I R mV; 9 BatteryLevel I R %; 10 MemoryFree I R KiB; "
            "13 CurrentTime T RW; 14 UTCOffset S RW; 15 Timezone S RW; 17 DeviceType S R; 20 BatteryStatus I R"
        ),
    ),
    3200: IpsoObject(
        "DigitalInput",
        _res(
            "5500 DigitalInputState B R; 5501 DigitalInputCounter I R; 5502 DigitalInputPolarity B RW; "
            "5503 DigitalInputDebounce I RW ms; 5505 DigitalInputCounterReset - E; 5750 ApplicationType S RW"
        ),
    ),
    3201: IpsoObject("DigitalOutput", _res("5550 DigitalOutputState B RW; 5551 DigitalOutputPolarity B RW")),
    3202: IpsoObject(
        "AnalogInput",
        _res(
            "5600 AnalogInputCurrentValue F R; 5601 MinMeasuredValue F R; 5602 MaxMeasuredValue F R; "
            "5603 MinRangeValue F R; 5604 MaxRangeValue F R; 5605 ResetMinAndMaxMeasuredValues - E; "
            "5750 ApplicationType S RW"
        ),
    ),
    3203: IpsoObject("AnalogOutput", _res("5650 AnalogOutputCurrentValue F RW; 5750 ApplicationType S RW")),
    3300: IpsoObject("GenericSensor", _sensor("")),
    3301: IpsoObject("Illuminance", _sensor("lx")),
    3303: IpsoObject("Temperature", _sensor("Cel")),
    3304: IpsoObject("Humidity", _sensor("%RH")),
    3315: IpsoObject("Barometer", _sensor("Pa")),
    3316: IpsoObject("Voltage", _sensor("V")),
    3317: IpsoObject("Current", _sensor("A")),
    3323: IpsoObject("Pressure", _sensor("Pa")),
    3328: IpsoObject("Power", _sensor("W")),
    3331: IpsoObject(
        "Energy",
        _res("5805 CumulativeActivePower F R Wh; 5701 SensorUnits S R; 5750 ApplicationType S RW; 5822 Reset - E"),
    ),
}
"""Objects by id."""

Path = tuple[int, ...]
"""An LwM2M path: (object,), (object, instance), (object, instance, resource) or with a resource instance."""

_PATH = re.compile(r"^/?(\d{1,5})(?:/(\d{1,5}))?(?:/(\d{1,5}))?(?:/(\d{1,5}))?/?$")


def parse_path(text: str) -> Path:
    """``"3303/0/5700"`` or ``"/3303/0/5700"`` as (3303, 0, 5700); ValueError naming the text if it is not one."""
    match = _PATH.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an LwM2M path (object[/instance[/resource[/instance]]], numbers)")
    parts = tuple(int(p) for p in match.groups() if p is not None)
    if any(p > 65535 for p in parts):
        raise ValueError(f"{text!r}: ids go up to 65535")
    return parts


def resource_info(path: Path) -> tuple[str, IpsoResource | None]:
    """The default metric name of a resource path (``Temperature/0/SensorValue``) and what the registry knows."""
    obj = OBJECTS.get(path[0])
    res = obj.resources.get(path[2]) if obj is not None and len(path) > 2 else None
    names = [obj.name if obj is not None else str(path[0]), *(str(p) for p in path[1:2])]
    if len(path) > 2:
        names.append(res.name if res is not None else str(path[2]))
    names += [str(p) for p in path[3:]]
    return "/".join(names), res
