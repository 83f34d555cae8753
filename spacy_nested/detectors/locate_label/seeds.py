"""Locate and Label's seeds: every span of a window-set width (§2.2), numpy only.

Registered name (``registrations.py``): ``spacy_nested.window_seeds.v1``.
"""
from typing import List, Sequence

import numpy


def enumerate_seeds(length: int, widths: Sequence[int]) -> numpy.ndarray:
    """All spans ``[i, i + w)`` with ``w`` in ``widths`` that fit in ``length``.

    Order: outer loop over width (ascending), inner loop over start, as in the
    authors' code (the order decides which duplicate wins in decoding). Unlike
    the code, windows are not truncated at the sentence end, so no seed is a
    duplicate of another and none needs removing.
    """
    rows = [
        numpy.stack([numpy.arange(0, length - w + 1), numpy.arange(w, length + 1)], axis=1)
        for w in sorted(set(int(w) for w in widths))
        if 0 < w <= length
    ]
    if not rows:
        return numpy.zeros((0, 2), dtype="int64")
    return numpy.concatenate(rows, axis=0).astype("int64")


def make_window_seeds(min_width: int, max_width: int) -> List[int]:
    """The window set of seed lengths ``min_width..max_width`` (paper: 1–10 for GENIA)."""
    if min_width < 1 or max_width < min_width:
        raise ValueError(f"Invalid seed window range {min_width}..{max_width}")
    return list(range(min_width, max_width + 1))
