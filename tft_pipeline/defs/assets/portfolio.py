"""Portfolio assets: the paper positions ledger and the backtest report over everything materialized."""

import io

import pandas as pd
from dagster import AssetExecutionContext, AssetsDefinition, MetadataValue, Output

from tft_pipeline.backtest import backtest_report as compute_backtest_report
from tft_pipeline.backtest import buy_and_hold_curve, equity_plot_png
from tft_pipeline.corporate_actions import CORPORATE_ACTIONS_TABLE
from tft_pipeline.defs.constants import PORTFOLIO_GROUP
from tft_pipeline.defs.io_manager import warehouse_asset
from tft_pipeline.defs.metadata import png, preview, reliability_markdown
from tft_pipeline.defs.resources import WarehouseResource
from tft_pipeline.model.calibration import reliability_table
from tft_pipeline.paper_trading import BOOK_COLUMNS, latest_positions
from tft_pipeline.portfolio import EQUITY_COLUMNS, POSITION_COLUMNS
from tft_pipeline.settings import Settings
from tft_pipeline.tables import conform

CLOSED_REASONS = ("stop", "target", "expiry")


def _calibration_metadata(store, positions: pd.DataFrame) -> dict:
    """Did the trades win as often as their confidence said, and how skilled was each model
    version on its own holdout (one reliability table per version)."""
    closed = positions[positions["exit_reason"].isin(CLOSED_REASONS)]
    won = (closed["exit_reason"] == "target").astype("float64")
    metadata = {
        "closed_trades": MetadataValue.int(len(closed)),
        "trade_hit_rate": MetadataValue.float(round(float(won.mean()), 4) if len(closed) else 0.0),
        "trade_mean_confidence": MetadataValue.float(
            round(float(closed["confidence"].mean()), 4) if len(closed) else 0.0
        ),
        "trade_calibration": reliability_markdown(reliability_table(closed["confidence"], won)),
    }
    if store.table_exists("signals.model_versions"):
        versions = store.query(
            "SELECT model_version, any_value(holdout_auc) AS auc, "
            "any_value(holdout_brier_skill) AS brier_skill, any_value(has_skill) AS has_skill, "
            "any_value(holdout_reliability) AS reliability, min(session_date) AS first_session "
            "FROM signals.model_versions GROUP BY model_version ORDER BY first_session"
        )
        sections = []
        for version in versions.itertuples(index=False):  # one section per model version: a few
            table = pd.read_json(io.StringIO(version.reliability or "[]"), orient="records")
            body = table.round(3).to_markdown(index=False) if len(table) else "_no holdout_"
            sections.append(
                f"**{version.model_version}** (from {version.first_session:%Y-%m-%d}): AUC "
                f"{version.auc:.3f}, Brier skill {version.brier_skill:.4f}, "
                f"{'tradable' if version.has_skill else 'no skill: its signals are rejected'}\n\n{body}"
            )
        metadata["model_reliability"] = MetadataValue.md("\n\n".join(sections) or "_no model yet_")
    return metadata


def _decision_counts(store, first, last) -> tuple[int, int, str | None]:
    """Signals judged, sessions with signals and the most frequent rejection reason (None: no
    rejection) of ``signals.risk_decisions`` from ``first`` through ``last``."""
    if not store.table_exists("signals.risk_decisions"):
        return 0, 0, None
    bounds = [pd.Timestamp(first).date(), pd.Timestamp(last).date()]
    counts = store.query(
        "SELECT count(*) AS judged, count(DISTINCT session_date) AS scored "
        "FROM signals.risk_decisions WHERE session_date BETWEEN ?::DATE AND ?::DATE",
        bounds,
    )
    reasons = store.query(
        "SELECT reason, count(*) AS n FROM (SELECT unnest(string_split(reasons, ';')) AS reason "
        "FROM signals.risk_decisions WHERE session_date BETWEEN ?::DATE AND ?::DATE "
        "AND NOT accepted) GROUP BY reason ORDER BY n DESC, reason LIMIT 1",
        bounds,
    )
    top = str(reasons["reason"].iloc[0]) if len(reasons) else None
    return int(counts["judged"].iloc[0]), int(counts["scored"].iloc[0]), top


def _read(store, table: str, columns: dict[str, str]) -> pd.DataFrame:
    return conform(
        store.read_table(table) if store.table_exists(table) else pd.DataFrame(), columns
    )


