"""uns.normalise's Template JSON: its keys are the ones ``TEMPLATE_INSTANCE_KEYS`` names (the host merges by them)."""

from __future__ import annotations

from uns.normalise import TEMPLATE_INSTANCE_KEYS, json_value
from uns.sparkplug import DataType, Metric, Template, TemplateParameter


def test_a_template_instance_s_json_has_exactly_the_keys_the_constant_names() -> None:
    full = Template(
        version="1.2",
        template_ref="Motor",
        metrics=(Metric(name="Speed", datatype=DataType.Double, value=5.0),),
        parameters=(TemplateParameter(name="Poles", type=DataType.Int32, value=4),),
    )
    bare = Template(metrics=(Metric(name="Speed", datatype=DataType.Double, value=5.0),))
    written = json_value(full, DataType.Template)
    assert written == {
        "metrics": {"Speed": 5.0},
        "template_ref": "Motor",
        "version": "1.2",
        "parameters": {"Poles": 4},
    }
    assert isinstance(written, dict)
    assert written.keys() == TEMPLATE_INSTANCE_KEYS
    assert json_value(bare, DataType.Template) == {"metrics": {"Speed": 5.0}}
