"""Startup security warnings of the Dagster processes (webserver, daemon, code server, run workers)."""

from __future__ import annotations

import logging
from pathlib import Path

from tft_pipeline.settings import PROJECT_ROOT, env_file_permissions_warning

logger = logging.getLogger("tft_pipeline.security")
_warned: set[Path] = set()


def warn_about_env_file_permissions(env_file: Path = PROJECT_ROOT / ".env") -> str | None:
    """Log (once per process and file) that ``.env`` is readable by other users; return the warning."""
    warning = env_file_permissions_warning(env_file)
    if warning and env_file not in _warned:
        _warned.add(env_file)
        logger.warning(warning)
    return warning
