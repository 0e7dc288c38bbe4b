"""The HAM paper's ordering tasks: sort, merge and search.

``sort`` and ``merge`` use the digit vocabulary of :mod:`namcore.tasks.digits` (digit
``d`` is id ``d + 4``) and its length splits; their length parameter is the number
of digits to order:

=======  ===========================================  ===============================
task     inputs                                       targets in the slot
=======  ===========================================  ===============================
sort     ``<sep> s <sep> <mask>*n``                   the digits of ``s``, ascending
merge    ``<sep> a <sep> b <sep> <mask>*n``           ``a`` and ``b`` (each ascending,
                                                      ``|a| + |b| = n``) merged
search   ``<sep> k1 v1 ... kn vn <sep> q <sep>``      the value ``vi`` of the key
         ``<mask>``                                   ``ki = q``
=======  ===========================================  ===============================

(each input row then ends with ``<eos>``). ``merge`` splits ``n`` uniformly into two
non-empty runs, so it needs ``n >= 2``. ``search`` has a vocabulary of its own: the
specials, the ten digits (the values) and the 32 keys ``k0``–``k31``; the ``n`` keys
are distinct and ascending, the values are digits, and the query is one of the keys
(binary search answers it in ``log2 n`` comparisons).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ._batch import SEP, stratified_lengths
from ._task import Task
from .digits import DIGIT0, DIGIT_SPLITS
from .digits import VOCAB as DIGIT_VOCAB

__all__ = ["MERGE_SPLITS", "SEARCH_KEYS", "SEARCH_VOCAB", "merge_task", "search_task", "sort_task"]


#: Splits of ``merge``: those of the digit tasks, training from 2 digits (two runs).
MERGE_SPLITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {**DIGIT_SPLITS, "train": (2, DIGIT_SPLITS["train"][1])}
)

#: Number of distinct keys of ``search`` (the longest split has 22 pairs).
SEARCH_KEYS = 32
#: Token names of ``search``: the specials, the digits (values), then ``k0``…``k31``.
SEARCH_VOCAB: tuple[str, ...] = DIGIT_VOCAB + tuple(f"k{i}" for i in range(SEARCH_KEYS))
_FIRST_KEY = len(DIGIT_VOCAB)


def _digits(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 10, size=n) + DIGIT0


def _sample_sort(rng: np.random.Generator, n: int, lo: int, hi: int):
    lengths = stratified_lengths(n, lo, hi, rng)
    rows = []
    for length in lengths.tolist():
        s = _digits(rng, length)
        rows.append(([SEP, *s.tolist()], np.sort(s).tolist(), length))
    return rows, lengths


def _sample_merge(rng: np.random.Generator, n: int, lo: int, hi: int):
    lengths = stratified_lengths(n, lo, hi, rng)
    rows = []
    for length in lengths.tolist():
        cut = int(rng.integers(1, length))
        a, b = np.sort(_digits(rng, cut)), np.sort(_digits(rng, length - cut))
        merged = np.sort(np.concatenate([a, b])).tolist()
        rows.append(([SEP, *a.tolist(), SEP, *b.tolist()], merged, length))
    return rows, lengths


def _sample_search(rng: np.random.Generator, n: int, lo: int, hi: int):
    lengths = stratified_lengths(n, lo, hi, rng)
    rows = []
    for length in lengths.tolist():
        keys = np.sort(rng.choice(SEARCH_KEYS, size=length, replace=False)) + _FIRST_KEY
        values = _digits(rng, length)
        pick = int(rng.integers(0, length))
        pairs = np.stack([keys, values], axis=1).reshape(-1).tolist()
        rows.append(([SEP, *pairs, SEP, int(keys[pick])], [int(values[pick])], 1))
    return rows, lengths


def sort_task() -> Task:
    """Sort a digit string in ascending order.

    Examples
    --------
    >>> task = sort_task()
    >>> batch = task.generate(1, 5, 5, seed=0)
    >>> task.format(batch.inputs[0])
    '<sep> 8 6 5 2 3 <sep> <mask> <mask> <mask> <mask> <mask> <eos>'
    >>> task.format(batch.targets[0])
    '<sep> 8 6 5 2 3 <sep> 2 3 5 6 8 <eos>'
    """
    return Task("sort", DIGIT_VOCAB, DIGIT_SPLITS, _sample_sort, length_name="digits")


def merge_task() -> Task:
    """Merge two ascending digit strings of ``n`` digits in all.

    Examples
    --------
    >>> task = merge_task()
    >>> batch = task.generate(1, 5, 5, seed=2)
    >>> task.format(batch.inputs[0])
    '<sep> 1 2 2 4 <sep> 8 <sep> <mask> <mask> <mask> <mask> <mask> <eos>'
    >>> task.format(batch.targets[0])
    '<sep> 1 2 2 4 <sep> 8 <sep> 1 2 2 4 8 <eos>'
    """
    return Task("merge", DIGIT_VOCAB, MERGE_SPLITS, _sample_merge, min_len=2, length_name="digits")


def search_task() -> Task:
    """Find the value of a query key among ``n`` key–value pairs sorted by key.

    Examples
    --------
    >>> task = search_task()
    >>> batch = task.generate(1, 3, 3, seed=3)
    >>> task.format(batch.inputs[0])
    '<sep> k2 8 k5 8 k24 5 <sep> k2 <sep> <mask> <eos>'
    >>> task.format(batch.targets[0])
    '<sep> k2 8 k5 8 k24 5 <sep> k2 <sep> 8 <eos>'
    """
    return Task("search", SEARCH_VOCAB, DIGIT_SPLITS, _sample_search, length_name="key-value pairs")
