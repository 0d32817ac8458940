"""Live mode end to end: the real Dagster chain against a fake Reddit and a fake Yahoo (127.0.0.1).

``TFT_DATA_SOURCE=live`` with credentials in the environment, exactly as a user runs it: the
resources resolve the credentials as ``EnvVar``s at run time, real praw/prawcore and real yfinance
talk HTTP to the fakes, runs go into a Dagster instance on disk (SQLite) and a DuckDB file. Only
time is fake: prawcore's retry sleep, our retry layer's and rate limiters' sleeps, and Dagster's
retry delay are all zero, so retry paths run in milliseconds with their real attempt counts.
"""

from __future__ import annotations

import base64
import logging
import shutil
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import prawcore.sessions
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, RetryPolicy
from dagster._core.events import RunFailureReason
from dagster._core.execution.retries import auto_reexecution_should_retry_run
from dagster._serdes import serialize_value

from tft_pipeline.definitions import build_definitions
from tft_pipeline.defs.assets.ingest import ingest_assets
from tft_pipeline.defs.constants import SCRAPER_MAX_RETRIES, SCRAPER_RETRY_POLICY
from tft_pipeline.defs.jobs import DAILY_JOB_NAME
from tft_pipeline.defs.partitions import trading_session_partitions
from tft_pipeline.defs.run_tags import PARTITION_RANGE_END as ASSET_PARTITION_RANGE_END_TAG
from tft_pipeline.defs.run_tags import PARTITION_RANGE_START as ASSET_PARTITION_RANGE_START_TAG
from tft_pipeline.retry import REDDIT_CONFIG
from tft_pipeline.settings import DataSource, load_settings
from tft_pipeline.sources import prices_live, reddit_live
from tft_pipeline.sources.limits import DAGSTER_SCRAPER_MAX_RETRIES
from tft_pipeline.sources.reddit_live import (
    CREDENTIALS_MESSAGE,
    MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN,
    PRAWCORE_ATTEMPTS_PER_CALL,
)
from tft_pipeline.trading_calendar import sessions_between
from tft_pipeline.warehouse import Warehouse
from tft_pipeline_tests.fakes.fake_reddit import FakeReddit, Fault
from tft_pipeline_tests.fakes.fake_yahoo import (
    FakeYahooServer,
    pointing_yfinance_at,
    random_walk_bars,
    recorded_answer,
)

# One xdist worker takes the whole module under `--dist loadgroup`, so its shared run happens once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("live_pipeline")]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_INSTANCE_CONFIG = PROJECT_ROOT / "deploy" / "sqlite" / "dagster.yaml"

CLIENT_ID = "e2e-client-id-31c7"
CLIENT_SECRET = "e2e-client-secret-value-9f04ab"
USERNAME = "tft_e2e_bot"
PASSWORD = "e2e-password-value-77d1c2"
USER_AGENT = "tft_pipeline live e2e tests (by u/tft_e2e_bot)"
# r/investing holds only one recent post: its listing ends inside the range (as a busy subreddit's
# does past Reddit's ~1,000 items), so coverage is partial and must be reported so.
SUBREDDITS = ("wallstreetbets", "stocks", "investing")
KNOWN_TICKERS = ("AAPL", "MSFT", "NVDA", "TSLA", "AMD")
UNKNOWN_TICKER = "ZZZQ"  # Yahoo answers 404 "symbol may be delisted"
FIRST, LAST = "2024-01-08", "2024-01-10"
SESSIONS = sessions_between(FIRST, LAST)
MONDAY, TUESDAY, WEDNESDAY = (pd.Timestamp(f"2024-01-{day:02d}") for day in (8, 9, 10))
LISTING_OF_WALLSTREETBETS = r"^/r/wallstreetbets/new$"
RAW_REDDIT_STEPS = ("raw__reddit_posts", "raw__reddit_comments")
PRICE_STEPS = (
    "raw_price_history.plan_price_batches",
    "raw_price_history.fetch_price_batch[batch_0001]",
    "raw_price_history.collect_price_batches",
    "raw_price_history.store_price_tables",
)
# The originals, before any world patches them (the module's shared run stays patched while the
# failure-path tests build worlds of their own).
REAL_REDDIT_SOURCE = reddit_live.LiveRedditSource
REAL_PRICE_SOURCE = prices_live.LivePriceSource
REAL_DAGSTER_DELAY = RetryPolicy.calculate_delay


