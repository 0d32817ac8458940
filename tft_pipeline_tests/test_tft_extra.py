"""TFT_SIGNAL_MODEL without the optional extra: a startup error that names the install command, and
a default install that never imports torch. Runs in the default venv (no torch), in `make test`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import tft_pipeline.settings as settings_module
from tft_pipeline.settings import SettingsError, SignalModelName, load_settings


def test_the_baseline_is_the_default_model():
    assert load_settings(None).signal_model is SignalModelName.BASELINE


def test_asking_for_the_tft_without_its_extra_names_the_install_command(monkeypatch):
    monkeypatch.setattr(settings_module, "tft_extra_missing", lambda: "torch")
    with pytest.raises(SettingsError) as error:
        load_settings(None, TFT_SIGNAL_MODEL="tft")
    message = str(error.value)
    assert "TFT_SIGNAL_MODEL='tft'" in message
    assert "make install-tft" in message and "uv sync --extra tft" in message
    assert "torch is not installed" in message


def test_the_extra_check_looks_for_torch_itself():
    installed = importlib.util.find_spec("torch") is not None
    assert (settings_module.tft_extra_missing() is None) is installed
    if not installed:  # the default venv: the real check refuses the TFT at startup
        with pytest.raises(SettingsError, match="make install-tft"):
            load_settings(None, TFT_SIGNAL_MODEL="tft")


def test_an_unknown_model_is_refused():
    with pytest.raises(SettingsError, match="allowed values are 'baseline' or 'tft'"):
        load_settings(None, TFT_SIGNAL_MODEL="lstm")


def test_the_default_definitions_do_not_import_torch():
    code = (
        "import sys; import tft_pipeline.definitions; "
        "print('torch' in sys.modules, 'tft_pipeline.model.tft' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert shown.stdout.split() == ["False", "False"]
