"""The ``model`` package names every model, and importing one module does not import the others."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import model


def test_every_name_of_the_package_resolves_to_its_module() -> None:
    for name in model.__all__:
        assert getattr(model, name) is getattr(importlib.import_module(model._HOMES[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = model.Nothing


def test_the_envelope_alone_does_not_build_the_settings_models() -> None:
    # a host worker or a bridge process reads envelopes: model.config's settings cost ~0.5 s to import
    code = "import sys, model.envelope, model.equipment; print('model.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
