"""Stable seeding for the sample market: named random streams and counter-based uniforms."""

from __future__ import annotations

import zlib
from enum import IntEnum

import numpy as np

# The seed the settings use by default (TFT_SAMPLE_SEED), so the sample market and the pipeline agree.
DEFAULT_SEED = 20240102

_MASK64 = (1 << 64) - 1


class Stream(IntEnum):
    """Independent random streams; a new kind of draw gets a new stream so old draws never shift."""

    MARKET = 0
    TICKER = 1
    POSTS = 2
    POST_DIRT = 3
    COMMENT_DIRT = 4
    PRICE_DIRT = 5
    PRICE_FETCH = 6
    AUTHORS = 7
    CATALYSTS = 8  # each ticker's catalyst events
    CATALYST_POSTS = 9  # the posts and comments about catalysts (bursts and rumours)
    CATALYST_POST_DIRT = 10
    CATALYST_COMMENT_DIRT = 11


def ticker_key(ticker: str) -> int:
    """A stable 32-bit key of a ticker (crc32: unlike ``hash()`` it is the same in every process)."""
    return zlib.crc32(ticker.encode("utf-8"))


def _seed_word(seed: int) -> int:
    # SeedSequence wants non-negative entropy; negative seeds map to distinct 64-bit words.
    return int(seed) & _MASK64


def generator(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """A numpy Generator for ``(seed, stream, *keys)``: the same keys give the same draws anywhere."""
    entropy = [_seed_word(seed), int(stream), *(int(key) & _MASK64 for key in keys)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _splitmix64(values: np.ndarray) -> np.ndarray:
    # uint64 array arithmetic wraps modulo 2**64, which is exactly what splitmix64 needs.
    z = values + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed_uniforms(
    seed: int, stream: Stream, keys: np.ndarray | int, counters: np.ndarray | int
) -> np.ndarray:
    """Uniforms in [0, 1) that depend only on ``(seed, stream, key, counter)`` of each element.

    Counter-based, so the draw for one (ticker, session) never depends on which others are asked
    for, and nothing has to be stored for the whole calendar.
    """
    keys_array, counters_array = np.broadcast_arrays(
        np.atleast_1d(np.asarray(keys, dtype=np.int64)),
        np.atleast_1d(np.asarray(counters, dtype=np.int64)),
    )
    base = _splitmix64(np.array([_seed_word(seed)], dtype=np.uint64))
    base = _splitmix64(base ^ np.array([int(stream)], dtype=np.uint64))
    mixed = _splitmix64(base ^ keys_array.astype(np.uint64))
    mixed = _splitmix64(mixed ^ counters_array.astype(np.uint64))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
