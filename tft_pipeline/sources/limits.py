"""Retry budgets of the scraping steps shared by the pure sources and the Dagster layer (no Dagster).

A scraper step's Dagster ``RetryPolicy`` re-runs the whole step; inside it every logical request is
already retried by prawcore and by ``tft_pipeline.retry``. Keeping the step budget here lets the
sources state the worst case of all three layers together (see ``reddit_live``).
"""

from __future__ import annotations

# The Dagster layer builds ``RetryPolicy(max_retries=DAGSTER_SCRAPER_MAX_RETRIES)`` for scraper steps.
DAGSTER_SCRAPER_MAX_RETRIES = 2
DAGSTER_SCRAPER_ATTEMPTS = DAGSTER_SCRAPER_MAX_RETRIES + 1
