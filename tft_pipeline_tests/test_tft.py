"""The Temporal Fusion Transformer (TFT_SIGNAL_MODEL=tft): a tiny one trained and scored through the
real assets, determinism, checkpoints loaded by path, the model versions table, attention.

Needs the optional extra (torch): marked ``tft``, run by ``make test-tft`` in .venv-tft (and CI),
left out of ``make test``. torch is imported inside the tests, so collecting this module in the
default venv costs nothing.
"""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.tft

FIRST, LAST = "2024-01-02", "2024-03-28"
SETTINGS = {"TFT_SIGNAL_MODEL": "tft", "TFT_RISK_MIN_CONFIDENCE": "0.25"}
# Tiny: a short encoder, a small network, one epoch (a few seconds per fit on one thread).
TINY = {"encoder_length": 10, "hidden": 8, "heads": 2, "max_epochs": 1, "warm_start_epochs": 1}


def tiny_model(**params):
    from tft_pipeline.model.tft import TFTSignalModel

    return TFTSignalModel(**{**TINY, **params})


@pytest.fixture(scope="module")
def market():
    from tft_pipeline.model import add_history_inputs, triple_barrier_labels
    from tft_pipeline.model.synthetic import synthetic_market

    generated = synthetic_market(8, 160, seed=3)
    snapshots = add_history_inputs(generated.snapshots.reset_index(drop=True))
    labels = triple_barrier_labels(snapshots, generated.prices)
    known = labels["label"].notna().to_numpy()
    return snapshots, generated.prices, snapshots[known], labels["label"][known].to_numpy()


def test_same_inputs_give_the_same_probabilities_and_a_checkpoint_reloads_them(market, tmp_path):
    from tft_pipeline.model.tft import TFTSignalModel

    snapshots, _, rows, y = market
    first = tiny_model().fit(rows, y, history=snapshots)
    second = tiny_model().fit(rows, y, history=snapshots)
    scored = rows.tail(40)
    p = first.predict_proba(scored, history=snapshots)
    assert np.array_equal(p, second.predict_proba(scored, history=snapshots))
    assert ((p > 0) & (p < 1)).all() and p.std() > 0
    # Another seed is another fit: the test above can fail.
    other = TFTSignalModel(**{**TINY, "seed": 7}).fit(rows, y, history=snapshots)
    assert not np.array_equal(p, other.predict_proba(scored, history=snapshots))

    saved = first.save(tmp_path / "v1" / "checkpoint.pt")
    assert saved.state is None and saved.checkpoint.endswith("checkpoint.pt")
    restored = pickle.loads(pickle.dumps(saved))  # the pickle keeps the path, not the weights
    assert restored.state is None
    assert np.array_equal(p, restored.predict_proba(scored, history=snapshots))
    assert np.array_equal(p, TFTSignalModel.load(saved.checkpoint).predict_proba(scored, snapshots))

    importance = first.variable_importance
    assert set(importance["variable"]) == {*first.inputs, "present"}
    assert importance["importance"].sum() == pytest.approx(1.0)
    attention = first.attention(scored, history=snapshots)
    assert attention.shape == (len(scored), TINY["encoder_length"])
    assert np.allclose(attention.sum(axis=1), 1.0)
    report = first.fit_report
    assert report.epochs == 1 and report.n_validation > 0 and report.warm_started_from is None


def test_the_encoder_reads_only_past_sessions(market):
    """Changing a ticker's features after session D leaves D's probability unchanged."""
    snapshots, _, rows, y = market
    fitted = tiny_model().fit(rows, y, history=snapshots)
    day = pd.Timestamp(np.sort(snapshots["session_date"].unique())[120])
    row = snapshots[
        (snapshots["session_date"] == day) & (snapshots["ticker"] == rows["ticker"].iloc[0])
    ]
    later = snapshots["session_date"] > day
    changed = snapshots.copy()
    changed.loc[later, "mention_sentiment"] = 5.0
    changed.loc[later, "ret_1"] = -0.5
    before = fitted.predict_proba(row, history=snapshots)
    assert np.array_equal(before, fitted.predict_proba(row, history=changed))
    earlier = snapshots["session_date"].between(day - pd.Timedelta(days=5), day)
    changed.loc[earlier, "ret_1"] = 0.3
    assert not np.array_equal(before, fitted.predict_proba(row, history=changed))


