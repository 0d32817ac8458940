"""Benchmarks of tft_pipeline: `make bench` runs them and writes bench/results.json."""
