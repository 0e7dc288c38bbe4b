"""Dyck-4: close the open brackets of a prefix, in order (the authors' later "dyck").

Vocabulary (12 tokens): the specials ``<pad> <mask> <sep> <eos>`` (ids 0–3), then
``( ) [ ] { } < >`` (ids 4–11; an opening bracket has an even id and its closing one
the next id). A sample is

* inputs: ``prefix <sep> <mask>*m <eos>``,
* targets: ``prefix <sep> closing brackets <eos>``,

where the length parameter is the prefix length and ``m`` is the number of brackets
the prefix leaves open, so ``prefix + closing brackets`` is a balanced Dyck-4 word and
``m`` varies from sample to sample (as in the authors' data).

The prefix is a random walk on the nesting depth. At each step it opens a bracket
(of one of the four kinds, uniformly) with probability ``p_open`` (0.7, as in the
authors' generator) and otherwise closes the innermost open one, except that it

* must open when nothing is open,
* must close when ``max_depth`` brackets are open (the depth cap), and
* must open at its last step if exactly one bracket is open, so that every prefix
  leaves at least one bracket to close (there is always something to score).

``max_depth`` is an int, or a ``(low, high)`` pair to draw each sample's cap uniformly
from ``low..high`` (the authors trained on depths 2–8 and tested depth
generalization with 9–12).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from ._batch import SPECIALS, stratified_lengths
from ._task import Task, check_int

__all__ = ["DYCK_SPLITS", "PAIRS", "VOCAB", "dyck_task"]

#: The four bracket pairs.
PAIRS: tuple[tuple[str, str], ...] = (("(", ")"), ("[", "]"), ("{", "}"), ("<", ">"))
#: Token names of the Dyck task: the specials, then each opening and closing bracket.
VOCAB: tuple[str, ...] = SPECIALS + tuple(b for pair in PAIRS for b in pair)

#: Prefix-length splits of the authors' later code: train and in-distribution
#: validation 9–31, length generalization 33–63 (``od_depth`` is the same range, meant
#: for a task built with ``max_depth=(9, 12)``).
DYCK_SPLITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "train": (9, 31),
        "id": (9, 31),
        "od_length": (33, 63),
        "od_depth": (33, 63),
    }
)

_FIRST = len(SPECIALS)  # token id of "("


def _prefix(
    rng: np.random.Generator, length: int, cap: int, p_open: float
) -> tuple[list[int], list[int]]:
    """A random prefix and the closing brackets that complete it (innermost first)."""
    coins = rng.random(length) < p_open
    kinds = rng.integers(0, len(PAIRS), size=length)
    prefix: list[int] = []
    stack: list[int] = []
    for step in range(length):
        depth = len(stack)
        last = step == length - 1
        if depth == 0 or (depth < cap and (coins[step] or (last and depth == 1))):
            opening = _FIRST + 2 * int(kinds[step])
            prefix.append(opening)
            stack.append(opening + 1)
        else:
            prefix.append(stack.pop())
    return prefix, stack[::-1]


def _sampler(depths: tuple[int, int], p_open: float):
    def sample(rng: np.random.Generator, n: int, lo: int, hi: int):
        lengths = stratified_lengths(n, lo, hi, rng)
        caps = rng.integers(depths[0], depths[1] + 1, size=n)
        rows = []
        for length, cap in zip(lengths.tolist(), caps.tolist(), strict=True):
            prefix, closing = _prefix(rng, length, cap, p_open)
            rows.append((prefix, closing, len(closing)))
        return rows, lengths

    return sample


def _depth_range(max_depth: int | Sequence[int]) -> tuple[int, int]:
    what = " (a depth cap; 2 or more so a prefix never ends balanced)"
    if isinstance(max_depth, Sequence) and not isinstance(max_depth, str):
        if len(max_depth) != 2:
            raise ValueError(
                f"dyck_task: `max_depth` must be an int or a (low, high) pair, "
                f"got {tuple(max_depth)}"
            )
        low = check_int("dyck_task", "max_depth[0]", max_depth[0], 2, what)
        high = check_int("dyck_task", "max_depth[1]", max_depth[1], 2, what)
        if low > high:
            raise ValueError(
                f"dyck_task: `max_depth` must be (low, high) with low <= high, "
                f"got {tuple(max_depth)}"
            )
        return low, high
    cap = check_int("dyck_task", "max_depth", max_depth, 2, what)
    return cap, cap


def dyck_task(max_depth: int | Sequence[int] = 8, p_open: float = 0.7) -> Task:
    """The Dyck-4 completion task (see the module docstring for the layout).

    Parameters
    ----------
    max_depth : int or (int, int), optional
        Most brackets open at once, or a range to draw it from per sample. Default: 8.
    p_open : float, optional
        Probability of opening a bracket when both moves are allowed. Default: 0.7.

    Examples
    --------
    >>> task = dyck_task()
    >>> batch = task.generate(1, 8, 8, seed=2)
    >>> task.format(batch.inputs[0])
    '{ [ ] { [ ] [ ( <sep> <mask> <mask> <mask> <mask> <eos>'
    >>> task.format(batch.targets[0])
    '{ [ ] { [ ] [ ( <sep> ) ] } } <eos>'
    """
    depths = _depth_range(max_depth)
    if isinstance(p_open, bool) or not isinstance(p_open, int | float) or not 0.0 <= p_open <= 1.0:
        raise ValueError(f"dyck_task: `p_open` must be a probability in [0, 1], got {p_open!r}")
    options = {
        "max_depth": depths[0] if depths[0] == depths[1] else depths,
        "p_open": float(p_open),
    }
    return Task(
        "dyck",
        VOCAB,
        DYCK_SPLITS,
        _sampler(depths, float(p_open)),
        options=options,
        length_name="prefix length",
    )