# --- the fake world -------------------------------------------------------------------------------
# Times are UTC; New York is UTC-5 in January, so a session closes at 21:00 UTC. Session windows:
# 2024-01-08 = (Fri 01-05 21:00, Mon 01-08 21:00], then one day each for 01-09 and 01-10.


def _post(post_id: str, created: str, subreddit: str = "wallstreetbets", **fields) -> dict:
    return {
        "post_id": post_id,
        "subreddit": subreddit,
        "author": fields.pop("author", "trader_joe"),
        "title": fields.pop("title", f"$AAPL thoughts {post_id}"),
        "selftext": f"text of {post_id}",
        "created_utc": pd.Timestamp(created),
        **fields,
    }


def _comment(comment_id: str, post_id: str, created: str, **fields) -> dict:
    return {
        "comment_id": comment_id,
        "post_id": post_id,
        "author": fields.pop("author", "commenter"),
        "body": fields.pop("body", f"NVDA to the moon {comment_id}"),
        "created_utc": pd.Timestamp(created),
        **fields,
    }


POSTS = [
    # Older than the range (and than the comment look-back): the listing walk stops at these.
    _post("ancientw", "2023-12-28 15:00"),
    _post("ancients", "2023-12-28 15:00", subreddit="stocks"),
    _post("oldw", "2024-01-04 15:00"),
    # Monday's window: Friday after the close, the weekend, Monday before the close.
    _post("friafter", "2024-01-05 21:30"),
    _post("saturday", "2024-01-06 14:00", subreddit="stocks"),
    _post("sunday", "2024-01-07 23:00"),
    _post("monclose", "2024-01-08 20:59"),
    # Tuesday's window opens at Monday's close.
    _post("monlate", "2024-01-08 21:30", subreddit="stocks"),
    _post("tuesday", "2024-01-09 15:00"),
    _post("wednesday", "2024-01-10 18:00", subreddit="stocks"),
    _post("onlyone", "2024-01-09 12:00", subreddit="investing"),
    _post("untitled", "2024-01-10 12:00", title=""),  # dirty: a post needs a title
    # After the range: never fetched into it.
    _post("thursday", "2024-01-11 15:00"),
]
COMMENTS = [
    _comment("c_old", "oldw", "2024-01-05 10:00"),  # before the range: dropped
    _comment("c_sat", "saturday", "2024-01-07 10:00"),
    # On Sunday's post: Tuesday chooses its trees among posts of its window and the two days
    # before (a daily run of Tuesday would not see Saturday's post either).
    _comment("c_tue", "sunday", "2024-01-09 03:00"),
    _comment("c_tue2", "tuesday", "2024-01-09 16:00"),
    _comment("c_wed", "tuesday", "2024-01-10 14:00", parent_id="t1_c_tue2"),  # a reply
    _comment("c_blank", "wednesday", "2024-01-10 19:00", body=""),  # dirty: a comment needs a body
    _comment("c_thu", "wednesday", "2024-01-11 10:00"),  # after the range: dropped
]
EXPECTED_POST_SESSIONS = {
    "friafter": MONDAY,
    "saturday": MONDAY,
    "sunday": MONDAY,
    "monclose": MONDAY,
    "monlate": TUESDAY,
    "tuesday": TUESDAY,
    "onlyone": TUESDAY,
    "wednesday": WEDNESDAY,
    "untitled": WEDNESDAY,
}
EXPECTED_COMMENT_SESSIONS = {
    "c_sat": MONDAY,
    "c_tue": TUESDAY,
    "c_tue2": TUESDAY,
    "c_wed": WEDNESDAY,
    "c_blank": WEDNESDAY,
}
DIRTY_BAR = ("AMD", TUESDAY)


def _market() -> dict[str, pd.DataFrame]:
    """Bars on more sessions than the run asks for, and one bar whose high is below its low."""
    sessions = sessions_between("2024-01-02", "2024-01-12")
    market = {
        ticker: random_walk_bars(sessions, seed=seed, start_price=50.0 + 40 * seed)
        for seed, ticker in enumerate(KNOWN_TICKERS, start=1)
    }
    ticker, session = DIRTY_BAR
    market[ticker].loc[session, "high"] = market[ticker].loc[session, "low"] * 0.98
    return market