def test_a_warm_start_parent_was_trained_before_the_fits_validation_part(market):
    from tft_pipeline.model.walk_forward import WalkForwardConfig, walk_forward

    snapshots, prices, _, _ = market
    sessions = np.sort(snapshots["session_date"].unique())
    config = WalkForwardConfig(retrain_every=10, min_train_rows=100, train_window_sessions=60)
    result = walk_forward(snapshots, prices, sessions[90:], model=tiny_model(), config=config)
    by_version = {trained.version: trained for trained in result.models}
    warm = [trained for trained in result.models if trained.warm_start_from]
    assert warm, "no version of the run warm-started"
    for trained in result.models:
        assert trained.epochs == 1 and trained.training_seconds > 0
    for trained in warm:
        parent = by_version[trained.warm_start_from]
        assert parent.as_of < trained.as_of
        assert parent.estimator.fit_report.n_fit > 0
        rows = snapshots[
            (snapshots["session_date"] >= trained.train_start)
            & (snapshots["session_date"] <= trained.train_end)
        ]
        assert parent.last_label_known_on < trained.estimator.validation_start(rows)


@pytest.fixture(scope="module")
def tft_pipeline_run(tmp_path_factory):
    from dagster import DagsterInstance

    import tft_pipeline.defs.assets.signals as signal_module
    from tft_pipeline_tests.conftest import Pipeline

    patch = pytest.MonkeyPatch()
    # The network alone (no linear path): a one-epoch network on 12 tickers does not beat the
    # linear path, so with it no version would keep its network and the attention path would have
    # nothing to read. The linear path and its bar are tested on their own below.
    patch.setattr(signal_module, "signal_model", lambda settings: tiny_model(linear_inputs=()))
    try:
        with DagsterInstance.ephemeral() as instance:
            folder = tmp_path_factory.mktemp("tft")
            pipeline = Pipeline(folder / "warehouse.duckdb", instance, SETTINGS)
            result = pipeline.run(FIRST, LAST)
            assert result.success
            yield pipeline, result
    finally:
        patch.undo()


def test_the_tft_scores_sessions_through_the_real_assets(tft_pipeline_run):
    pipeline, _ = tft_pipeline_run
    signals = pipeline.table("signals.trading_signals")
    assert len(signals) and set(signals["model"]) == {"tft"}
    assert signals["confidence"].between(0, 1).all() and signals["confidence"].std() > 0
    versions = pipeline.table("signals.model_versions")
    assert set(versions["model"]) == {"tft"}
    assert set(pd.to_datetime(versions["session_date"])) == set(
        pd.to_datetime(signals["session_date"])
    )
    assert (pd.to_datetime(versions["train_end"]) < pd.to_datetime(versions["trained_as_of"])).all()
    for column in ("holdout_auc", "holdout_brier_skill", "training_seconds"):
        assert versions[column].notna().all(), column
    assert (versions["epochs"] == 1).all()
    for text in versions["holdout_reliability"]:
        assert json.loads(text), "every version has its holdout reliability table"
    folder = pipeline.warehouse_path.parent
    for _, row in versions.drop_duplicates("model_version").iterrows():
        assert row["checkpoint"] == f"models/tft-{row['model_version']}/checkpoint.pt"
        assert (folder / row["checkpoint"]).is_file()
        trained = pickle.loads((folder / row["artifact"]).read_bytes())
        # Loaded by path: the pickled model holds the checkpoint's path, not the weights.
        assert trained.estimator.state is None
        assert trained.estimator.checkpoint == str(folder / row["checkpoint"])
        importance = pd.DataFrame(json.loads(row["variable_importance"]))
        assert importance["importance"].sum() == pytest.approx(1.0, abs=1e-4)
        # Whether the version's network adds to its confidence (or it kept its linear start).
        assert row["network_kept"] == trained.estimator.network_kept


def test_model_versions_metadata_shows_variable_importance(tft_pipeline_run):
    _, result = tft_pipeline_run
    events = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key.path == ["signals", "model_versions"]
    ]
    scored = [e for e in events if "variable_importance" in e.materialization.metadata]
    assert scored
    metadata = scored[-1].materialization.metadata
    assert "data:image/png;base64," in metadata["variable_importance_chart"].value
    assert "mention_sentiment" in metadata["variable_importance"].value


