"""A sample's quality in Sparkplug: the ``Quality`` metric property's codes, written and read (pure).

Both sides of the wire use it: edge nodes write a quality as Sparkplug 3.0's three codes (``quality_props``),
the host reads a third party's code OPC-style (``quality_of_code``), and an edge node reads the OPC-style codes
of records buffered before the three codes the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from model.envelope import Quality
from uns.sparkplug.datatypes import DataType
from uns.sparkplug.payload_types import PropertySet, PropertyValue

__all__ = ["QUALITY_CODES", "QUALITY_NAME", "QUALITY_PROPERTY", "quality_of_code", "quality_props"]

QUALITY_PROPERTY = "Quality"
"""The Int32 metric property Ignition and other hosts carry a quality code in."""
QUALITY_CODES: Mapping[Quality, int] = {Quality.good: 192, Quality.uncertain: 0, Quality.bad: 0, Quality.stale: 500}
"""A sample's quality as one of Sparkplug 3.0's three codes: 0 BAD, 192 GOOD, 500 STALE
(tck-id-payloads-propertyset-quality-value-value). Uncertain has no code: it goes as BAD (not established
good, for any host) with ``QUALITY_NAME`` saying ``uncertain``, which ``quality_of_code`` reads back."""
QUALITY_NAME = "QualityName"
"""The String metric property that names a quality Sparkplug's codes cannot say (only ``uncertain``)."""

_STALE_CODE = QUALITY_CODES[Quality.stale]
_GOOD_CODE = QUALITY_CODES[Quality.good]
_OPC_UNCERTAIN_CODE = 64  # OPC-style codes 64..191 are uncertain


def quality_props(quality: Quality) -> PropertySet:
    """The ``Quality`` property (and ``QUALITY_NAME`` for uncertain) of a sample or a birth's metric."""
    props = {QUALITY_PROPERTY: PropertyValue(type=DataType.Int32, value=QUALITY_CODES[quality])}
    if quality is Quality.uncertain:
        props[QUALITY_NAME] = PropertyValue(type=DataType.String, value=quality.value)
    return PropertySet(props)


def quality_of_code(code: int, props: PropertySet | None = None) -> Quality:
    """The quality a ``Quality`` code says; ``props``: the metric's properties, for its ``QUALITY_NAME``.

    Sparkplug's 500 is stale; other codes read OPC-style (192 and up good, 64..191 uncertain, below bad), and a
    BAD code named ``uncertain`` (the hub's edge nodes) is uncertain. The name is looked up for a BAD code only.
    """
    if code == _STALE_CODE:
        return Quality.stale
    if code >= _GOOD_CODE:
        return Quality.good
    if code >= _OPC_UNCERTAIN_CODE:
        return Quality.uncertain
    name = None if props is None else props.get(QUALITY_NAME)
    return Quality.uncertain if name is not None and name.value == Quality.uncertain.value else Quality.bad