class FakeTime:
    """A monotonic clock that only moves when slept on; every sleep is recorded, none is slept."""

    def __init__(self) -> None:
        self.now = 10_000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class LiveWorld:
    """The fakes, the instance and the warehouse of one test, and a way to run the daily job."""

    reddit: FakeReddit
    yahoo: FakeYahooServer
    instance: DagsterInstance
    instance_dir: Path
    warehouse_dir: Path
    fake_time: FakeTime
    dagster_delays: list[float]

    def __post_init__(self) -> None:
        self.settings = load_settings(None)
        self.defs = build_definitions(self.settings)
        self.warehouse = Warehouse(self.settings.resolved_warehouse_path())

    def run(self, asset_selection: list[AssetKey] | None = None):
        job = self.defs.resolve_job_def(DAILY_JOB_NAME)
        return job.execute_in_process(
            instance=self.instance,
            tags={ASSET_PARTITION_RANGE_START_TAG: FIRST, ASSET_PARTITION_RANGE_END_TAG: LAST},
            asset_selection=asset_selection,
            raise_on_error=False,
        )

    def table(self, name: str) -> pd.DataFrame:
        return self.warehouse.read_table(name)

    def secrets(self) -> dict[str, str]:
        """Every secret the run handled, by what it is (tokens as the fake issued them)."""
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return {
            "client secret": CLIENT_SECRET,
            "password": PASSWORD,
            "basic auth header": basic,
            **{f"bearer token {token}": token for token in self.reddit.issued_tokens()},
        }


@contextmanager
def live_world(base_dir: Path) -> Iterator[LiveWorld]:
    """Fakes on 127.0.0.1, the live-mode environment, fake time, an instance under ``base_dir``."""
    fake_time = FakeTime()

    # Our retry layer and rate limiters get the fake clock; the sources are otherwise untouched
    # (the resources build them exactly as in production, credentials included).
    class FakeTimeRedditSource(REAL_REDDIT_SOURCE):
        def __init__(self, **kwargs):
            super().__init__(**kwargs, sleep=fake_time.sleep, clock=fake_time.monotonic)

    class FakeTimePriceSource(REAL_PRICE_SOURCE):
        def __init__(self, **kwargs):
            super().__init__(**kwargs, sleep=fake_time.sleep, monotonic=fake_time.monotonic)

    # Dagster's retry policy keeps its real budget; the wait it asks for is recorded, not waited.
    dagster_delays: list[float] = []
    def no_wait(policy: RetryPolicy, attempt_num: int) -> float:
        assert policy == SCRAPER_RETRY_POLICY, "a scraper step runs under the shipped retry policy"
        dagster_delays.append(REAL_DAGSTER_DELAY(policy, attempt_num))
        return 0

    instance_dir = base_dir / "dagster_home"
    warehouse_dir = base_dir / "data"
    instance_dir.mkdir()
    with (
        pytest.MonkeyPatch.context() as patch,
        FakeReddit(POSTS, COMMENTS, client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as reddit,
        FakeYahooServer(_market()) as yahoo,
        pointing_yfinance_at(yahoo.url),
    ):
        patch.setattr(reddit_live, "LiveRedditSource", FakeTimeRedditSource)
        patch.setattr(prices_live, "LivePriceSource", FakeTimePriceSource)
        # prawcore sleeps 0-2 s and 2-4 s between its own retries.
        patch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)
        patch.setattr(RetryPolicy, "calculate_delay", no_wait)
        for name, value in {
            "TFT_DATA_SOURCE": "live",
            "TFT_WAREHOUSE_PATH": str(warehouse_dir / "warehouse.duckdb"),
            "TFT_TICKERS": ",".join((*KNOWN_TICKERS, UNKNOWN_TICKER)),
            "TFT_SUBREDDITS": ",".join(SUBREDDITS),
            "REDDIT_CLIENT_ID": CLIENT_ID,
            "REDDIT_CLIENT_SECRET": CLIENT_SECRET,
            "REDDIT_USER_AGENT": USER_AGENT,
            "REDDIT_USERNAME": USERNAME,
            "REDDIT_PASSWORD": PASSWORD,
            "REDDIT_OAUTH_URL": reddit.url,
            "REDDIT_URL": reddit.url,
        }.items():
            patch.setenv(name, value)
        # The instance `make dev` runs on: the shipped SQLite config in a DAGSTER_HOME of our own.
        shutil.copy(SHIPPED_INSTANCE_CONFIG, instance_dir / "dagster.yaml")
        # The shipped config locates its event logs under $DAGSTER_HOME (defs/sqlite_event_log.py).
        patch.setenv("DAGSTER_HOME", str(instance_dir))
        with DagsterInstance.from_config(str(instance_dir)) as instance:
            yield LiveWorld(
                reddit, yahoo, instance, instance_dir, warehouse_dir, fake_time, dagster_delays
            )