def test_accepted_signals_get_their_attention_over_past_sessions(tft_pipeline_run):
    """The attention asset ran; a one-epoch TFT on 12 tickers has no out-of-sample skill, so the
    risk manager's skill gate accepts none of its signals and the table is empty. The same code
    path is then run on every signal of the run, as if all were accepted, from the stored
    versions (checkpoints loaded by path): attention for the signals of the versions whose
    network adds to the confidence, none for a version that is its linear path alone."""
    from tft_pipeline.defs.assets.signals import attention_rows

    pipeline, _ = tft_pipeline_run
    accepted = pipeline.table("signals.risk_filtered_signals")
    attention = pipeline.table("signals.signal_attention")
    assert len(attention) == len(accepted)
    signals = pipeline.table("signals.trading_signals")
    versions = pipeline.table("signals.model_versions")
    snapshots = pipeline.table("features.feature_snapshots")
    rows = attention_rows(signals, versions, snapshots, pipeline.warehouse_path.parent)
    keys = ["ticker", "session_date"]
    assert versions["network_kept"].astype(bool).all()
    assert len(rows) == len(signals)
    assert sorted(map(tuple, rows[keys].astype(str).to_numpy())) == sorted(
        map(tuple, signals[keys].astype(str).to_numpy())
    )
    for text, top in zip(rows["attention"], rows["top_sessions"], strict=True):
        weights = json.loads(text)
        assert len(weights) == TINY["encoder_length"] and sum(weights) == pytest.approx(1, abs=1e-3)
        best = json.loads(top)[0]
        assert best["weight"] == pytest.approx(max(weights), abs=1e-5)
    one = rows.iloc[0]
    assert json.loads(one["top_sessions"])[0]["session_date"] <= f"{one['session_date']:%Y-%m-%d}"


def test_retrained_from_scratch_the_run_gives_the_same_signals(tft_pipeline_run):
    """Deterministic on CPU: with the stored versions removed, the same run fits them again and
    writes the same signals and versions."""
    pipeline, _ = tft_pipeline_run
    before = pipeline.table("signals.trading_signals")
    versions_before = pipeline.table("signals.model_versions")
    shutil.rmtree(pipeline.warehouse_path.parent / "models")
    assert pipeline.run(FIRST, LAST).success
    after = pipeline.table("signals.trading_signals")
    keys = ["session_date", "ticker"]
    pd.testing.assert_frame_equal(
        before.sort_values(keys, ignore_index=True), after.sort_values(keys, ignore_index=True)
    )
    versions_after = pipeline.table("signals.model_versions")
    assert list(versions_before["model_version"]) == list(versions_after["model_version"])


def test_the_linear_path_starts_from_the_logistic_regression_and_the_network_must_earn_its_place(
    market, tmp_path
):
    """With ``linear_inputs`` a fit starts from the baseline's logistic regression on those inputs
    of the decision session (the network's head zeroed), and keeps the network's weights only when
    they beat that start on the validation sessions by ``min_gain_z`` standard errors."""
    from sklearn.linear_model import LogisticRegression

    from tft_pipeline.model import DEFAULT_INPUTS
    from tft_pipeline.model.baseline import model_inputs
    from tft_pipeline.model.tft import TFTSignalModel

    snapshots, _, rows, y = market
    linear = {**TINY, "linear_inputs": DEFAULT_INPUTS, "max_epochs": 2}
    # An unreachable bar: the start is kept, so the model is the logistic regression alone.
    kept = TFTSignalModel(**linear, min_gain_z=float("inf")).fit(rows, y, history=snapshots)
    state = kept.loaded_state()
    assert kept.fit_report.best_epoch == 0 and kept.fit_report.epochs >= 1
    assert not state.state_dict["head.weight"].any() and not state.state_dict["head.bias"].any()
    inputs = list(kept.inputs)
    sessions = np.sort(rows["session_date"].unique())
    cut = int(len(sessions) * (1 - kept.validation_fraction))
    fitting = (rows["session_date"] < sessions[cut - kept.purge_sessions]).to_numpy()
    raw = model_inputs(rows.reset_index(drop=True), kept.inputs).to_numpy("float64")
    standardized = np.nan_to_num(np.clip((raw - state.mean) / state.scale, -5, 5))
    index = [inputs.index(name) for name in DEFAULT_INPUTS]
    expected = LogisticRegression(C=0.1, max_iter=500).fit(
        standardized[fitting][:, index].astype("float32").astype("float64"), y[fitting]
    )
    assert np.allclose(state.state_dict["linear.weight"].numpy(), expected.coef_, atol=1e-4)
    # Its importance is then the linear path's (standardized coefficient magnitudes), not the
    # selection weights of a network that adds nothing.
    assert not kept.network_kept and not kept.fit_report.network_kept
    importance = kept.variable_importance.set_index("variable")["importance"]
    shares = np.abs(expected.coef_.ravel()) / np.abs(expected.coef_).sum()
    assert np.allclose(importance[list(DEFAULT_INPUTS)], shares, atol=1e-4)
    assert importance.drop(list(DEFAULT_INPUTS)).eq(0).all()
    a, b = state.calibration
    logit = expected.decision_function(standardized[:, index])
    assert np.allclose(
        kept.predict_proba(rows, history=snapshots), 1 / (1 + np.exp(-(a * logit + b))), atol=1e-4
    )
    # No bar: the epoch with the lowest validation loss wins, as without the linear path.
    free = TFTSignalModel(**linear, min_gain_z=-float("inf")).fit(rows, y, history=snapshots)
    report = free.fit_report
    assert report.best_epoch >= 1 and report.network_kept and free.network_kept
    assert report.validation_loss < kept.fit_report.validation_loss
    # A checkpoint keeps the linear path and its inputs.
    saved = kept.save(tmp_path / "linear" / "checkpoint.pt")
    loaded = TFTSignalModel.load(saved.checkpoint)
    assert loaded.linear_inputs == DEFAULT_INPUTS
    scored = rows.tail(30)
    assert np.array_equal(
        kept.predict_proba(scored, history=snapshots), loaded.predict_proba(scored, snapshots)
    )
    with pytest.raises(ValueError, match="linear_inputs"):
        TFTSignalModel(inputs=DEFAULT_INPUTS[:2], linear_inputs=DEFAULT_INPUTS)


