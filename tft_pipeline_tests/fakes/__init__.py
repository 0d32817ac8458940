"""Fake external services for offline tests (loopback servers real client libraries talk to)."""