class CapturedLogs(logging.Handler):
    """Every log record of every logger, formatted with its arguments (what caplog keeps)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}"
        self.lines.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @contextmanager
    def installed(self) -> Iterator[CapturedLogs]:
        root = logging.getLogger()
        level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(level)


def _events(result, event_type: DagsterEventType, step_key: str | None = None) -> list:
    return [
        event
        for event in result.all_events
        if event.event_type == event_type and (step_key is None or event.step_key == step_key)
    ]


def _sessions_by_key(frame: pd.DataFrame, key: str) -> dict[str, pd.Timestamp]:
    return dict(zip(frame[key], pd.to_datetime(frame["session_date"]), strict=True))


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [what for what, secret in secrets.items() if secret in text]


def _sqlite_texts(path: Path) -> Iterator[str]:
    """Every cell of every table of a SQLite file as text, zlib-compressed blobs decompressed."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        listed = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = [row[0] for row in listed]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        try:
                            cell = zlib.decompress(cell)
                        except zlib.error:
                            pass
                        yield cell.decode("latin-1")
                    elif cell is not None:
                        yield str(cell)
    finally:
        connection.close()


# --- the happy path -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """One live run of the whole chain for the range, shared by the happy-path tests (slow)."""
    with live_world(tmp_path_factory.mktemp("live")) as world, CapturedLogs().installed() as logs:
        result = world.run()
        assert result.success, [
            event.message for event in _events(result, DagsterEventType.STEP_FAILURE)
        ]
        yield world, result, logs


@pytest.fixture
def fresh_live_world(tmp_path) -> Iterator[LiveWorld]:
    with live_world(tmp_path) as world:
        yield world


