"""The one typed settings object of tft_pipeline, read once from the environment and ``.env``."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from tft_pipeline.portfolio import (
    DEFAULT_COMMISSION_BPS,
    DEFAULT_SLIPPAGE_BPS,
    FILL_CLOSE,
    FILL_NEXT_OPEN,
)
from tft_pipeline.risk import ENV_PREFIX as RISK_ENV_PREFIX
from tft_pipeline.risk import RiskLimits
from tft_pipeline.trading_calendar import CALENDAR_FIRST_DAY, CALENDAR_LAST_DAY
from tft_pipeline.universe import (
    DEFAULT_UNIVERSE,
    InvalidTickerError,
    Membership,
    parse_tickers,
    read_universe_file,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DataSource(str, Enum):
    """Where raw data comes from."""

    SAMPLE = "sample"
    LIVE = "live"


class FillAt(str, Enum):
    """When the paper portfolio fills the orders decided at a session's close."""

    NEXT_OPEN = FILL_NEXT_OPEN  # at the next session's open (default)
    CLOSE = FILL_CLOSE  # market-on-close, at the signal's entry (the session's close)


class ExecutorKind(str, Enum):
    """Which Dagster executor runs the steps of a run."""

    IN_PROCESS = "in_process"  # every step in the run's own process, one after another (default)
    CELERY = "celery"  # dagster-celery: each step a Celery task on the workers (extra `celery`)


class SignalModelName(str, Enum):
    """Which walk-forward model scores the sessions (TFT_SIGNAL_MODEL)."""

    BASELINE = "baseline"  # the logistic baseline (tft_pipeline.model.baseline)
    TFT = "tft"  # the Temporal Fusion Transformer (tft_pipeline.model.tft; the optional extra)


# What installs the optional deep-learning stack; the startup error names both.
TFT_INSTALL_HINT = (
    "run `make install-tft` (torch in .venv-tft, which make run/dev/report then use) "
    "or `uv sync --extra tft` (into the current venv)"
)


def tft_extra_missing() -> str | None:
    """None when the TFT's extra (torch) can be imported here, else what is missing."""
    import importlib.util

    return None if importlib.util.find_spec("torch") is not None else "torch"


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the variable and what is allowed."""


# Settings.risk_limits is filled from every TFT_RISK_* variable by _RiskVariables; an alias no real
# variable has keeps pydantic-settings' own sources off the field.
RISK_LIMITS_ALIAS = "TFT_RISK_*"


class _RiskVariables(PydanticBaseSettingsSource):
    """All ``TFT_RISK_*`` variables of ``.env``, the environment and the overrides (later wins).

    pydantic-settings reads only the variables of declared fields, so a misspelt one would vanish
    silently; handing ``RiskLimits.from_env`` all of them lets it name the typo.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], layers: tuple[Mapping[str, Any], ...]
    ) -> None:
        super().__init__(settings_cls)
        self._layers = layers  # lowest priority first

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # required by the base class; __call__ does the work

    def __call__(self) -> dict[str, Any]:
        variables: dict[str, str] = {}
        for layer in self._layers:
            for name, value in layer.items():
                # Upper-cased because pydantic-settings matches variable names case-insensitively.
                if name.upper().startswith(RISK_ENV_PREFIX) and value is not None:
                    variables[name.upper()] = str(value)
        return {RISK_LIMITS_ALIAS: variables}


