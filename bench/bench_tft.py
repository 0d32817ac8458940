"""Benchmark of the Temporal Fusion Transformer (``python -m bench tft``; needs .venv-tft).

1. Speed at equal data: one epoch of our lean TFT (``tft_pipeline.model.tft``) against
   pytorch-forecasting's stock ``TemporalFusionTransformer`` on the same samples, in the same run:
   300 tickers × 750 sessions of the synthetic planted-edge market, encoder 60, hidden 16, 2 heads,
   batch 128, one torch thread, the same binary target (P(target before stop), the triple-barrier
   label: BCE for ours, pytorch-forecasting's CrossEntropy over two classes, the same log loss),
   the same purged validation sessions. Run A/B/A (ours, stock, ours) so load that comes and goes
   weighs on both; the 1-minute load average is recorded before each. Figures: seconds (ours: the
   whole fit, validation pass, calibration and variable importance included; stock: the
   ``Trainer.fit`` epoch alone, its dataset built before), validation log loss of each, and the
   logistic baseline's on the same split for scale. pytorch-forecasting comes with
   ``make bench-tft`` (extra ``tft-reference``); without it this part records that it was skipped.
2. A whole walk-forward on the sample market (50 tickers, 2023-2024, the first 60 sessions only
   train), baseline, TFT and the plain TFT without its linear path (``tft_plain``), each in its own
   spawned process: wall time and peak memory (VmHWM).
3. TFT against the baseline on the same out-of-sample sessions: AUC, Brier skill, rank IC against
   5- and 10-session forward returns, the catalyst edge recovered (as ``bench_trading``), and the
   paper portfolio at the seed's limits (min confidence 0.70, next-open fills, 1 + 5 bp per side).
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pandas as pd

# python -m bench (make bench, the default .venv) skips this one without torch.
REQUIRES = {"torch": "make bench-tft runs it in .venv-tft"}
SPEED_TICKERS, SPEED_SESSIONS = 300, 750
QUICK_SPEED = (30, 200)
ENCODER, HIDDEN, HEADS, BATCH, LEARNING_RATE = 60, 16, 2, 128, 3e-3
VALIDATION_FRACTION, PURGE = 0.2, 10
WALK_TICKERS, WALK_SPAN, TRAINING_ONLY_SESSIONS = 50, ("2023-01-03", "2024-12-31"), 60
QUICK_WALK = (10, ("2024-01-02", "2024-12-31"))
WIDE_TICKERS = 500  # the default universe
CONFIDENT = 0.70
# Each in its own process: the baseline, the TFT (its defaults: a linear path on the baseline's
# inputs beside the network), the plain TFT (the network alone, no linear path).
WALK_MODELS = ("baseline", "tft", "tft_plain")


def _round(value, digits: int = 4):
    return round(float(value), digits) if np.isfinite(value) else float("nan")


def _load() -> float:
    """The machine's 1-minute load average (2 cores; other work runs beside the benchmark)."""
    return round(os.getloadavg()[0], 2)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``getrusage``'s ru_maxrss: Linux carries
    that over ``exec``, so a spawned child would report its parent's peak at fork time."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- 1. speed against pytorch-forecasting ------------------------------------------------------


def _speed_data(n_tickers: int, n_sessions: int):
    from tft_pipeline.model import add_history_inputs, triple_barrier_labels
    from tft_pipeline.model.synthetic import synthetic_market

    market = synthetic_market(n_tickers, n_sessions, seed=11)
    snapshots = add_history_inputs(market.snapshots.reset_index(drop=True))
    labels = triple_barrier_labels(snapshots, market.prices)
    snapshots = snapshots.assign(label=labels["label"].to_numpy())
    # Samples with a full encoder of snapshots (both libraries see the same windows) and a label.
    snapshots = snapshots.sort_values(["ticker", "session_date"], ignore_index=True)
    snapshots["time_idx"] = snapshots.groupby("ticker").cumcount()
    usable = snapshots["label"].notna() & (snapshots["time_idx"] >= ENCODER - 1)
    # The split TFTSignalModel.fit makes of the usable rows: the latest fifth of their sessions
    # validates, the fitting part ends PURGE sessions before it.
    sessions = np.sort(snapshots.loc[usable, "session_date"].unique())
    cut = int(len(sessions) * (1 - VALIDATION_FRACTION))
    validation = usable & (snapshots["session_date"] >= sessions[cut])
    fitting = usable & (snapshots["session_date"] < sessions[cut - PURGE])
    return snapshots, fitting.to_numpy(), validation.to_numpy(), usable.to_numpy()