def portfolio_assets(settings: Settings) -> list[AssetsDefinition]:
    """The ledger of every paper position and the backtest report (both span all sessions)."""
    initial_equity = settings.initial_equity

    @warehouse_asset(
        key=["portfolio", "positions"],
        deps=[["portfolio", "position_book"]],
        group_name=PORTFOLIO_GROUP,
        description="One row per paper position, opened from accepted signals and closed at stop, "
        "target or expiry (closed_on null while open): each position as the latest session's book "
        "shows it. Nothing is replayed: the risk step booked every session.",
    )
    def positions(context: AssetExecutionContext, warehouse: WarehouseResource) -> Output:
        store = warehouse.warehouse()
        ledger_positions = latest_positions(_read(store, "portfolio.position_book", BOOK_COLUMNS))
        open_now = ledger_positions["closed_on"].isna()
        return Output(
            ledger_positions,
            metadata={
                "positions": MetadataValue.int(len(ledger_positions)),
                "open": MetadataValue.int(int(open_now.sum())),
                "closed_by_reason": MetadataValue.json(
                    ledger_positions.loc[~open_now, "exit_reason"].value_counts().to_dict()
                ),
                "realized_pnl": MetadataValue.float(round(float(ledger_positions["pnl"].sum()), 2)),
                "preview": preview(ledger_positions.sort_values("opened_on", ascending=False)),
            },
        )

    @warehouse_asset(
        key=["portfolio", "backtest_report"],
        deps=[
            ["portfolio", "positions"],
            ["portfolio", "equity"],
            ["clean", "price_history"],
            ["clean", "corporate_actions"],
        ],
        group_name=PORTFOLIO_GROUP,
        description="Hit rate, average R, profit factor, Sharpe, Sortino, max drawdown, exposure "
        "and trades over the materialized sessions, against equal-weight buy-and-hold; with an "
        "equity and drawdown plot.",
    )
    def backtest_report(context: AssetExecutionContext, warehouse: WarehouseResource) -> Output:
        store = warehouse.warehouse()
        equity = _read(store, "portfolio.equity", EQUITY_COLUMNS).sort_values("session_date")
        ledger_positions = _read(store, "portfolio.positions", POSITION_COLUMNS)
        first, last = equity["session_date"].min(), equity["session_date"].max()
        # Buy-and-hold over every booked session needs each bar's close, nothing more.
        prices = (
            store.read_sessions(
                "clean.price_history", first, last, columns=["ticker", "session_date", "close"]
            )
            if len(equity)
            else pd.DataFrame()
        )
        # Buy-and-hold on the total-return close: splits and reinvested dividends.
        actions = (
            store.read_sessions(CORPORATE_ACTIONS_TABLE, first, last)
            if len(equity) and store.table_exists(CORPORATE_ACTIONS_TABLE)
            else None
        )
        # Buy-and-hold once, for the figures and the plot: every booked session's bars.
        benchmark = buy_and_hold_curve(prices, equity["session_date"], actions=actions)
        report = compute_backtest_report(
            equity,
            ledger_positions,
            prices,
            initial_equity=initial_equity,
            actions=actions,
            benchmark=benchmark,
        )
        # Counted in the warehouse: every decision of the history is one row per ticker and session.
        judged, scored, top_reason = (
            _decision_counts(store, first, last) if len(equity) else (0, 0, None)
        )
        people = report.for_people(signals_judged=judged, top_rejection_reason=top_reason)
        image = equity_plot_png(equity, benchmark, note=people.get("why_no_trades"))
        # Figures as a trader reads them; the table keeps full precision for machines.
        metadata = {
            key: (
                MetadataValue.float(value)
                if isinstance(value, float)
                else MetadataValue.int(value)
                if isinstance(value, int)
                else MetadataValue.text(value)
            )
            for key, value in people.items()
        }
        metadata["initial_equity"] = MetadataValue.float(float(initial_equity))
        # Signals exist only once the walk-forward has a model: say how much of the range that is.
        metadata["sessions_with_signals"] = MetadataValue.text(
            f"{int(scored)} of {len(equity)} (the model scores a session only once earlier "
            "sessions give it enough labelled rows to train)"
        )
        metadata["equity_and_drawdown"] = png(image, "equity and drawdown")
        metadata.update(_calibration_metadata(store, ledger_positions))
        figures = report.as_dict()
        return Output(pd.DataFrame([figures]), metadata=metadata)

    return [positions, backtest_report]
