"""tft_pipeline: the data engine of the TFT Trader."""