def _ours(snapshots, usable) -> dict:
    import torch._dynamo  # noqa: F401 - imported by the first optimizer (5 s), as lightning does

    from tft_pipeline.model.tft import TFTSignalModel

    model = TFTSignalModel(
        # The network alone, as the stock TFT is: the linear path (a logistic regression fitted
        # first) and its significance gate would make this a comparison of something else.
        linear_inputs=(),
        encoder_length=ENCODER,
        hidden=HIDDEN,
        heads=HEADS,
        batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        max_epochs=1,
        validation_fraction=VALIDATION_FRACTION,
        purge_sessions=PURGE,
    )
    rows = snapshots[usable]
    load = _load()
    started, cpu = time.perf_counter(), time.process_time()
    fitted = model.fit(rows, rows["label"].to_numpy(), history=snapshots)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    report = fitted.fit_report
    return {
        # The whole fit: one epoch, the validation pass, calibration and variable importance.
        "ours_fit_seconds_1_epoch": round(seconds, 1),
        "ours_fit_cpu_seconds_1_epoch": round(cpu, 1),
        "ours_load_before": load,
        "ours_train_samples": report.n_fit,
        "ours_validation_samples": report.n_validation,
        "ours_validation_log_loss": _round(report.validation_loss),
        "ours_validation_log_loss_calibrated": _round(report.calibrated_validation_loss),
        "ours_parameters": sum(p.numel() for p in fitted.loaded_state().state_dict.values()),
    }


def _reference(snapshots, fitting, validation) -> dict:
    try:
        import lightning.pytorch as pl
        import torch
        from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet
        from pytorch_forecasting.data.encoders import NaNLabelEncoder
        from pytorch_forecasting.metrics import CrossEntropy
    except ImportError:
        return {"reference": "skipped: pytorch-forecasting not installed (make bench-tft)"}
    from tft_pipeline.model import ALL_INPUTS, model_inputs

    torch.set_num_threads(1)
    pl.seed_everything(42, workers=True)
    frame = snapshots[["ticker", "session_date", "time_idx"]].copy()
    inputs = model_inputs(snapshots, ALL_INPUTS)
    fit_inputs = inputs[fitting]
    frame[list(ALL_INPUTS)] = (
        ((inputs - fit_inputs.mean()) / fit_inputs.std()).clip(-5, 5).fillna(0)
    )
    # The decision at session t is the decoder step t + 1: its target is t's label, its encoder
    # the 60 sessions up to t (the inputs are unknown in the future, as in ours).
    frame["target"] = snapshots.groupby("ticker")["label"].shift(1)
    frame["target"] = frame["target"].fillna(0).astype(int).astype(str)
    frame["ticker"] = frame["ticker"].astype(str)
    fit_keys = set(zip(frame["ticker"][fitting], frame["time_idx"][fitting], strict=True))
    val_keys = set(zip(frame["ticker"][validation], frame["time_idx"][validation], strict=True))
    common = {
        "time_idx": "time_idx",
        "target": "target",
        "group_ids": ["ticker"],
        "static_categoricals": ["ticker"],
        "time_varying_unknown_reals": list(ALL_INPUTS),
        "max_encoder_length": ENCODER,
        "min_encoder_length": ENCODER,
        "max_prediction_length": 1,
        "target_normalizer": NaNLabelEncoder(),
        "add_relative_time_idx": False,
        "add_target_scales": False,
        "add_encoder_length": False,
    }
    dataset = TimeSeriesDataSet(frame, **common)

    def decided_in(keys):
        # A sample's decoder step is the session after its decision.
        return lambda index: pd.Series(
            [
                (ticker, step - 1) in keys
                for ticker, step in zip(
                    index["ticker"], index["time_idx_first_prediction"], strict=True
                )
            ],
            index=index.index,
        )

    train_set = dataset.filter(decided_in(fit_keys))
    val_set = dataset.filter(decided_in(val_keys))
    training = dataset
    train_loader = train_set.to_dataloader(train=True, batch_size=BATCH, num_workers=0)
    val_loader = val_set.to_dataloader(train=False, batch_size=1024, num_workers=0)
    model = TemporalFusionTransformer.from_dataset(
        training,
        hidden_size=HIDDEN,
        attention_head_size=HEADS,
        dropout=0.1,
        hidden_continuous_size=HIDDEN,
        output_size=2,
        loss=CrossEntropy(),
        learning_rate=LEARNING_RATE,
        optimizer="adam",
        log_interval=-1,
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=1.0,
        deterministic=True,
    )
    load = _load()
    started, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, train_dataloaders=train_loader)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    model.eval()
    probabilities, targets = [], []
    one = training.target_normalizer.classes_["1"]
    with torch.no_grad():
        for x, y in val_loader:
            logits = model(x)["prediction"][:, 0, :]
            probabilities.append(torch.softmax(logits, dim=-1)[:, one].numpy())
            targets.append((y[0][:, 0] == one).numpy())
    p = np.clip(np.concatenate(probabilities).astype("float64"), 1e-7, 1 - 1e-7)
    t = np.concatenate(targets).astype("float64")
    log_loss = float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
    return {
        "reference_epoch_seconds": round(seconds, 1),
        "reference_epoch_cpu_seconds": round(cpu, 1),
        "reference_load_before": load,
        "reference_train_samples": len(train_set.index),
        "reference_validation_samples": len(t),
        "reference_validation_log_loss": _round(log_loss),
        "reference_parameters": sum(p.numel() for p in model.parameters()),
    }


