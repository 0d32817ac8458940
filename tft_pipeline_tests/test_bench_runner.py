"""``python -m bench`` (make bench) in the default .venv: a benchmark of an optional extra is
skipped with the command that runs it, not reported as a failure."""

import importlib.util
import json

import pytest

from bench.__main__ import main


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed here")
def test_the_tft_benchmark_is_skipped_without_torch_and_the_run_succeeds(tmp_path, capsys):
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"tft": {"epoch_ratio": 0.2}}))
    assert main(["tft", "--quick", "--output", str(output)]) == 0
    assert "bench tft skipped: needs torch (make bench-tft" in capsys.readouterr().out
    # The figures measured where torch was installed are kept, not overwritten or dropped.
    assert json.loads(output.read_text())["tft"] == {"epoch_ratio": 0.2}
