"""Shared fixtures: an isolated environment, and the real pipeline over a temporary warehouse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

# Tests never read a developer's .env or reach a real API: fix the environment before any
# tft_pipeline module reads its settings.
for _name in list(os.environ):
    if _name.startswith(("TFT_", "REDDIT_", "praw_")):
        del os.environ[_name]
os.environ["TFT_DATA_SOURCE"] = "sample"
os.environ.pop("DAGSTER_HOME", None)

from dagster import DagsterInstance

from tft_pipeline.definitions import build_definitions
from tft_pipeline.defs.jobs import DAILY_JOB_NAME
from tft_pipeline.defs.run_tags import PARTITION_RANGE_END as ASSET_PARTITION_RANGE_END_TAG
from tft_pipeline.defs.run_tags import PARTITION_RANGE_START as ASSET_PARTITION_RANGE_START_TAG
from tft_pipeline.settings import load_settings
from tft_pipeline.warehouse import Warehouse

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TICKERS = "AAPL,MSFT,NVDA,TSLA,GME,AMC,PLTR,C,V,JPM,XOM,AMD"


@dataclass
class Pipeline:
    """The real Definitions over a throwaway warehouse, and a way to run ranges of sessions."""

    warehouse_path: Path
    instance: DagsterInstance
    # More settings by variable name (e.g. TFT_RISK_MIN_CONFIDENCE="0.25"), as a user sets them.
    overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings = load_settings(
            None,
            **{"TFT_WAREHOUSE_PATH": str(self.warehouse_path), "TFT_TICKERS": SAMPLE_TICKERS, **self.overrides},
        )
        self.defs = build_definitions(self.settings)
        self.warehouse = Warehouse(self.warehouse_path)

    def run(self, first: str, last: str | None = None, **kwargs):
        """Materialize the whole chain for ``first..last`` as ONE run (a single-run backfill)."""
        job = self.defs.resolve_job_def(DAILY_JOB_NAME)
        return job.execute_in_process(
            instance=self.instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last or first},
            **kwargs,
        )

    def table(self, name: str) -> pd.DataFrame:
        return self.warehouse.read_table(name)


@pytest.fixture
def pipeline(tmp_path) -> Iterator[Pipeline]:
    with DagsterInstance.ephemeral() as instance:
        yield Pipeline(tmp_path / "warehouse.duckdb", instance)