def _logistic(snapshots, fitting, validation) -> dict:
    """The logistic baseline (all inputs) on the same split, for scale: what a linear model gets."""
    from tft_pipeline.model import ALL_INPUTS, LogisticBaseline

    labels = snapshots["label"].to_numpy(dtype="float64")
    fitted = LogisticBaseline(inputs=ALL_INPUTS).fit(snapshots[fitting], labels[fitting])
    p = np.clip(fitted.predict_proba(snapshots[validation]), 1e-7, 1 - 1e-7)
    t = labels[validation]
    return {
        "logistic_validation_log_loss": _round(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
    }


def speed_figures(n_tickers: int, n_sessions: int) -> dict:
    """Ours, the stock TFT, ours again (A/B/A in one process), so load that comes and goes during
    the run weighs on both; ours' figures are the mean of its two runs (identical weights: the
    second run also checks determinism)."""
    snapshots, fitting, validation, usable = _speed_data(n_tickers, n_sessions)
    figures: dict = {"speed_tickers": n_tickers, "speed_sessions": n_sessions}
    first = _ours(snapshots, usable)
    figures.update(_reference(snapshots, fitting, validation))
    second = _ours(snapshots, usable)
    figures.update(first)
    for key in ("ours_fit_seconds_1_epoch", "ours_fit_cpu_seconds_1_epoch"):
        figures[f"{key}_runs"] = f"{first[key]} / {second[key]}"
        figures[key] = round((first[key] + second[key]) / 2, 1)
    figures["ours_load_before_runs"] = f"{first['ours_load_before']} / {second['ours_load_before']}"
    del figures["ours_load_before"]
    figures["ours_deterministic"] = (
        first["ours_validation_log_loss"] == second["ours_validation_log_loss"]
    )
    figures.update(_logistic(snapshots, fitting, validation))
    if "reference_epoch_seconds" in figures:
        figures["ours_time_share_of_reference"] = _round(
            figures["ours_fit_seconds_1_epoch"] / figures["reference_epoch_seconds"], 3
        )
        figures["ours_cpu_share_of_reference"] = _round(
            figures["ours_fit_cpu_seconds_1_epoch"] / figures["reference_epoch_cpu_seconds"], 3
        )
    return figures


# --- 2 and 3. the walk-forward on the sample market, TFT against the baseline ---------------------


def _market(n_tickers: int, span: tuple[str, str]):
    from bench.bench_trading import _chain
    from tft_pipeline.trading_calendar import sessions_between
    from tft_pipeline.universe import DEFAULT_UNIVERSE

    tickers = DEFAULT_UNIVERSE[:n_tickers]
    sessions = sessions_between(*span)
    snapshots, prices = _chain(tickers, sessions)
    return tickers, sessions, snapshots, prices


def _walk_child(which: str, n_tickers: int, span, queue) -> None:
    """One walk-forward in its own process, so its peak memory is its own."""
    from tft_pipeline.model import LogisticBaseline, walk_forward

    _tickers, sessions, snapshots, prices = _market(n_tickers, span)
    if which.startswith("tft"):
        from tft_pipeline.model.tft import TFTSignalModel

        # tft_plain: the network alone, without the linear path on the baseline's inputs.
        model = TFTSignalModel() if which == "tft" else TFTSignalModel(linear_inputs=())
    else:
        model = LogisticBaseline()
    rss_before = _peak_rss_mb()
    load = _load()
    started = time.perf_counter()
    result = walk_forward(snapshots, prices, sessions[TRAINING_ONLY_SESSIONS:], model=model)
    seconds = time.perf_counter() - started
    queue.put(
        {
            "signals": result.signals,
            "seconds": seconds,
            "load_before": load,
            "rss_before_mb": rss_before,
            "max_rss_mb": _peak_rss_mb(),
            "models": len(result.models),
            "with_skill": sum(m.metrics.has_skill for m in result.models),
            "holdout_auc": [m.metrics.auc for m in result.models],
            "warm_started": sum(m.warm_start_from is not None for m in result.models),
            "network_kept": sum(
                bool(getattr(m.estimator, "network_kept", False)) for m in result.models
            ),
            "epochs": [m.epochs for m in result.models],
            "training_seconds": [m.training_seconds for m in result.models],
            "importance": (
                result.models[-1].estimator.variable_importance.to_dict("records")
                if which.startswith("tft") and result.models
                else None
            ),
        }
    )


def _in_child(which: str, n_tickers: int, span) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_walk_child, args=(which, n_tickers, span, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _judge(prefix, signals, tickers, scored, snapshots, prices) -> dict:
    from tft_pipeline.backtest import backtest_report
    from tft_pipeline.model import edge_recovery_report, triple_barrier_labels
    from tft_pipeline.model.calibration import brier_score, brier_skill
    from tft_pipeline.portfolio import PortfolioConfig, run_paper_portfolio
    from tft_pipeline.risk import RiskLimits, RiskManager
    from tft_pipeline.sample_market import catalyst_edge_summary, catalyst_events

    keys = ["ticker", "session_date"]
    all_labels = triple_barrier_labels(snapshots, prices)
    labels = all_labels[[*keys, "label"]]
    resolved = signals.merge(labels, on=keys, how="left")
    resolved = resolved[resolved["label"].notna()]
    base_rate = float(resolved["label"].mean())
    known_rate = resolved["model_version"].map(_known_base_rates(all_labels, resolved))
    edge5 = edge_recovery_report(snapshots, prices, signals, ic_horizon=5)
    edge10 = edge_recovery_report(snapshots, prices, signals)
    confident = resolved[resolved["confidence"] >= CONFIDENT]
    events = catalyst_events(tickers, scored).assign(event=lambda e: e["direction"])
    truth = catalyst_edge_summary(tickers, scored)
    with_events = resolved.merge(events[[*keys, "event"]], on=keys, how="left")
    bullish = with_events[with_events["event"] == 1]
    event_hit, base_long = truth["hit_rate_bullish"], truth["base_hit_rate_long"]
    confident_hit = float(confident["label"].mean()) if len(confident) else float("nan")
    ledger = run_paper_portfolio(
        signals, prices, scored, RiskManager(RiskLimits()), config=PortfolioConfig()
    )
    report = backtest_report(ledger.equity, ledger.positions, prices, scored)
    return {
        f"{prefix}oos_signals": len(resolved),
        f"{prefix}auc": _round(edge10["auc"]),
        f"{prefix}brier_skill": _round(
            brier_skill(resolved["confidence"], resolved["label"], base_rate)
        ),
        # Against the base rate each version knew (its training window's): the skill a trader
        # could have had, not the hindsight one above.
        f"{prefix}brier_skill_known_rate": _round(
            1.0
            - brier_score(resolved["confidence"], resolved["label"])
            / brier_score(known_rate, resolved["label"])
        ),
        f"{prefix}rank_ic_5": _round(edge5["ic_mean"]),
        f"{prefix}rank_ic_10": _round(edge10["ic_mean"]),
        f"{prefix}planted_sentiment_ic_5": _round(edge5["sentiment_ic_mean"]),
        f"{prefix}ic5_share_of_sentiment_ic": _round(edge5["ic_mean"] / edge5["sentiment_ic_mean"]),
        f"{prefix}signals_ge_0_70": len(confident),
        f"{prefix}hit_rate_ge_0_70": _round(confident_hit),
        f"{prefix}catalyst_edge_recovered_share": _round(
            (confident_hit - base_long) / (event_hit - base_long)
        ),
        f"{prefix}catalyst_recall_ge_0_70": _round((bullish["confidence"] >= CONFIDENT).mean()),
        f"{prefix}portfolio_trades": report.trades,
        f"{prefix}portfolio_hit_rate": _round(report.hit_rate),
        f"{prefix}portfolio_net_pnl": _round(report.total_pnl, 2),
        f"{prefix}portfolio_total_return_net": _round(report.total_return),
        f"{prefix}portfolio_max_drawdown": _round(report.max_drawdown),
    }


def _known_base_rates(labels: pd.DataFrame, resolved: pd.DataFrame) -> dict[str, float]:
    """Each model version's training base rate: the labels of its window (``<train start>-<as
    of>-...`` in the version) known before its as-of, as ``training_mask`` picks them."""
    known_on = labels["label_known_on"].to_numpy(dtype="datetime64[ns]")
    session = labels["session_date"].to_numpy(dtype="datetime64[ns]")
    value = labels["label"].to_numpy(dtype="float64")
    rates = {}
    for version in resolved["model_version"].unique():
        start, as_of = (np.datetime64(pd.Timestamp(part), "ns") for part in version.split("-")[:2])
        mask = ~np.isnan(value) & (known_on < as_of) & (session >= start)
        rates[version] = float(value[mask].mean())
    return rates


def walk_figures(
    n_tickers: int, span: tuple[str, str], models: tuple[str, ...] = WALK_MODELS
) -> dict:
    tickers, sessions, snapshots, prices = _market(n_tickers, span)
    scored = sessions[TRAINING_ONLY_SESSIONS:]
    figures: dict = {
        "walk_tickers": n_tickers,
        "walk_sessions": len(sessions),
        "walk_scored_sessions": len(scored),
    }
    for which in models:
        result = _in_child(which, n_tickers, span)
        prefix = f"{which}_"
        figures[f"{prefix}walk_forward_s"] = round(result["seconds"], 1)
        figures[f"{prefix}peak_rss_mb"] = round(result["max_rss_mb"])
        # The peak before the walk-forward: the interpreter, the libraries and the sample market.
        figures[f"{prefix}peak_rss_before_walk_mb"] = round(result["rss_before_mb"])
        figures[f"{prefix}walk_load_before"] = result["load_before"]
        figures[f"{prefix}models"] = result["models"]
        figures[f"{prefix}models_with_skill"] = result["with_skill"]
        figures[f"{prefix}mean_holdout_auc"] = _round(np.nanmean(result["holdout_auc"]))
        if which.startswith("tft"):
            figures[f"{prefix}models_warm_started"] = result["warm_started"]
            figures[f"{prefix}models_network_kept"] = result["network_kept"]
            figures[f"{prefix}mean_epochs"] = _round(np.mean(result["epochs"]), 2)
            figures[f"{prefix}mean_seconds_per_version"] = _round(
                np.mean(result["training_seconds"]), 1
            )
            if result["importance"]:
                figures[f"{prefix}latest_importance_top5"] = ", ".join(
                    f"{row['variable']} {row['importance']:.3f}" for row in result["importance"][:5]
                )
        figures.update(_judge(prefix, result["signals"], tickers, scored, snapshots, prices))
    return figures


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "pytorch-forecasting", "lightning"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return {
        "versions": ", ".join(f"{name} {v}" for name, v in found.items()),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
    }


def run(quick: bool = False, parts: tuple[str, ...] = ("speed", "walk")) -> dict:
    """``python -m bench tft`` runs speed and walk; ``python -m bench.bench_tft wide`` (not in
    ``make bench``: about half an hour) the baseline and the TFT on the whole default universe,
    as ``bench_trading`` judges the baseline."""
    figures: dict = _versions()
    if "speed" in parts:
        figures.update(speed_figures(*(QUICK_SPEED if quick else (SPEED_TICKERS, SPEED_SESSIONS))))
    if "walk" in parts:
        figures.update(walk_figures(*(QUICK_WALK if quick else (WALK_TICKERS, WALK_SPAN))))
    if "wide" in parts:
        size = QUICK_WALK if quick else (WIDE_TICKERS, WALK_SPAN)
        wide = walk_figures(*size, models=("baseline", "tft"))
        figures.update({f"wide_{key}": value for key, value in wide.items()})
    return figures


if __name__ == "__main__":
    import json
    import sys

    chosen = tuple(arg for arg in sys.argv[1:] if not arg.startswith("--")) or ("speed", "walk")
    figures = run(quick="--quick" in sys.argv, parts=chosen)
    for name, value in figures.items():
        print(f"{name:45s} {value}")
    print("JSON " + json.dumps(figures, default=str))