class Settings(BaseSettings):
    """tft_pipeline's configuration (``TFT_*``, ``REDDIT_*``), from the environment and ``.env``.

    Every variable is documented in ``.env.example``. A wrong value fails at startup with a message
    that names the variable and what it allows (``SettingsError``), never later inside a run.
    ``risk_limits`` is built from all ``TFT_RISK_*`` variables (see ``RiskLimits.from_env``), so an
    unknown one is an error too.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_source: DataSource = Field(default=DataSource.SAMPLE, alias="TFT_DATA_SOURCE")
    warehouse_path: Path = Field(default=Path("data/warehouse.duckdb"), alias="TFT_WAREHOUSE_PATH")
    tickers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_UNIVERSE, alias="TFT_TICKERS"
    )
    # A CSV of ticker, first_session, last_session: the universe with each ticker's sessions
    # (replaces TFT_TICKERS; see read_universe_file). ``universe`` holds what it says.
    universe_file: Path | None = Field(default=None, alias="TFT_UNIVERSE_FILE")
    _universe: tuple[Membership, ...] = PrivateAttr(default=())
    subreddits: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("wallstreetbets", "stocks", "investing"), alias="TFT_SUBREDDITS"
    )
    start_date: dt.date = Field(default=dt.date(2024, 1, 2), alias="TFT_START_DATE")
    sample_seed: int = Field(default=20240102, alias="TFT_SAMPLE_SEED")
    sample_scale: float = Field(default=1.0, gt=0.0, le=1000.0, alias="TFT_SAMPLE_SCALE")

    reddit_client_id: SecretStr | None = Field(default=None, alias="REDDIT_CLIENT_ID")
    reddit_client_secret: SecretStr | None = Field(default=None, alias="REDDIT_CLIENT_SECRET")
    reddit_user_agent: str | None = Field(default=None, alias="REDDIT_USER_AGENT")
    reddit_username: str | None = Field(default=None, alias="REDDIT_USERNAME")
    reddit_password: SecretStr | None = Field(default=None, alias="REDDIT_PASSWORD")
    # None: praw's own configuration (praw.ini, else Reddit's endpoints) decides.
    reddit_oauth_url: str | None = Field(default=None, alias="REDDIT_OAUTH_URL")
    reddit_url: str | None = Field(default=None, alias="REDDIT_URL")
    reddit_top_posts_for_comments: int = Field(default=25, ge=0, alias="TFT_REDDIT_TOP_POSTS")
    reddit_requests_per_second: float = Field(default=1.0, gt=0.0, alias="TFT_REDDIT_RPS")
    # Expansions of "more comments" stubs per session (one request each, up to 100 comments each).
    reddit_more_comments_budget: int = Field(
        default=100, ge=0, le=10_000, alias="TFT_REDDIT_MORE_COMMENTS_BUDGET"
    )
    # How far past the range start /new is walked, for posts Reddit listed late.
    reddit_new_listing_margin_hours: float = Field(
        default=24.0, ge=0.0, le=24.0 * 14, alias="TFT_REDDIT_NEW_MARGIN_HOURS"
    )
    price_requests_per_second: float = Field(default=2.0, gt=0.0, alias="TFT_PRICE_RPS")
    price_max_failed_share: float = Field(
        default=0.2, ge=0.0, le=1.0, alias="TFT_PRICE_MAX_FAILED_SHARE"
    )
    # Tickers per price fetch step: a larger universe is fetched in several steps (batches) that
    # Celery workers run at once, bounded by the yahoo_prices pool (docs/deploy.md). Sample or live.
    price_batch_tickers: int = Field(default=100, ge=1, le=100_000, alias="TFT_PRICE_BATCH_TICKERS")

    failure_webhook_url: str | None = Field(default=None, alias="TFT_FAILURE_WEBHOOK_URL")

    # The executor of every job; celery needs the extra `celery` and workers (docs/deploy.md).
    executor: ExecutorKind = Field(default=ExecutorKind.IN_PROCESS, alias="TFT_EXECUTOR")
    # Celery's broker and result backend (redis://[:password@]host:port/db); secrets, as URLs may
    # hold a password: never logged or shown.
    celery_broker: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"), alias="TFT_CELERY_BROKER"
    )
    celery_backend: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"), alias="TFT_CELERY_BACKEND"
    )
    # The Celery queue the steps go to; workers listen on it (-Q). One per deployment sharing a broker.
    celery_queue: str = Field(
        default="dagster", pattern=r"^[A-Za-z0-9_.-]{1,64}$", alias="TFT_CELERY_QUEUE"
    )

    initial_equity: float = Field(
        default=100_000.0, gt=0.0, allow_inf_nan=False, alias="TFT_INITIAL_EQUITY"
    )
    # Per side, in basis points of the traded value (defaults: tft_pipeline.portfolio).
    commission_bps: float = Field(
        default=DEFAULT_COMMISSION_BPS, ge=0.0, lt=10_000.0, allow_inf_nan=False,
        alias="TFT_COMMISSION_BPS",
    )
    slippage_bps: float = Field(
        default=DEFAULT_SLIPPAGE_BPS, ge=0.0, lt=10_000.0, allow_inf_nan=False,
        alias="TFT_SLIPPAGE_BPS",
    )
    # next_open: orders decided at a session's close fill at the next open; close: at that close.
    fill_at: FillAt = Field(default=FillAt.NEXT_OPEN, alias="TFT_FILL_AT")
    # baseline: the logistic baseline; tft: the Temporal Fusion Transformer (the `tft` extra).
    signal_model: SignalModelName = Field(
        default=SignalModelName.BASELINE, alias="TFT_SIGNAL_MODEL"
    )
    risk_limits: RiskLimits = Field(default_factory=RiskLimits, alias=RISK_LIMITS_ALIAS)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        layers = (dotenv_settings.env_vars, env_settings.env_vars, init_settings.init_kwargs)
        risk_variables = _RiskVariables(settings_cls, layers)
        return init_settings, risk_variables, env_settings, dotenv_settings, file_secret_settings

    @field_validator("risk_limits", mode="before")
    @classmethod
    def _risk_limits_from_variables(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        # A mapping by field name would otherwise be skipped by from_env, not applied.
        not_variables = sorted(
            str(name) for name in value if not str(name).startswith(RISK_ENV_PREFIX)
        )
        if not_variables:
            raise ValueError(
                f"risk overrides are TFT_RISK_* variables, e.g. TFT_RISK_MIN_CONFIDENCE; "
                f"got {', '.join(not_variables)}"
            )
        return RiskLimits.from_env(value)

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_text(cls, value: Any) -> Any:
        return value.strip().lower().replace("-", "_") if isinstance(value, str) else value

    @field_validator("celery_broker", "celery_backend")
    @classmethod
    def _celery_url(cls, value: SecretStr) -> SecretStr:
        scheme = value.get_secret_value().partition("://")[0]
        if scheme not in ("redis", "rediss", "amqp", "amqps", "pyamqp", "sentinel"):
            raise ValueError(
                "expected a URL such as redis://127.0.0.1:6379/0 (redis, rediss, amqp, pyamqp, "
                "sentinel)"
            )
        return value

    @model_validator(mode="after")
    def _celery_installed(self) -> Settings:
        if self.executor is ExecutorKind.CELERY:
            import importlib.util

            if importlib.util.find_spec("dagster_celery") is None:
                raise ValueError(
                    "TFT_EXECUTOR=celery needs dagster-celery: `uv sync --extra celery` "
                    "(make install-dev has it)"
                )
        return self

    @field_validator("fill_at", mode="before")
    @classmethod
    def _fill_at_text(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("signal_model", mode="before")
    @classmethod
    def _signal_model_text(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("signal_model")
    @classmethod
    def _tft_needs_its_extra(cls, value: SignalModelName) -> SignalModelName:
        missing = tft_extra_missing() if value is SignalModelName.TFT else None
        if missing:
            raise ValueError(
                f"the Temporal Fusion Transformer needs the optional extra `tft` ({missing} is not "
                f"installed in this environment): {TFT_INSTALL_HINT}; or set "
                "TFT_SIGNAL_MODEL=baseline"
            )
        return value

    @field_validator("tickers", mode="before")
    @classmethod
    def _parse_tickers(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return parse_tickers(value, base_dir=PROJECT_ROOT)
        return tuple(value)

    @field_validator("subreddits", mode="before")
    @classmethod
    def _parse_subreddits(cls, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        names = tuple(item.strip().removeprefix("r/") for item in items if item.strip())
        bad = [name for name in names if not name.replace("_", "").isalnum() or len(name) > 21]
        if bad or not names:
            raise ValueError(
                f"subreddit names are 1-21 letters, digits or underscores, comma-separated; got {value!r}"
            )
        return names

    @field_validator("start_date")
    @classmethod
    def _start_in_calendar(cls, value: dt.date) -> dt.date:
        if not (CALENDAR_FIRST_DAY.date() <= value <= CALENDAR_LAST_DAY.date()):
            raise ValueError(
                f"must lie between {CALENDAR_FIRST_DAY.date()} and {CALENDAR_LAST_DAY.date()}"
            )
        return value

    @model_validator(mode="after")
    def _universe_from_file(self) -> Settings:
        if self.universe_file is None:
            self._universe = tuple(Membership(ticker) for ticker in self.tickers)
            return self
        if "tickers" in self.model_fields_set:
            raise ValueError(
                "TFT_TICKERS and TFT_UNIVERSE_FILE are both set: the universe file lists the "
                "tickers (with their sessions); unset one of them"
            )
        path = self.universe_file.expanduser()
        path = path if path.is_absolute() else PROJECT_ROOT / path
        try:
            self._universe = read_universe_file(path)
        except InvalidTickerError as error:
            raise ValueError(f"TFT_UNIVERSE_FILE: {error}") from None
        self.tickers = tuple(dict.fromkeys(member.ticker for member in self.universe))
        return self

    @property
    def universe(self) -> tuple[Membership, ...]:
        """Every ticker with the sessions it belongs to (open-ended unless a universe file says)."""
        return self._universe

    def universe_ranges(self) -> dict[str, list[tuple[str | None, str | None]]]:
        """Each ticker with a bounded membership: its (first, last) session pairs, ISO dates."""
        ranges: dict[str, list[tuple[str | None, str | None]]] = {}
        bounded = {m.ticker for m in self.universe if m.first_session or m.last_session}
        for member in self.universe:
            if member.ticker in bounded:
                ranges.setdefault(member.ticker, []).append(
                    (
                        member.first_session.isoformat() if member.first_session else None,
                        member.last_session.isoformat() if member.last_session else None,
                    )
                )
        return ranges

    @model_validator(mode="after")
    def _live_needs_credentials(self) -> Settings:
        if self.data_source is DataSource.LIVE:
            missing = [
                name
                for name, value in (
                    ("REDDIT_CLIENT_ID", self.reddit_client_id),
                    ("REDDIT_CLIENT_SECRET", self.reddit_client_secret),
                    ("REDDIT_USER_AGENT", self.reddit_user_agent),
                )
                if value is None or (
                    not (value.get_secret_value() if isinstance(value, SecretStr) else value).strip()
                )
            ]
            if missing:
                raise ValueError(
                    f"TFT_DATA_SOURCE=live needs {', '.join(missing)} (see docs/credentials.md)"
                )
        return self

    def resolved_warehouse_path(self) -> Path:
        """The warehouse path, relative paths taken from the project root."""
        path = self.warehouse_path.expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        variable = ".".join(str(part) for part in item["loc"])
        given = item.get("input")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "enum":
            message = f"allowed values are {item['ctx']['expected']}"
        # Celery URLs may carry a password (redis://:password@host): never echoed either.
        secret = any(word in variable for word in ("SECRET", "PASSWORD", "CELERY_"))
        shown = "" if secret or isinstance(given, dict) or given is None else f"={given!r}"
        if item["type"].startswith("date"):
            message += " (expected a date such as 2024-01-02)"
        # The risk limits' messages name their TFT_RISK_* variables themselves.
        named = variable and variable != RISK_LIMITS_ALIAS
        lines.append(f"{variable}{shown}: {message}" if named else message)
    return "invalid configuration:\n  " + "\n  ".join(lines)


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read the settings once; raise ``SettingsError`` naming each wrong variable.

    ``env_file`` is the ``.env`` to read (None: none; a relative path missing from the working
    directory is taken from the project root). ``overrides`` are variables by name, the risk
    limits' included, and win over the environment, which wins over ``env_file``::

        load_settings(None, TFT_WAREHOUSE_PATH="/tmp/w.duckdb", TFT_RISK_MIN_CONFIDENCE="0.5")
    """
    env_path = Path(env_file) if env_file is not None else None
    if env_path is not None and not env_path.is_absolute() and not env_path.exists():
        env_path = PROJECT_ROOT / env_path
    try:
        return Settings(_env_file=env_path, **overrides)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    except InvalidTickerError as error:  # raised inside a validator but not wrapped by pydantic
        raise SettingsError(f"invalid configuration:\n  TFT_TICKERS: {error}") from None


def env_file_permissions_warning(env_file: Path) -> str | None:
    """A warning when ``.env`` (which holds secrets) is readable by other users."""
    if not env_file.exists() or os.name != "posix":
        return None
    mode = env_file.stat().st_mode & 0o777
    if mode & 0o077:
        return (
            f"{env_file} is readable by other users (mode {mode:o}); it holds credentials: "
            f"run `chmod 600 {env_file}`"
        )
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once (``load_settings`` with the project's ``.env``)."""
    return load_settings()
