"""A lean Temporal Fusion Transformer (Lim et al. 2021) in torch, as a ``SignalModel`` (no Dagster).

Needs the optional extra ``tft`` (torch): import this module only when TFT_SIGNAL_MODEL=tft.

The network is the TFT's architecture for a one-step decision: a static ticker embedding and its
four context vectors, a variable selection network over the past covariates (all variables' gated
residual networks computed at once as batched matrix products, not a loop of modules), an LSTM
encoder over the last ``encoder_length`` sessions started from the static context, static
enrichment, interpretable multi-head attention from the decision session over the encoder (heads
share their value projection, so the averaged weights say which past sessions mattered), and a
position-wise GRN into one logit: P(target before stop), trained with binary cross-entropy.

``fit`` holds out the latest ``validation_fraction`` of training sessions (purged by the label
horizon), keeps the epoch with the lowest validation loss and calibrates the logit on that
validation part (Platt scaling), its intercept shifted to the whole window's base rate (a prior
shift: the base rate swings between periods), so ``confidence`` is a probability. Everything is
seeded and runs deterministic algorithms on ``TORCH_THREADS`` threads: the same inputs give the
same signals.

Windows are gathered from a dense ticker × session panel of the snapshot history: a row's encoder
is its ticker's ``encoder_length`` sessions up to and including its own (features are point in
time: each known at that session's close), zero-padded before the ticker's first snapshot with a
``present`` channel that says which sessions are real.
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from tft_pipeline.model.baseline import (
    ALL_INPUTS,
    DEFAULT_INPUTS,
    SKLEARN_THREADS,
    LogisticBaseline,
    model_inputs,
)

# One thread: on the 2-core machine shared with other processes, two torch threads were 8-20x
# slower per step under contention (../shared/TFT_FACTS.md); one held steady.
TORCH_THREADS = 1
CHECKPOINT_NAME = "checkpoint.pt"
PRESENT = "present"  # the extra input channel: 1 where the ticker has a snapshot that session


@contextlib.contextmanager
def torch_determinism(seed: int, threads: int = TORCH_THREADS) -> Iterator[None]:
    """Seeded, deterministic torch on ``threads`` threads; the previous settings come back after."""
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    # The setter torch.use_deterministic_algorithms calls, without the 10 s import of
    # torch._inductor it makes first (nothing here is compiled).
    torch._C._set_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch._C._set_deterministic_algorithms(previous_deterministic)


# --- the network -----------------------------------------------------------------------------


class GatedLinearUnit(nn.Module):
    def __init__(self, size_in: int, size_out: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(size_in, size_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.glu(self.linear(self.dropout(x)), dim=-1)


class GateAddNorm(nn.Module):
    def __init__(self, size: int, dropout: float) -> None:
        super().__init__()
        self.glu = GatedLinearUnit(size, size, dropout)
        self.norm = nn.LayerNorm(size)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.norm(self.glu(x) + residual)


class GatedResidualNetwork(nn.Module):
    """GRN(a, c) = LayerNorm(skip(a) + GLU(W1 ELU(W2 a + W3 c)))."""

    def __init__(
        self, size_in: int, hidden: int, size_out: int, dropout: float, context: int = 0
    ) -> None:
        super().__init__()
        self.skip = nn.Linear(size_in, size_out) if size_in != size_out else nn.Identity()
        self.fc1 = nn.Linear(size_in, hidden)
        self.context = nn.Linear(context, hidden, bias=False) if context else None
        self.fc2 = nn.Linear(hidden, hidden)
        self.gate = GateAddNorm(size_out, dropout) if hidden == size_out else None
        self.out = GatedLinearUnit(hidden, size_out, dropout) if hidden != size_out else None
        self.norm = nn.LayerNorm(size_out) if hidden != size_out else None

    def forward(self, a: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.fc1(a)
        if self.context is not None and c is not None:
            hidden = hidden + self.context(c)
        hidden = self.fc2(nn.functional.elu(hidden))
        if self.gate is not None:
            return self.gate(hidden, self.skip(a))
        return self.norm(self.out(hidden) + self.skip(a))


class VariableGRNs(nn.Module):
    """One GRN per input variable (hidden → hidden), all variables in one batched matmul."""

    def __init__(self, n_vars: int, hidden: int, dropout: float) -> None:
        super().__init__()
        scale = 1.0 / math.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(n_vars, hidden, hidden).uniform_(-scale, scale))
        self.b1 = nn.Parameter(torch.zeros(n_vars, hidden))
        self.w2 = nn.Parameter(torch.empty(n_vars, hidden, 2 * hidden).uniform_(-scale, scale))
        self.b2 = nn.Parameter(torch.zeros(n_vars, 2 * hidden))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., V, H] -> [..., V, H]
        hidden = nn.functional.elu(torch.einsum("...vh,vhk->...vk", x, self.w1) + self.b1)
        gated = torch.einsum("...vh,vhk->...vk", self.dropout(hidden), self.w2) + self.b2
        return self.norm(nn.functional.glu(gated, dim=-1) + x)


class TemporalFusionNet(nn.Module):
    """The TFT for one decision step; ``forward`` returns (logit, variable weights, attention)."""

    def __init__(
        self,
        n_vars: int,
        n_tickers: int,
        hidden: int,
        heads: int,
        dropout: float,
        linear_index: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError("hidden must be a multiple of heads")
        self.hidden, self.heads = hidden, heads
        # The linear skip path: a logistic regression on these inputs of the decision session,
        # added to the network's logit (see TFTSignalModel.linear_inputs).
        self.linear_index = tuple(linear_index)
        self.linear = nn.Linear(len(linear_index), 1) if linear_index else None
        # Static covariate: the ticker (index 0: one not seen in training).
        self.ticker = nn.Embedding(n_tickers + 1, hidden)
        self.static_contexts = nn.ModuleList(
            GatedResidualNetwork(hidden, hidden, hidden, dropout) for _ in range(4)
        )  # variable selection, enrichment, LSTM h0, LSTM c0
        # Variable selection network over the past covariates.
        self.var_weight = nn.Parameter(torch.randn(n_vars, hidden) * 0.1)
        self.var_bias = nn.Parameter(torch.zeros(n_vars, hidden))
        self.var_grns = VariableGRNs(n_vars, hidden, dropout)
        self.selection = GatedResidualNetwork(n_vars * hidden, hidden, n_vars, dropout, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.lstm_gate = GateAddNorm(hidden, dropout)
        self.enrichment = GatedResidualNetwork(hidden, hidden, hidden, dropout, hidden)
        # Interpretable multi-head attention: per-head queries and keys, one shared value.
        self.head_size = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, self.head_size)
        self.attention_out = nn.Linear(self.head_size, hidden)
        self.attention_gate = GateAddNorm(hidden, dropout)
        self.positionwise = GatedResidualNetwork(hidden, hidden, hidden, dropout)
        self.output_gate = GateAddNorm(hidden, dropout)
        self.head = nn.Linear(hidden, 1)

    def select(self, x: torch.Tensor, ticker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Variable selection of single sessions: x [U, V] of tickers [U] -> ([U, H], [U, V])."""
        c_select = self.static_contexts[0](self.ticker(ticker))
        embedded = x.unsqueeze(-1) * self.var_weight + self.var_bias  # [U, V, H]
        weights = torch.softmax(self.selection(embedded.flatten(1), c_select), dim=-1)
        return (self.var_grns(embedded) * weights.unsqueeze(-1)).sum(dim=1), weights

    def forward(
        self,
        x: torch.Tensor,
        step_ticker: torch.Tensor,
        window: torch.Tensor,
        ticker: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of B decisions. ``x`` [U, V] holds the distinct (ticker, session) steps the
        windows read, ``step_ticker`` [U] their tickers, ``window`` [B, T] each decision's steps
        (indices into U, oldest first), ``ticker`` [B]. Variable selection depends on one session
        alone, so each distinct step is selected once however many windows share it; the LSTM,
        enrichment and attention run per window."""
        batch, steps = window.shape
        static = self.ticker(ticker)
        _, c_enrich, c_h, c_c = (grn(static) for grn in self.static_contexts)
        selected_steps, weights = self.select(x, step_ticker)
        selected = selected_steps[window]  # [B, T, H]
        encoded, _ = self.lstm(selected, (c_h.unsqueeze(0), c_c.unsqueeze(0)))
        temporal = self.lstm_gate(encoded, selected)
        enriched = self.enrichment(temporal, c_enrich.unsqueeze(1))
        last = enriched[:, -1]
        q = self.query(last).view(batch, self.heads, self.head_size)
        k = self.key(enriched).view(batch, steps, self.heads, self.head_size)
        scores = torch.einsum("bhd,bthd->bht", q, k) / math.sqrt(self.head_size)
        attention = torch.softmax(scores, dim=-1).mean(dim=1)  # [B, T], heads averaged
        context = torch.einsum("bt,btd->bd", attention, self.value(enriched))
        attended = self.attention_gate(self.attention_out(context), last)
        out = self.output_gate(self.positionwise(attended), temporal[:, -1])
        logit = self.head(out).squeeze(-1)
        if self.linear is not None:
            logit = logit + self.linear(x[window[:, -1]][:, list(self.linear_index)]).squeeze(-1)
        return logit, weights, attention


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """Standardized inputs of a snapshot history as [ticker, padding + session, variable]."""

    values: np.ndarray  # float32
    ticker_rows: dict[str, int]
    session_columns: dict[pd.Timestamp, int]  # the session's column (padding included)

    def locate(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        ticker = rows["ticker"].map(self.ticker_rows).to_numpy(dtype="int64")
        session = (
            pd.to_datetime(rows["session_date"]).map(self.session_columns).to_numpy(dtype="int64")
        )
        return ticker, session

    def batch(
        self, ticker: np.ndarray, session: np.ndarray, static: np.ndarray, length: int
    ) -> tuple[torch.Tensor, ...]:
        """The network's inputs for decisions at (ticker row, session column), ``static`` their
        ticker indices: (distinct steps [U, V], their tickers [U], windows [B, T], tickers [B])."""
        columns = self.values.shape[1]
        steps = session[:, None] - np.arange(length - 1, -1, -1)[None, :]
        flat = (ticker[:, None] * columns + steps).ravel()
        distinct, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
        step_ticker = np.repeat(static, length)[first]
        return (
            torch.from_numpy(self.values.reshape(-1, self.values.shape[2])[distinct]),
            torch.from_numpy(step_ticker),
            torch.from_numpy(inverse.reshape(len(ticker), length)),
            torch.from_numpy(static),
        )


def build_panel(
    history: pd.DataFrame,
    inputs: tuple[str, ...],
    mean: np.ndarray,
    scale: np.ndarray,
    encoder_length: int,
) -> Panel:
    frame = history.drop_duplicates(["ticker", "session_date"], keep="last")
    features = model_inputs(frame, inputs).to_numpy(dtype="float64")
    features = np.nan_to_num(np.clip((features - mean) / scale, -5.0, 5.0))
    tickers = sorted(frame["ticker"].astype(str).unique())
    sessions = pd.DatetimeIndex(pd.to_datetime(frame["session_date"]).unique()).sort_values()
    pad = encoder_length - 1
    values = np.zeros((len(tickers), pad + len(sessions), len(inputs) + 1), dtype="float32")
    ticker_rows = {ticker: i for i, ticker in enumerate(tickers)}
    session_columns = {session: pad + j for j, session in enumerate(sessions)}
    panel = Panel(values, ticker_rows, session_columns)
    t, s = panel.locate(frame)
    values[t, s, :-1] = features
    values[t, s, -1] = 1.0
    return panel


# --- the signal model --------------------------------------------------------------------------


@dataclass(frozen=True)
class FitReport:
    """What one fit did: for model_versions and the benchmark."""

    epochs: int  # epochs run
    best_epoch: int  # the epoch whose weights were kept (lowest validation loss)
    train_seconds: float
    train_loss: float
    validation_loss: float  # BCE of the raw network on the validation sessions
    calibrated_validation_loss: float
    warm_started_from: str | None
    n_fit: int
    n_validation: int
    # False when a fit with a linear path kept its start (the network's head at zero): the version
    # is the logistic regression alone, its variable importance the linear path's standardized
    # coefficient magnitudes and it has no attention worth showing.
    network_kept: bool = True


@dataclass(frozen=True)
class TFTState:
    """A fitted model's weights and everything its inputs need, as saved in a checkpoint."""

    state_dict: Mapping[str, torch.Tensor]
    tickers: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    calibration: tuple[float, float]  # Platt: sigmoid(a * logit + b)
    variable_importance: tuple[tuple[str, float], ...]
    report: FitReport


@dataclass(frozen=True)
class TFTSignalModel:
    """The Temporal Fusion Transformer behind ``TFT_SIGNAL_MODEL=tft`` (see the module doc)."""

    inputs: tuple[str, ...] = ALL_INPUTS
    encoder_length: int = 60
    hidden: int = 16
    heads: int = 2
    dropout: float = 0.1
    batch_size: int = 128
    # A batch is batch_size / chunk_sessions runs of consecutive sessions of one ticker each, so
    # neighbouring windows share the variable selection of their common sessions.
    chunk_sessions: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    max_epochs: int = 4
    # Fewer epochs when warm-started from the previous version's weights.
    warm_start_epochs: int = 2
    patience: int = 2
    # The latest 40 % of the window validates (early stopping) and calibrates: on the sample
    # market's walk-forward 0.4 beat 0.2 (README, the TFT section).
    validation_fraction: float = 0.4
    purge_sessions: int = 10  # the label horizon: fitting labels resolve before validation starts
    seed: int = 42
    warm_start: bool = True
    # "window": Platt scaling fitted on the validation part, its intercept then shifted by the
    # log-odds from the validation part's base rate to the whole training window's (all labels
    # resolved before the fit's as-of); "validation": the Platt fit alone, which carries the
    # latest sessions' base rate into the next ones.
    calibration: str = "window"
    # A linear skip path: a logistic regression on these inputs of the decision session (the
    # baseline's inputs and regularization, fitted first on the fitting part), its logit added to
    # the network's, whose head starts at zero: training starts from the logistic regression and
    # keeps the network's part only where it lowers the validation loss significantly
    # (min_gain_z). On the sample market's walk-forward it lifted rank IC5 from +0.009 to +0.047
    # and the Brier skill against the base rate each version knew from +0.002 to +0.005
    # (README). () for the plain TFT.
    linear_inputs: tuple[str, ...] = DEFAULT_INPUTS
    linear_regularization: float = LogisticBaseline.regularization
    # With a linear path: how many standard errors the network's validation gain over the
    # linear path alone must reach for its weights to be kept (see ``_train``).
    min_gain_z: float = 2.0
    # Fitted state: the weights in memory, or the checkpoint they are loaded from by path.
    state: TFTState | None = field(default=None, compare=False, repr=False)
    checkpoint: str | None = field(default=None, compare=False)

    name = "tft"
    uses_history = True  # fit/predict read each row's encoder from the snapshot history

    def __post_init__(self) -> None:
        unknown = [name for name in self.linear_inputs if name not in self.inputs]
        if unknown:
            raise ValueError(f"linear_inputs {unknown} are not among the model's inputs")

    @property
    def params(self) -> Mapping[str, Any]:
        skip = {"state", "checkpoint"}
        return {key: value for key, value in vars(self).items() if key not in skip}

    # -- fitting ----------------------------------------------------------------------------

    def validation_start(self, snapshots: pd.DataFrame) -> pd.Timestamp:
        """The first session of the validation part ``fit`` keeps out of ``snapshots``: weights to
        warm-start from must have been trained on labels known before it, or the validation loss
        and the calibration on it would be in sample."""
        sessions = np.sort(pd.to_datetime(snapshots["session_date"]).unique())
        return pd.Timestamp(sessions[int(len(sessions) * (1.0 - self.validation_fraction))])

    def _network(self, n_tickers: int) -> TemporalFusionNet:
        linear_index = tuple(self.inputs.index(name) for name in self.linear_inputs)
        return TemporalFusionNet(
            len(self.inputs) + 1, n_tickers, self.hidden, self.heads, self.dropout, linear_index
        )

    def fit(
        self,
        snapshots: pd.DataFrame,
        labels: np.ndarray,
        history: pd.DataFrame | None = None,
        previous: TFTSignalModel | None = None,
    ) -> TFTSignalModel:
        """A fitted copy. ``snapshots`` are the training rows, ``history`` the snapshot frame their
        encoders are read from (default: the rows themselves); ``previous`` a fitted model to
        warm-start from (used when ``warm_start``)."""
        started = time.perf_counter()
        labels = np.asarray(labels, dtype="float32")
        if len(np.unique(labels)) < 2:
            raise ValueError("training labels hold a single class: nothing to learn")
        history = snapshots if history is None else history
        rows = snapshots.reset_index(drop=True)
        raw = model_inputs(rows, self.inputs).to_numpy(dtype="float64")
        mean = np.nan_to_num(np.nanmean(raw, axis=0)) if len(raw) else np.zeros(raw.shape[1])
        scale = np.nan_to_num(np.nanstd(raw, axis=0), nan=1.0)
        scale = np.where(scale > 1e-9, scale, 1.0)
        panel = build_panel(history, self.inputs, mean, scale, self.encoder_length)
        ticker_idx, session_idx = panel.locate(rows)
        tickers = tuple(sorted(rows["ticker"].astype(str).unique()))
        static = rows["ticker"].astype(str).map({t: i + 1 for i, t in enumerate(tickers)})
        data = _FitData(panel, ticker_idx, session_idx, static.to_numpy(dtype="int64"), labels)

        # Validation: the latest sessions; the fitting part stops purge_sessions before them.
        dates = pd.to_datetime(rows["session_date"])
        sessions = np.sort(dates.unique())
        cut = int(len(sessions) * (1.0 - self.validation_fraction))
        validation = (dates >= self.validation_start(rows)).to_numpy()
        fitting = (dates < sessions[max(cut - self.purge_sessions, 0)]).to_numpy()
        if len(np.unique(labels[fitting])) < 2 or len(np.unique(labels[validation])) < 2:
            fitting = validation = np.ones(len(rows), dtype=bool)  # too short to split

        warm = previous if self.warm_start and previous is not None else None
        epochs = self.warm_start_epochs if warm is not None else self.max_epochs
        with torch_determinism(self.seed):
            network = self._start(tickers, warm, data, fitting)
            best_loss, best_epoch, train_loss, ran, logits = self._train(
                network, data, fitting, validation, epochs
            )
            if self.calibration not in ("window", "validation", "none"):
                raise ValueError(f"unknown calibration {self.calibration!r}")
            a, b = _platt(logits, labels[validation]) if self.calibration != "none" else (1.0, 0.0)
            if self.calibration == "window":
                b += _log_odds(labels.mean()) - _log_odds(labels[validation].mean())
            calibrated_loss = _bce(a * logits + b, labels[validation])
            network_kept = bool(network.head.weight.any() or network.head.bias.any())
            if network_kept:
                importance = _variable_importance(network, data, fitting, self)
            else:  # the version is its linear path alone: its coefficients say what matters
                importance = np.zeros(len(self.inputs) + 1)
                coefficients = network.linear.weight.detach().numpy().ravel().astype("float64")
                importance[list(network.linear_index)] = np.abs(coefficients)
                importance = importance / max(importance.sum(), 1e-12)
        names = (*self.inputs, PRESENT)
        report = FitReport(
            epochs=ran,
            best_epoch=best_epoch,
            train_seconds=round(time.perf_counter() - started, 3),
            train_loss=float(train_loss),
            validation_loss=float(best_loss),
            calibrated_validation_loss=calibrated_loss,
            warm_started_from=warm.checkpoint if warm is not None else None,
            n_fit=int(fitting.sum()),
            n_validation=int(validation.sum()),
            network_kept=network_kept,
        )
        state = TFTState(
            state_dict=_copy_state(network),
            tickers=tickers,
            mean=mean,
            scale=scale,
            calibration=(a, b),
            variable_importance=tuple(zip(names, (float(v) for v in importance), strict=True)),
            report=report,
        )
        return replace(self, state=state, checkpoint=None)

    def _start(
        self,
        tickers: tuple[str, ...],
        warm: TFTSignalModel | None,
        data: _FitData,
        rows: np.ndarray,
    ) -> TemporalFusionNet:
        """The network a fit starts from: fresh (seeded) or the previous version's weights; with
        a linear path, that path fitted first on ``rows`` and the network's own head zeroed, so
        training starts from the logistic regression and learns what the sequence adds."""
        network = self._network(len(tickers))
        if warm is not None:
            _warm_start(network, warm.loaded_state(), tickers)
        if network.linear is not None:
            _fit_linear(network, data, rows, self.linear_regularization)
            if warm is None:
                nn.init.zeros_(network.head.weight)
                nn.init.zeros_(network.head.bias)
        return network

    def _train(
        self,
        network: TemporalFusionNet,
        data: _FitData,
        fitting: np.ndarray,
        validation: np.ndarray,
        epochs: int,
    ) -> tuple[float, int, float, int, np.ndarray]:
        """Up to ``epochs`` epochs of AdamW on the ``fitting`` rows, keeping the weights of the
        epoch with the lowest ``validation`` loss (early stopping). Returns (best validation loss,
        its epoch, last train loss, epochs run, the kept weights' validation logits).
        With a linear path the linear path alone (the network's head at zero) is kept unless the
        best candidate (the start, a warm start's weights included, or an epoch) beats it on the
        validation sessions by ``min_gain_z`` standard errors of the per-session mean loss
        difference: a network fitted to noise is not let through by a validation loss that is
        lower by chance, nor carried on from a previous version that had passed."""
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        generator = np.random.default_rng(self.seed)
        chunks = _chunks(
            np.flatnonzero(fitting), data.ticker_idx, data.session_idx, self.chunk_sessions
        )
        per_batch = max(1, self.batch_size // self.chunk_sessions)

        def validation_logits() -> np.ndarray:
            return _logits(network, data, validation, self)

        def losses_of(logits: np.ndarray) -> np.ndarray:
            return _bce_rows(logits, data.labels[validation])

        best: tuple[float, int, dict | None] = (math.inf, 0, None)
        linear_losses = best_losses = best_logits = None
        if network.linear is not None:
            # The bar: the linear path alone (the network's head at zero). A warm start's own
            # weights (the previous version's network) are a candidate like any epoch's.
            start_state = _copy_state(network)
            linear_only = {
                **start_state,
                "head.weight": torch.zeros_like(start_state["head.weight"]),
                "head.bias": torch.zeros_like(start_state["head.bias"]),
            }
            network.load_state_dict(linear_only)
            linear_logits = validation_logits()
            linear_losses = losses_of(linear_logits)
            initial = (float(linear_losses.mean()), 0, linear_only)
            network.load_state_dict(start_state)
            best_logits = validation_logits()
            best_losses = losses_of(best_logits)
            best = (float(best_losses.mean()), 0, start_state)
        train_loss = math.nan
        ran = 0
        for epoch in range(1, epochs + 1):
            network.train()
            order = generator.permutation(len(chunks))
            total, seen = 0.0, 0
            for start in range(0, len(order), per_batch):
                batch = np.concatenate([chunks[i] for i in order[start : start + per_batch]])
                logit, _, _ = network(*data.batch(batch, self.encoder_length))
                loss = nn.functional.binary_cross_entropy_with_logits(
                    logit, torch.from_numpy(data.labels[batch])
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                total += float(loss.detach()) * len(batch)
                seen += len(batch)
            train_loss = total / max(seen, 1)
            ran = epoch
            logits = validation_logits()
            losses = losses_of(logits)
            val_loss = float(losses.mean())
            if val_loss < best[0] - 1e-6:
                best = (val_loss, epoch, _copy_state(network))
                best_losses, best_logits = losses, logits
            elif epoch - best[1] >= self.patience:
                break
        if linear_losses is not None:
            gain = _gain_z(linear_losses - best_losses, data.session_idx[validation])
            if not gain >= self.min_gain_z:
                best, best_logits = initial, linear_logits
        network.load_state_dict(best[2])
        return best[0], best[1], train_loss, ran, best_logits

    # -- scoring ----------------------------------------------------------------------------

    def loaded_state(self) -> TFTState:
        if self.state is not None:
            return self.state
        if self.checkpoint is None:
            raise RuntimeError("tft is not fitted: call fit() first")
        return load_state(self.checkpoint)

    def _scores(
        self, snapshots: pd.DataFrame, history: pd.DataFrame | None
    ) -> tuple[np.ndarray, np.ndarray]:
        state = self.loaded_state()
        history = snapshots if history is None else history
        rows = snapshots.reset_index(drop=True)
        panel = build_panel(history, self.inputs, state.mean, state.scale, self.encoder_length)
        ticker_idx, session_idx = panel.locate(rows)
        static = rows["ticker"].astype(str).map({t: i + 1 for i, t in enumerate(state.tickers)})
        static = static.fillna(0).to_numpy(dtype="int64")
        data = _FitData(panel, ticker_idx, session_idx, static, np.zeros(len(rows), "float32"))
        with torch_determinism(self.seed):
            network = self._network(len(state.tickers))
            network.load_state_dict(state.state_dict)
            every = np.ones(len(rows), dtype=bool)
            logits, attention = _logits(network, data, every, self, attention=True)
        a, b = state.calibration
        return 1.0 / (1.0 + np.exp(-(a * logits + b))), attention

    def predict_proba(
        self, snapshots: pd.DataFrame, history: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Calibrated P(target before stop) for snapshot rows, each row's encoder read from
        ``history`` (default: the rows themselves)."""
        if len(snapshots) == 0:
            return np.empty(0)
        return self._scores(snapshots, history)[0]

    def attention(self, snapshots: pd.DataFrame, history: pd.DataFrame | None = None) -> np.ndarray:
        """[row, encoder step] attention of each row's decision over its past sessions (the last
        column is the row's own session; each row sums to 1)."""
        if len(snapshots) == 0:
            return np.empty((0, self.encoder_length))
        return self._scores(snapshots, history)[1]

    @property
    def variable_importance(self) -> pd.DataFrame:
        """Mean variable-selection weight of each input over the training rows (sums to 1); for a
        version that kept its linear start alone (``network_kept`` false), each input's share of
        the linear path's standardized coefficient magnitudes."""
        state = self.loaded_state()
        frame = pd.DataFrame(list(state.variable_importance), columns=["variable", "importance"])
        return frame.sort_values("importance", ascending=False, ignore_index=True)

    @property
    def network_kept(self) -> bool:
        """Whether the network contributes to the confidence (see ``FitReport.network_kept``)."""
        return self.loaded_state().report.network_kept

    @property
    def fit_report(self) -> FitReport:
        return self.loaded_state().report

    # -- checkpoints ------------------------------------------------------------------------

    def save(self, path: str | Path) -> TFTSignalModel:
        """Write the checkpoint to ``path``; the copy returned loads its weights from there."""
        state = self.loaded_state()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(
            {
                "params": dict(self.params),
                "state_dict": dict(state.state_dict),
                "tickers": list(state.tickers),
                "mean": state.mean.tolist(),
                "scale": state.scale.tolist(),
                "calibration": list(state.calibration),
                "variable_importance": [list(item) for item in state.variable_importance],
                "report": vars(state.report),
            },
            buffer,
        )
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(buffer.getvalue())
        temporary.replace(path)
        return replace(self, state=None, checkpoint=str(path))

    @classmethod
    def load(cls, path: str | Path) -> TFTSignalModel:
        """The fitted model of a checkpoint written by ``save``."""
        stored = torch.load(Path(path), map_location="cpu", weights_only=False)
        params = dict(stored["params"])
        params.setdefault("linear_inputs", ())  # a checkpoint from before the linear path
        for key in ("inputs", "linear_inputs"):
            params[key] = tuple(params[key])
        return cls(**params, checkpoint=str(path))

    def __getstate__(self) -> dict:
        # A pickled fitted model (the TrainedModel artifact) keeps the path, not the weights.
        state = dict(vars(self))
        if state.get("checkpoint") is not None:
            state["state"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("linear_inputs", ())  # pickled before the linear path existed
        for key, value in state.items():
            object.__setattr__(self, key, value)


_STATE_CACHE: dict[str, TFTState] = {}


def load_state(path: str | Path) -> TFTState:
    """The state in a checkpoint (cached per path: a checkpoint is never rewritten)."""
    key = str(path)
    if key not in _STATE_CACHE:
        stored = torch.load(Path(path), map_location="cpu", weights_only=False)
        _STATE_CACHE[key] = TFTState(
            state_dict=stored["state_dict"],
            tickers=tuple(stored["tickers"]),
            mean=np.asarray(stored["mean"], dtype="float64"),
            scale=np.asarray(stored["scale"], dtype="float64"),
            calibration=tuple(stored["calibration"]),
            variable_importance=tuple(
                (str(name), float(value)) for name, value in stored["variable_importance"]
            ),
            report=FitReport(**stored["report"]),
        )
    return _STATE_CACHE[key]


# --- helpers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FitData:
    """The rows of a fit or a scoring: where each sits in the panel, its ticker index, its label."""

    panel: Panel
    ticker_idx: np.ndarray
    session_idx: np.ndarray
    static: np.ndarray
    labels: np.ndarray  # float32 0/1 (zeros when scoring)

    def batch(self, rows: np.ndarray, length: int) -> tuple[torch.Tensor, ...]:
        return self.panel.batch(
            self.ticker_idx[rows], self.session_idx[rows], self.static[rows], length
        )


def _fit_linear(
    network: TemporalFusionNet, data: _FitData, rows: np.ndarray, regularization: float
) -> None:
    """The linear path's weights: an L2 logistic regression (C=``regularization``, as the
    baseline's) on the decision session's standardized inputs of ``rows``."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    index = np.flatnonzero(rows)
    values = data.panel.values[data.ticker_idx[index], data.session_idx[index]]
    x = values[:, list(network.linear_index)].astype("float64")
    with threadpool_limits(limits=SKLEARN_THREADS):
        fitted = LogisticRegression(C=regularization, max_iter=500).fit(x, data.labels[index])
    with torch.no_grad():
        network.linear.weight.copy_(torch.from_numpy(fitted.coef_.astype("float32")))
        network.linear.bias.copy_(torch.from_numpy(fitted.intercept_.astype("float32")))


def _copy_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}


def _warm_start(network: TemporalFusionNet, previous: TFTState, tickers: tuple[str, ...]) -> None:
    """Start from the previous version's weights; ticker embeddings matched by ticker name."""
    state = dict(previous.state_dict)
    old = state.pop("ticker.weight")
    own = network.state_dict()
    if any(own[name].shape != tensor.shape for name, tensor in state.items()):
        return  # another architecture: a cold start
    embedding = own["ticker.weight"].clone()
    old_rows = {ticker: i + 1 for i, ticker in enumerate(previous.tickers)}
    embedding[0] = old[0]
    for i, ticker in enumerate(tickers):
        if ticker in old_rows:
            embedding[i + 1] = old[old_rows[ticker]]
    network.load_state_dict({**state, "ticker.weight": embedding})


def _chunks(
    rows: np.ndarray, ticker_idx: np.ndarray, session_idx: np.ndarray, size: int
) -> list[np.ndarray]:
    """``rows`` in runs of up to ``size`` consecutive sessions of one ticker."""
    ordered = rows[np.lexsort((session_idx[rows], ticker_idx[rows]))]
    chunks: list[np.ndarray] = []
    if not len(ordered):
        return chunks
    ticker = ticker_idx[ordered]
    breaks = np.flatnonzero(np.diff(ticker) != 0) + 1
    for run in np.split(ordered, breaks):
        chunks.extend(run[start : start + size] for start in range(0, len(run), size))
    return chunks


def _batches(
    mask: np.ndarray, ticker_idx: np.ndarray, session_idx: np.ndarray, size: int
) -> Iterator[np.ndarray]:
    # Rows in (ticker, session) order, so the windows of a batch share most of their sessions.
    rows = np.flatnonzero(mask)
    rows = rows[np.lexsort((session_idx[rows], ticker_idx[rows]))]
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _logits(network, data, mask, model, attention=False):
    """Logits (and attention) of the ``mask`` rows, in row order."""
    network.eval()
    logits = np.zeros(len(mask))
    attentions = np.zeros((len(mask), model.encoder_length))
    with torch.no_grad():
        for batch in _batches(mask, data.ticker_idx, data.session_idx, 512):
            logit, _, weights = network(*data.batch(batch, model.encoder_length))
            logits[batch] = logit.numpy()
            attentions[batch] = weights.numpy()
    if attention:
        return logits[mask], attentions[mask]
    return logits[mask]


def _variable_importance(network, data, mask, model):
    """Mean variable-selection weight per input over the sessions of the rows."""
    network.eval()
    rows = np.flatnonzero(mask)
    total = np.zeros(len(model.inputs) + 1)
    with torch.no_grad():
        for start in range(0, len(rows), 4096):
            batch = rows[start : start + 4096]
            values = data.panel.values[data.ticker_idx[batch], data.session_idx[batch]]
            _, weights = network.select(
                torch.from_numpy(values), torch.from_numpy(data.static[batch])
            )
            total += weights.sum(dim=0).numpy().astype("float64")
    return total / total.sum() if total.sum() > 0 else total


def _bce_rows(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's log loss, log(1 + e^x) - y x, computed stably."""
    logits = np.asarray(logits, dtype="float64")
    return np.logaddexp(0.0, logits) - np.asarray(labels, dtype="float64") * logits


def _gain_z(gain: np.ndarray, sessions: np.ndarray) -> float:
    """Mean per-session loss gain over its standard error: rows of a session share its market,
    so sessions, not rows, are the independent draws."""
    per_session = pd.Series(gain).groupby(sessions).mean().to_numpy()
    if len(per_session) < 2:
        return math.nan
    error = per_session.std(ddof=1) / math.sqrt(len(per_session))
    return float(per_session.mean() / error) if error > 0 else math.nan


def _bce(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(_bce_rows(logits, labels).mean()) if len(labels) else math.nan


def _log_odds(rate: float) -> float:
    rate = min(max(float(rate), 1e-6), 1.0 - 1e-6)
    return math.log(rate / (1.0 - rate))


def _platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: (a, b) minimizing the log loss of sigmoid(a * logit + b) (Newton's method)."""
    x = np.asarray(logits, dtype="float64")
    y = np.asarray(labels, dtype="float64")
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    a, b = 1.0, 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        w = p * (1.0 - p) + 1e-9
        gradient = np.array([np.sum((p - y) * x), np.sum(p - y)])
        hessian = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        hessian += np.eye(2) * 1e-6
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(a), float(b)
