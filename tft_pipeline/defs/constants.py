"""Names and policies shared by the Dagster wiring."""

from __future__ import annotations

from dagster import BackfillPolicy, Backoff, Jitter, RetryPolicy

from tft_pipeline.sources.limits import DAGSTER_SCRAPER_MAX_RETRIES

# Every asset that opens the DuckDB file runs in this pool. Its limit is 1 in the shipped instance
# configs: a DuckDB file takes one writer process at a time, so a backfill and the daily run queue
# step by step instead of failing on the file lock.
WAREHOUSE_POOL = "duckdb_warehouse"

# The price fetch steps (one per ticker batch) run in this pool, outside the warehouse's: its
# slots bound how many ask Yahoo at once, and each gets TFT_PRICE_RPS divided by them, so a
# fan-out never multiplies our request rate. The shipped setup gives it 2 slots
# (`dagster instance concurrency set yahoo_prices 2`); unset, the instance default (1) holds.
YAHOO_POOL = "yahoo_prices"
YAHOO_POOL_SLOTS = 2

# Values handed from one step to another that are not warehouse tables (the price batches): pickled
# files under the instance's storage directory ($DAGSTER_HOME/storage), which every step process
# on this host reads. Several hosts need it on shared storage (docs/deploy.md). Dagster's default
# key: a graph-backed asset's own outputs name it, and a subset run (one table of the price graph
# alone) requires it to exist even though the inner ops store the tables in the warehouse.
HANDOVER_IO_MANAGER_KEY = "io_manager"

# A range of sessions is one run: one call per ticker to the price source, one pass over Reddit.
SINGLE_RUN = BackfillPolicy.single_run()

# The outer net for whole-step failures of the scrapers (inner retries live in tft_pipeline.retry).
# Dagster's exponential backoff has no cap, so the number of retries is what bounds it. Dagster
# waits (2**n - 1) * delay before retry n, ±delay of jitter: 2 retries wait 0-60 s, then 60-120 s.
# The budget lives in tft_pipeline.sources.limits, where the sources state their worst case from it.
SCRAPER_MAX_RETRIES = DAGSTER_SCRAPER_MAX_RETRIES
SCRAPER_RETRY_POLICY = RetryPolicy(
    max_retries=SCRAPER_MAX_RETRIES, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)

INGEST_GROUP = "ingest"
CLEAN_GROUP = "clean"
FEATURES_GROUP = "features"
SIGNALS_GROUP = "signals"
PORTFOLIO_GROUP = "portfolio"
