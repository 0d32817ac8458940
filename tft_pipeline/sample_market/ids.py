"""Reddit-style base-36 ids of the sample posts and comments, unique per session and growing in time."""

from __future__ import annotations

import numpy as np

POST_ID_BASE = 36**5  # ids like "1a2b3c", growing with time as Reddit's do
POST_ID_STRIDE = 1 << 22  # id numbers reserved per session
COMMENT_ID_BASE = 36**6
COMMENT_ID_STRIDE = 1 << 24
SHELL_ID_OFFSET = 1 << 23  # ids of the removed-comment shells added as dirt
# Catalyst posts and comments (bursts and rumours) number from here inside their session's ids, so
# the ordinary chatter keeps its ids; their shells start at SHELL_ID_OFFSET + the comment offset.
CATALYST_POST_ID_OFFSET = 1 << 21
CATALYST_COMMENT_ID_OFFSET = 1 << 22
_ALPHABET = np.array(list("0123456789abcdefghijklmnopqrstuvwxyz"))
_WIDTH = 9  # enough for every id number of the span


def base36(numbers: np.ndarray) -> np.ndarray:
    """Lower-case base-36 strings of non-negative integers (vectorized), as Reddit writes ids."""
    values = np.asarray(numbers, dtype=np.int64).copy()
    digits = np.empty((len(values), _WIDTH), dtype="<U1")
    for position in range(_WIDTH - 1, -1, -1):
        digits[:, position] = _ALPHABET[values % 36]
        values //= 36
    joined = np.ascontiguousarray(digits).view(f"<U{_WIDTH}").ravel()
    return np.char.lstrip(joined, "0").astype(object)
