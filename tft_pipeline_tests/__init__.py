"""Tests of tft_pipeline."""