def test_live_mode_runs_the_live_sources_through_the_credentials_in_the_environment(live_run):
    world, _, _ = live_run
    assert world.settings.data_source is DataSource.LIVE
    tokens = world.reddit.issued_tokens()
    assert tokens, "praw fetched a token from the fake"
    token_posts = [
        record for record in world.reddit.requests if record.path == "/api/v1/access_token"
    ]
    # Script-app login: the secret travels as HTTP Basic, the password in the form body.
    assert {record.authorization for record in token_posts} == {
        "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    }
    assert all(f"password={PASSWORD}" in record.body for record in token_posts)
    assert world.yahoo.requests(UNKNOWN_TICKER), "the unknown ticker was asked for"


def test_reddit_rows_land_in_the_session_whose_window_holds_them(live_run):
    world, _, _ = live_run
    raw_posts = world.table("raw.reddit_posts")
    raw_comments = world.table("raw.reddit_comments")
    # Weekend and Friday-evening posts belong to Monday; nothing before or after the range.
    assert _sessions_by_key(raw_posts, "post_id") == EXPECTED_POST_SESSIONS
    assert _sessions_by_key(raw_comments, "comment_id") == EXPECTED_COMMENT_SESSIONS
    assert len(raw_posts) == len(EXPECTED_POST_SESSIONS), "each post fetched once"
    subreddit_of = raw_posts.set_index("post_id")["subreddit"]
    assert (subreddit_of["saturday"], subreddit_of["onlyone"]) == ("stocks", "investing")

    clean_posts = world.table("clean.reddit_posts")
    clean_comments = world.table("clean.reddit_comments")
    assert _sessions_by_key(clean_posts, "post_id") == {
        key: session for key, session in EXPECTED_POST_SESSIONS.items() if key != "untitled"
    }
    assert _sessions_by_key(clean_comments, "comment_id") == {
        key: session for key, session in EXPECTED_COMMENT_SESSIONS.items() if key != "c_blank"
    }
    reply = clean_comments.set_index("comment_id").loc["c_wed"]
    assert (reply["post_id"], reply["body"]) == ("tuesday", "NVDA to the moon c_wed")


def test_dirty_rows_are_quarantined_with_their_reason_in_their_session(live_run):
    world, _, _ = live_run
    rejected = world.table("clean.rejected_rows")
    by_source = dict(tuple(rejected.groupby("source")))
    assert set(by_source) == {"raw.reddit_posts", "raw.reddit_comments", "raw.price_history"}
    post = by_source["raw.reddit_posts"].iloc[0]
    assert (len(by_source["raw.reddit_posts"]), post["record_key"]) == (1, "untitled")
    assert "title" in post["reason"] and pd.Timestamp(post["session_date"]) == WEDNESDAY
    comment = by_source["raw.reddit_comments"].iloc[0]
    assert (len(by_source["raw.reddit_comments"]), comment["record_key"]) == (1, "c_blank")
    assert "body" in comment["reason"]
    bar = by_source["raw.price_history"]
    assert len(bar) == 1 and "AMD" in bar.iloc[0]["record_key"] and "high" in bar.iloc[0]["reason"]
    assert pd.Timestamp(bar.iloc[0]["session_date"]) == DIRTY_BAR[1]


def test_prices_of_the_run_range_only_and_the_unknown_ticker_is_a_failure_row(live_run):
    world, result, _ = live_run
    market = _market()
    raw = world.table("raw.price_history")
    assert set(zip(raw["ticker"], pd.to_datetime(raw["session_date"]))) == {
        (ticker, session) for ticker in KNOWN_TICKERS for session in SESSIONS
    }
    # The bars are the fake's numbers, on their sessions.
    aapl = raw[raw["ticker"] == "AAPL"].sort_values("session_date")
    assert list(pd.to_datetime(aapl["session_date"])) == list(SESSIONS)
    assert aapl["close"].to_numpy() == pytest.approx(
        market["AAPL"].loc[SESSIONS, "close"].to_numpy()
    )
    # adj_close is the as-traded close, not Yahoo's Adj Close (which depends on the fetch date;
    # docs/live_mode.md, "Splits, dividends and the price basis").
    assert aapl["adj_close"].to_numpy() == pytest.approx(aapl["close"].to_numpy())
    clean = world.table("clean.price_history")
    assert len(clean) == len(KNOWN_TICKERS) * len(SESSIONS) - 1  # the dirty bar

    failures = world.table("raw.price_fetch_failures")
    assert set(failures["ticker"]) == {UNKNOWN_TICKER}
    assert set(pd.to_datetime(failures["session_date"])) == set(SESSIONS)
    assert (failures["attempts"] == 1).all(), "an unknown ticker is not retried"
    # The price steps succeeded despite the failed ticker: one success each, no failure, no
    # retry. Six tickers are one batch (TFT_PRICE_BATCH_TICKERS, 100), so one fetch step.
    for price_step in PRICE_STEPS:
        assert len(_events(result, DagsterEventType.STEP_SUCCESS, price_step)) == 1, price_step
    assert not _events(result, DagsterEventType.STEP_FAILURE)
    assert not _events(result, DagsterEventType.STEP_UP_FOR_RETRY)
    # One history request per known ticker for the whole range.
    history = world.yahoo.requests(kind="history")
    assert sorted(request.symbol for request in history) == sorted(KNOWN_TICKERS)


def test_partial_coverage_is_reported_in_the_materialization_metadata(live_run):
    world, _, _ = live_run
    for name in ("reddit_posts", "reddit_comments"):
        records = world.instance.fetch_materializations(AssetKey(["raw", name]), limit=10).records
        assert {record.partition_key for record in records} == {f"{s:%Y-%m-%d}" for s in SESSIONS}
        for record in records:
            metadata = record.asset_materialization.metadata
            assert metadata["fetch_coverage_complete"].value is False, name
            notes = metadata["fetch_coverage_notes"].value
            # Only the subreddit that ran out is named; the rows it did serve are kept.
            assert "r/investing: listing ended at 2024-01-09T12:00Z" in notes, name
            assert "wallstreetbets" not in notes and "r/stocks" not in notes, name
            assert metadata["fetch_requests"].value > 0


def test_no_secret_reaches_logs_events_instance_files_or_the_warehouse(live_run):
    world, result, logs = live_run
    secrets = world.secrets()
    assert len(secrets) >= 4, "at least one bearer token was issued"

    # Python logs of everything that ran (DEBUG: prawcore, urllib3, dagster, ours).
    assert "reddit posts" in logs.text, "our source's log lines were captured"
    assert _leaks(logs.text, secrets) == []
    # Every event of the run, with its message, metadata and any error, as stored.
    logs = world.instance.all_logs(result.run_id)
    assert len(logs) > 20
    for entry in logs:
        assert _leaks(serialize_value(entry), secrets) == [], entry.message
    for path in (["raw", "reddit_posts"], ["raw", "reddit_comments"], ["raw", "price_history"]):
        for record in world.instance.fetch_materializations(AssetKey(path), limit=10).records:
            metadata = record.asset_materialization.metadata
            shown = "".join(f"{key}={value}" for key, value in metadata.items())
            assert _leaks(shown, secrets) == []
    run = world.instance.get_run_by_id(result.run_id)
    assert _leaks(serialize_value(run), secrets) == []
    # Every byte the instance wrote: SQLite databases (and their WAL), compute logs, artifacts.
    instance_files = [path for path in world.instance_dir.rglob("*") if path.is_file()]
    for path in instance_files:
        assert _leaks(path.read_bytes().decode("latin-1"), secrets) == [], path
    # Dagster zlib-compresses snapshots in SQLite, where a byte scan cannot see: read every cell.
    databases = [path for path in instance_files if path.read_bytes()[:16] == b"SQLite format 3\0"]
    stored = "\n".join(text for path in databases for text in _sqlite_texts(path))
    assert _leaks(stored, secrets) == []
    # The credentials are stored as references to the environment, which the scan does see.
    assert "REDDIT_CLIENT_SECRET" in stored and "REDDIT_PASSWORD" in stored
    # The run's compute logs (what the UI shows as stdout/stderr) were captured and scanned.
    compute_logs = [path for path in instance_files if "compute_logs" in path.parts]
    assert any(path.stat().st_size > 0 for path in compute_logs)
    # The warehouse file (and the Parquet export next to it), and every table's text.
    warehouse_files = [path for path in world.warehouse_dir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".duckdb" for path in warehouse_files)
    for path in warehouse_files:
        assert _leaks(path.read_bytes().decode("latin-1"), secrets) == [], path
    tables = world.warehouse.query(
        "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables"
    )["name"]
    assert {"raw.reddit_posts", "clean.rejected_rows", "raw.price_fetch_failures"} <= set(tables)
    for table in tables:
        assert _leaks(world.table(table).to_csv(), secrets) == [], table


# --- failure paths --------------------------------------------------------------------------------


def test_rejected_credentials_fail_the_reddit_steps_once_without_any_retry(
    fresh_live_world, caplog
):
    caplog.set_level(logging.DEBUG)
    world = fresh_live_world
    world.reddit.script(
        r"^/api/v1/access_token$",
        [Fault(status=401, body={"message": "Unauthorized", "error": 401})] * 20,
    )
    result = world.run()

    assert not result.success
    for step in RAW_REDDIT_STEPS:
        failures = _events(result, DagsterEventType.STEP_FAILURE, step)
        assert len(failures) == 1, step
        failure = failures[0].step_failure_data
        assert CREDENTIALS_MESSAGE in failure.error.to_string(), step
        # The UI shows the readable message and the facts, marked as not worth retrying.
        assert CREDENTIALS_MESSAGE in failure.user_failure_data.description
        facts = {key: value.value for key, value in failure.user_failure_data.metadata.items()}
        assert (facts["retryable"], facts["http_status"]) == (False, 401)
        assert not _events(result, DagsterEventType.STEP_UP_FOR_RETRY, step)
    # One token request per step: neither prawcore, nor our layer, nor Dagster asked again.
    assert world.reddit.token_requests() == len(RAW_REDDIT_STEPS)
    assert world.reddit.count(r"^/r/") == 0
    assert world.dagster_delays == []
    # Nor does the instance re-run the failed run (run retries are for crashed runs only).
    run = world.instance.get_run_by_id(result.run_id)
    assert world.instance.run_retries_enabled
    assert not auto_reexecution_should_retry_run(world.instance, run, RunFailureReason.STEP_FAILURE)
    # Prices do not depend on Reddit: they were still fetched and stored.
    assert len(world.table("raw.price_history")) == len(KNOWN_TICKERS) * len(SESSIONS)
    # The credentials that were rejected are not echoed anywhere.
    secrets = world.secrets()
    assert _leaks(caplog.text, secrets) == []
    for entry in world.instance.all_logs(result.run_id):
        assert _leaks(serialize_value(entry), secrets) == []


def test_a_transient_outage_is_retried_by_every_layer_up_to_the_documented_bound(
    fresh_live_world, caplog
):
    caplog.set_level(logging.DEBUG)
    world = fresh_live_world
    world.reddit.script(LISTING_OF_WALLSTREETBETS, [Fault.server_error(503)] * 200)
    result = world.run(asset_selection=[AssetKey(["raw", "reddit_posts"])])

    assert not result.success
    step = "raw__reddit_posts"
    retries = _events(result, DagsterEventType.STEP_UP_FOR_RETRY, step)
    assert len(retries) == DAGSTER_SCRAPER_MAX_RETRIES
    failures = _events(result, DagsterEventType.STEP_FAILURE, step)
    assert len(failures) == 1
    for event in (*retries, failures[0]):
        data = event.step_retry_data if event in retries else event.step_failure_data
        message = data.error.to_string()
        assert "Reddit failed the new posts of r/wallstreetbets 6 times in a row" in message
        assert "Failure" in message, "a dagster Failure (retryable), not a bare exception"

    # The one logical request (the first page of the listing) at the server: prawcore's 3 per call,
    # times our layer's 6 calls, times Dagster's 3 step attempts.
    dagster_attempts = SCRAPER_RETRY_POLICY.max_retries + 1
    assert MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN == (
        PRAWCORE_ATTEMPTS_PER_CALL * REDDIT_CONFIG.max_attempts * dagster_attempts
    ) == 54
    assert world.reddit.count(LISTING_OF_WALLSTREETBETS) == MAX_HTTP_ATTEMPTS_PER_REQUEST_PER_RUN
    assert world.reddit.count(r"^/r/stocks/") == 0
    # Each step attempt built a fresh client: one token each.
    assert world.reddit.token_requests() == dagster_attempts

    # The waits were asked for, and skipped. Our layer: 2, 4, 8, 16, 32 s (±10 %) per step attempt
    # (the rate limiter's waits are at most 1 s at 1 request/s, so they are told apart by size).
    backoffs = [seconds for seconds in world.fake_time.sleeps if seconds > 1.5]
    assert len(backoffs) == REDDIT_CONFIG.max_retries * dagster_attempts
    assert sum(backoffs) == pytest.approx(62.0 * dagster_attempts, rel=0.1)
    # Dagster: (2**n - 1) * 30 s ±30 s before retry n, so 0-60 s, then 60-120 s.
    assert 0 <= world.dagster_delays[0] <= 60 and 60 <= world.dagster_delays[1] <= 120
    # The retry layer's log lines name the request, not a lambda.
    assert "retry the new posts of r/wallstreetbets: attempt 1/6 failed" in caplog.text
    assert _leaks(caplog.text, world.secrets()) == []


def test_the_dagster_retry_budget_has_one_source_of_truth():
    assert SCRAPER_MAX_RETRIES == DAGSTER_SCRAPER_MAX_RETRIES == SCRAPER_RETRY_POLICY.max_retries
    scrapers = ingest_assets(trading_session_partitions(SESSIONS[0].date()))
    assert len(scrapers) == 3
    reddit_posts, reddit_comments, prices = scrapers
    for scraper in (reddit_posts, reddit_comments):
        assert scraper.op.retry_policy == SCRAPER_RETRY_POLICY
    # The price graph: the steps that ask Yahoo retry under it; planning and storing do not fetch.
    policies = {node.name: node.definition.retry_policy for node in prices.node_def.nodes}
    assert policies == {
        "plan_price_batches": None,
        "fetch_price_batch": SCRAPER_RETRY_POLICY,
        "collect_price_batches": SCRAPER_RETRY_POLICY,
        "store_price_tables": None,
    }


@pytest.mark.parametrize("config", ["sqlite", "postgres"])
def test_shipped_instances_rerun_crashed_runs_but_not_runs_whose_steps_failed(config):
    import yaml

    settings = yaml.safe_load((PROJECT_ROOT / "deploy" / config / "dagster.yaml").read_text())
    # A re-run after a step failure would repeat a rejected login and double every retry bound.
    assert settings["run_retries"]["enabled"] is True
    assert settings["run_retries"]["retry_on_asset_or_op_failure"] is False


# --- a split and a dividend between two daily runs (issue 10, item 6) ----------------------------


def test_a_split_and_a_dividend_between_two_daily_runs(tmp_path):
    """Daily runs on real recorded Yahoo answers: NVDA's 4:1 split (ex-date 2021-07-20) between
    the runs of 07-19 and 07-20, AAPL's $0.205 dividend (ex-date 2020-11-06) between those of
    11-05 and 11-06. Each run fetches its one session, at today's clock (the answers were recorded
    in 2025, so they are adjusted as of then, as a real fetch today would be)."""
    with live_world(tmp_path) as world, pytest.MonkeyPatch.context() as patch:
        world.yahoo.set_recorded("NVDA", recorded_answer("NVDA-2021-06-01-to-2021-08-31.json"))
        world.yahoo.set_recorded("AAPL", recorded_answer("AAPL-2020-08-31-to-2020-11-06.json"))
        # Each recorded answer covers its own months: a universe file says which ticker belongs
        # to which sessions (and is what keeps the other one from being a failure row).
        universe = tmp_path / "universe.csv"
        universe.write_text(
            "ticker,first_session,last_session\n"
            "AAPL,2020-08-31,2020-11-06\n"
            "NVDA,2021-06-01,2021-08-31\n"
        )
        patch.delenv("TFT_TICKERS")
        patch.setenv("TFT_UNIVERSE_FILE", str(universe))
        patch.setenv("TFT_START_DATE", "2020-08-31")
        settings = load_settings(None)
        job = build_definitions(settings).resolve_job_def(DAILY_JOB_NAME)
        selection = [
            AssetKey(key)
            for key in (
                ["raw", "price_history"],
                ["raw", "corporate_actions"],
                ["clean", "price_history"],
                ["clean", "corporate_actions"],
                ["raw", "reddit_posts"],
                ["raw", "reddit_comments"],
                ["clean", "reddit_posts"],
                ["clean", "reddit_comments"],
                ["clean", "rejected_rows"],
                ["features", "ticker_mentions"],
                ["features", "feature_snapshots"],
            )
        ]
        for session in ("2020-11-05", "2020-11-06", "2021-07-19", "2021-07-20"):
            result = job.execute_in_process(
                instance=world.instance,
                partition_key=session,
                asset_selection=selection,
                raise_on_error=False,
            )
            assert result.success, [
                event.message for event in _events(result, DagsterEventType.STEP_FAILURE)
            ]
        warehouse = Warehouse(settings.resolved_warehouse_path())
        prices = warehouse.read_table("clean.price_history").set_index(
            ["ticker", "session_date"]
        )
        actions = warehouse.read_table("clean.corporate_actions")
        rejected = warehouse.read_table("clean.rejected_rows")
        snapshots = warehouse.read_table("features.feature_snapshots").set_index(
            ["ticker", "session_date"]
        )

    day = pd.Timestamp
    # As traded on both days: the pre-split close is 4 x Yahoo's adjusted value, the ex-date's as
    # sent; no quarantine.
    assert prices.loc[("NVDA", day("2021-07-19")), "close"] == pytest.approx(4 * 18.77975082397461)
    assert prices.loc[("NVDA", day("2021-07-20")), "close"] == pytest.approx(18.61199951171875)
    assert prices.loc[("AAPL", day("2020-11-06")), "close"] == pytest.approx(118.69000244140625)
    assert rejected[rejected["source"].isin(["raw.price_history", "raw.corporate_actions"])].empty
    assert actions[["ticker", "session_date", "split_ratio", "dividend"]].sort_values(
        "session_date"
    ).to_dict("records") == [
        {"ticker": "AAPL", "session_date": day("2020-11-06"), "split_ratio": 1.0, "dividend": 0.205},
        {"ticker": "NVDA", "session_date": day("2021-07-20"), "split_ratio": 4.0, "dividend": 0.0},
    ]
    # The features read one adjusted basis: the split day's return is the tape's -0.89 %, not -75 %.
    true_return = 18.61199951171875 / 18.77975082397461 - 1
    assert snapshots.loc[("NVDA", day("2021-07-20")), "ret_1"] == pytest.approx(true_return)
    # The dividend day's return is the total return (the $0.205 added back, -0.11 %), not the
    # price return (-0.29 %); tft_pipeline.corporate_actions' dividend factor differs from the
    # simple (close + dividend) / previous close in the sixth decimal.
    aapl = prices.loc["AAPL"]["close"]
    total = (aapl[day("2020-11-06")] + 0.205) / aapl[day("2020-11-05")] - 1
    price_only = aapl[day("2020-11-06")] / aapl[day("2020-11-05")] - 1
    dividend_day = snapshots.loc[("AAPL", day("2020-11-06")), "ret_1"]
    assert dividend_day == pytest.approx(total, abs=1e-5)
    assert abs(dividend_day - price_only) > 0.0015
