"""Assets, one module per business group: ingest, clean, features, signals, portfolio, export."""
