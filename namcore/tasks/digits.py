"""The digit-string tasks: add, reverse, reduce, copy and repeat-copy.

They share one vocabulary of 14 tokens: the specials ``<pad> <mask> <sep> <eos>``
(ids 0–3), then the digits ``0``–``9`` (ids 4–13, so digit ``d`` is id ``d + 4``). The
length parameter is a number of digits ``n`` (``d`` for add), and every layout follows
:func:`namcore.tasks._batch.layout` (prompt, ``<sep>``, answer slot, ``<eos>``):

=============  ========================================  ==================================
task           inputs                                    targets in the slot
=============  ========================================  ==================================
add            ``<sep> a <sep> b <sep> <mask>*(d+1)``    ``a + b``, little-endian, d+1
                                                         digits (a top 0 when no carry)
reverse        ``<sep> s <sep> <mask>*n``                ``s`` reversed
reduce         ``s <sep> <mask>*n``                      the non-zero digits of ``s``, then
                                                         ``<eos>`` up to n positions
copy           ``<sep> s <sep> <mask>*n``                ``s``
repeat-copy    ``<sep> s <sep> <mask>*(k*n)``            ``s`` written ``k`` times
=============  ========================================  ==================================

(each input row then ends with ``<eos>``). Numbers are little-endian (least significant
digit first), as in the paper. For add, ``b`` has exactly ``d`` digits and ``a`` has
a uniformly drawn number of digits in ``1..d``; a number of more than one digit never
starts (at its most significant end) with 0. The leading ``<sep>`` of add, reverse and
the copies is the paper's layout; reduce has none, as in the paper. Unlike the
authors' reverse (and repeated-copy) data, which put the answer in the inputs and
``<mask>`` in the targets, the answer here is in the targets only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from ._batch import SEP, SPECIALS, Row, stratified_lengths
from ._task import Task, check_int

__all__ = [
    "DIGIT0",
    "DIGIT_SPLITS",
    "VOCAB",
    "add_task",
    "copy_task",
    "reduce_task",
    "repeat_copy_task",
    "reverse_task",
]

#: Token names of the digit tasks: the specials, then ``"0"``–``"9"``.
VOCAB: tuple[str, ...] = SPECIALS + tuple(str(d) for d in range(10))

#: Length splits of the paper (numbers of digits, inclusive): train 1–10, in-distribution
#: validation 5–10, out-of-distribution easy 11–13 and hard 14–16; ``od_extra`` 17–22 is
#: the test range of the authors' later (NeurIPS-era) code.
DIGIT_SPLITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "train": (1, 10),
        "id": (5, 10),
        "od_easy": (11, 13),
        "od_hard": (14, 16),
        "od_extra": (17, 22),
    }
)

DIGIT0 = len(SPECIALS)  # token id of the digit 0 (shared by the tasks on digits)


def _tokens(digits: Sequence[int] | np.ndarray) -> list[int]:
    return [int(d) + DIGIT0 for d in digits]


def _number(rng: np.random.Generator, n_digits: int) -> np.ndarray:
    """Little-endian digits of a uniform ``n_digits``-digit number (0..9 for one digit)."""
    digits = rng.integers(0, 10, size=n_digits)
    if n_digits > 1:
        digits[-1] = rng.integers(1, 10)
    return digits


def _value(digits: np.ndarray) -> int:
    return sum(int(d) * 10**i for i, d in enumerate(digits.tolist()))


def _add_row(a: np.ndarray, b: np.ndarray) -> Row:
    total = _value(a) + _value(b)
    width = len(b) + 1
    answer = [(total // 10**i) % 10 for i in range(width)]
    return [SEP, *_tokens(a), SEP, *_tokens(b)], _tokens(answer), width


def _sample_add(rng: np.random.Generator, n: int, lo: int, hi: int):
    lengths = stratified_lengths(n, lo, hi, rng)
    rows = []
    for d in lengths.tolist():
        b = _number(rng, d)
        a = _number(rng, int(rng.integers(1, d + 1)))
        rows.append(_add_row(a, b))
    return rows, lengths


def _sample_reverse(rng: np.random.Generator, n: int, lo: int, hi: int):
    lengths = stratified_lengths(n, lo, hi, rng)
    rows = []
    for length in lengths.tolist():
        s = _tokens(rng.integers(0, 10, size=length))
        rows.append(([SEP, *s], s[::-1], length))
    return rows, lengths


def _sample_reduce(rng: np.random.Generator, n: int, lo: int, hi: int):
    lengths = stratified_lengths(n, lo, hi, rng)
    rows = []
    for length in lengths.tolist():
        nonzero = rng.integers(1, 10, size=length)
        digits = np.where(rng.random(length) < 0.5, 0, nonzero)
        s = _tokens(digits)
        rows.append((s, _tokens(digits[digits != 0]), length))
    return rows, lengths


def _repeat_sampler(k: int):
    def sample(rng: np.random.Generator, n: int, lo: int, hi: int):
        lengths = stratified_lengths(n, lo, hi, rng)
        rows = []
        for length in lengths.tolist():
            s = _tokens(rng.integers(0, 10, size=length))
            rows.append(([SEP, *s], s * k, k * length))
        return rows, lengths

    return sample


def add_task() -> Task:
    """Addition of two little-endian numbers (the paper's "Fib", later "add").

    The length parameter ``d`` is the number of digits of the second number.

    Examples
    --------
    >>> task = add_task()
    >>> batch = task.generate(1, 3, 3, seed=4)
    >>> task.format(batch.inputs[0])
    '<sep> 9 9 5 <sep> 7 9 5 <sep> <mask> <mask> <mask> <mask> <eos>'
    >>> task.format(batch.targets[0])    # 599 + 597 = 1196
    '<sep> 9 9 5 <sep> 7 9 5 <sep> 6 9 1 1 <eos>'
    """
    return Task("add", VOCAB, DIGIT_SPLITS, _sample_add, length_name="digits of b")


def reverse_task() -> Task:
    """Write a digit string backwards (the paper's "Palin", later "reverse").

    Examples
    --------
    >>> task = reverse_task()
    >>> batch = task.generate(1, 4, 4, seed=0)
    >>> task.format(batch.inputs[0])
    '<sep> 8 6 5 2 <sep> <mask> <mask> <mask> <mask> <eos>'
    >>> task.format(batch.targets[0])
    '<sep> 8 6 5 2 <sep> 2 5 6 8 <eos>'
    """
    return Task("reverse", VOCAB, DIGIT_SPLITS, _sample_reverse, length_name="digits")


def reduce_task() -> Task:
    """Drop the zeros of a digit string; each digit is 0 with probability 1/2.

    The answer slot has room for every digit; after the non-zero digits the targets
    hold ``<eos>`` (scored too, so a model must also stop at the right place).

    Examples
    --------
    >>> task = reduce_task()
    >>> batch = task.generate(1, 5, 5, seed=0)
    >>> task.format(batch.inputs[0])
    '0 6 5 3 3 <sep> <mask> <mask> <mask> <mask> <mask> <eos>'
    >>> task.format(batch.targets[0])
    '0 6 5 3 3 <sep> 6 5 3 3 <eos> <eos>'
    """
    return Task("reduce", VOCAB, DIGIT_SPLITS, _sample_reduce, length_name="digits")


def repeat_copy_task(k: int = 3) -> Task:
    """Copy a digit string ``k`` times (the authors' later code trains ×3, tests ×4).

    Examples
    --------
    >>> task = repeat_copy_task(2)
    >>> task
    Task('repeat-copy', vocab_size=14, k=2)
    >>> batch = task.generate(1, 2, 2, seed=0)
    >>> task.format(batch.targets[0])
    '<sep> 8 6 <sep> 8 6 8 6 <eos>'
    """
    k = check_int("repeat_copy_task", "k", k, 1, " (the number of copies)")
    return Task(
        "repeat-copy",
        VOCAB,
        DIGIT_SPLITS,
        _repeat_sampler(k),
        options={"k": k},
        length_name="digits",
    )


def copy_task() -> Task:
    """Copy a digit string once (repeat-copy with ``k = 1``).

    Examples
    --------
    >>> task = copy_task()
    >>> task.format(task.generate(1, 3, 3, seed=0).targets[0])
    '<sep> 8 6 5 <sep> 8 6 5 <eos>'
    """
    return Task("copy", VOCAB, DIGIT_SPLITS, _repeat_sampler(1), length_name="digits")