def test_the_gain_of_the_network_is_judged_per_session():
    from tft_pipeline.model.tft import _gain_z

    sessions = np.repeat(np.arange(50), 20)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, len(sessions))
    assert _gain_z(noise, sessions) < 2  # a gain that is noise does not pass
    assert _gain_z(noise + 0.05, sessions) > 2  # a steady one does
    # One lucky session carries a mean gain but not a steady one.
    lucky = np.where(sessions == 0, 3.0, 0.0) + noise
    assert lucky.mean() > 0.05 and _gain_z(lucky, sessions) < 2


@pytest.mark.parametrize("min_gain_z", [float("inf"), -float("inf")])
def test_a_version_that_is_its_linear_path_alone_stores_no_attention(market, tmp_path, min_gain_z):
    """Attention is stored for the signals of versions whose network adds to the confidence only:
    with an unreachable bar every version is its linear path alone and none is stored; with no
    bar the signals of every version that kept its network get theirs."""
    from tft_pipeline.defs.assets.signals import attention_rows
    from tft_pipeline.model.walk_forward import ModelStore, WalkForwardConfig, walk_forward

    snapshots, prices, _, _ = market
    sessions = np.sort(snapshots["session_date"].unique())
    config = WalkForwardConfig(retrain_every=20, min_train_rows=100, train_window_sessions=80)
    store = ModelStore(tmp_path / "models")
    model = tiny_model(min_gain_z=min_gain_z)
    result = walk_forward(
        snapshots, prices, sessions[120:], model=model, config=config, store=store
    )
    kept = {t.version for t in result.models if t.estimator.network_kept}
    # No bar: a version keeps its network when any epoch lowered the validation loss at all.
    assert bool(kept) == (min_gain_z < 0)
    versions = pd.DataFrame(
        {
            "model_version": [trained.version for trained in result.models],
            "artifact": [
                f"models/{store.folder(trained.name, trained.version).name}/trained.pkl"
                for trained in result.models
            ],
        }
    )
    rows = attention_rows(result.signals, versions, snapshots, tmp_path)
    with_network = result.signals[result.signals["model_version"].isin(kept)]
    assert len(result.signals) and len(rows) == len(with_network)
    assert set(rows["model_version"]) == kept


def test_a_checkpoint_from_before_the_linear_path_loads_as_the_plain_network(market, tmp_path):
    """Versions stored before ``linear_inputs`` existed (no such parameter in the checkpoint or
    the pickle) load as what they were, the network alone, and score as before."""
    import torch

    from tft_pipeline.model.tft import TFTSignalModel

    snapshots, _, rows, y = market
    plain = tiny_model(linear_inputs=()).fit(rows, y, history=snapshots)
    saved = plain.save(tmp_path / "old" / "checkpoint.pt")
    stored = torch.load(saved.checkpoint, weights_only=False)
    del stored["params"]["linear_inputs"], stored["params"]["min_gain_z"]
    torch.save(stored, saved.checkpoint)
    state = saved.__getstate__()
    del state["linear_inputs"]
    old_pickle = TFTSignalModel.__new__(TFTSignalModel)
    old_pickle.__setstate__(state)
    scored = rows.tail(30)
    expected = plain.predict_proba(scored, history=snapshots)
    for old in (TFTSignalModel.load(saved.checkpoint), old_pickle):
        assert old.linear_inputs == ()
        assert np.array_equal(expected, old.predict_proba(scored, history=snapshots))
