"""The :class:`Task` description: vocabulary, length splits and a seeded generator."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ._batch import PAD, Batch, LaidRow, Row, assemble

__all__ = ["Sampler", "Task", "check_int"]

#: ``sampler(rng, n, min_len, max_len) -> (rows, lengths)``: draws ``n`` samples.
Sampler = Callable[
    [np.random.Generator, int, int, int], tuple[Sequence[Row] | Sequence[LaidRow], np.ndarray]
]


def check_int(func: str, name: str, value: Any, minimum: int, what: str = "") -> int:
    """``value`` as an int, or ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{func}: `{name}` must be an int{what}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{func}: `{name}` must be an int >= {minimum}{what}, got {value}")
    return int(value)


@dataclass(frozen=True, eq=False, repr=False)
class Task:
    """One algorithmic task: its tokens, its length splits and a seeded generator.

    Build tasks with :func:`namcore.tasks.get` rather than directly.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"add"``.
    vocab : tuple of str
        Token names by id; ids 0–3 are always ``<pad> <mask> <sep> <eos>``.
    splits : mapping of str to (int, int)
        Named inclusive ranges of the length parameter (see :func:`namcore.tasks.splits`).
    sampler : callable
        ``sampler(rng, n, min_len, max_len) -> (rows, lengths)``; used by :meth:`generate`.
    min_len : int
        Smallest length parameter the task accepts.
    options : mapping
        The options the task was built with (``{"k": 3}`` for repeat-copy, ...).
    length_name : str
        What the length parameter counts, for messages and docs.
    laid_out : bool
        The sampler returns finished ``(inputs, targets, scored)`` rows instead of
        ``(prompt, answer, slots)`` (tasks whose answers are interleaved with the
        prompt, such as the data-structure tasks).

    Examples
    --------
    >>> from namcore import tasks
    >>> task = tasks.get("add")
    >>> task
    Task('add', vocab_size=14)
    >>> task.format(task.generate(1, 2, 2, seed=3).inputs[0])
    '<sep> 1 <sep> 8 2 <sep> <mask> <mask> <mask> <eos>'
    """

    name: str
    vocab: tuple[str, ...]
    splits: Mapping[str, tuple[int, int]]
    sampler: Sampler
    min_len: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    length_name: str = "length"
    laid_out: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "splits", MappingProxyType(dict(self.splits)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def __repr__(self) -> str:
        options = "".join(f", {key}={value!r}" for key, value in self.options.items())
        return f"Task({self.name!r}, vocab_size={self.vocab_size}{options})"

    @property
    def vocab_size(self) -> int:
        """Number of token ids (the embedding and output size a model needs)."""
        return len(self.vocab)

    def generate(self, n: int, min_len: int, max_len: int, seed: int) -> Batch:
        """``n`` samples with length parameters in ``min_len..max_len`` (inclusive).

        The same arguments always give the same arrays. Unless a task says otherwise,
        the lengths are spread evenly over the range (see
        :func:`namcore.tasks._batch.stratified_lengths`) and the samples are shuffled.

        Parameters
        ----------
        n : int
            Number of samples, at least 1.
        min_len, max_len : int
            Inclusive range of the length parameter; ``min_len >= self.min_len``.
        seed : int
            Non-negative seed of ``numpy.random.default_rng``.

        Returns
        -------
        Batch

        Examples
        --------
        >>> from namcore import tasks
        >>> a = tasks.get("reduce").generate(8, 1, 10, seed=1)
        >>> b = tasks.get("reduce").generate(8, 1, 10, seed=1)
        >>> bool((a.inputs == b.inputs).all() and (a.targets == b.targets).all())
        True
        >>> tasks.get("reduce").generate(8, 5, 3, seed=1)
        Traceback (most recent call last):
        ...
        ValueError: reduce.generate: `min_len` must be <= `max_len`, got min_len=5, max_len=3
        """
        func = f"{self.name}.generate"
        n = check_int(func, "n", n, 1, " (the number of samples)")
        lo = check_int(
            func, "min_len", min_len, self.min_len, f" ({self.name} needs at least {self.min_len})"
        )
        hi = check_int(
            func, "max_len", max_len, self.min_len, f" ({self.name} needs at least {self.min_len})"
        )
        if lo > hi:
            raise ValueError(
                f"{func}: `min_len` must be <= `max_len`, got min_len={lo}, max_len={hi}"
            )
        seed = check_int(func, "seed", seed, 0, " (a numpy.random.default_rng seed)")
        rows, lengths = self.sampler(np.random.default_rng(seed), n, lo, hi)
        return assemble(rows, lengths, laid_out=self.laid_out)

    def encode(self, tokens: str | Sequence[str]) -> np.ndarray:
        """Token ids (int64) of space-separated token names or a sequence of names.

        Examples
        --------
        >>> from namcore import tasks
        >>> tasks.get("dyck").encode("( [ ] <sep> <mask>").tolist()
        [4, 6, 7, 2, 1]
        """
        names = tokens.split() if isinstance(tokens, str) else list(tokens)
        index = {name: i for i, name in enumerate(self.vocab)}
        unknown = [name for name in names if name not in index]
        if unknown:
            raise ValueError(
                f"{self.name}.encode: unknown tokens {unknown}; the vocabulary "
                f"is {list(self.vocab)}"
            )
        return np.asarray([index[name] for name in names], dtype=np.int64)

    def decode(self, ids: Any, *, strip_pad: bool = True) -> list[str]:
        """Token names of a 1-D sequence of ids, without ``<pad>`` unless ``strip_pad=False``.

        Examples
        --------
        >>> from namcore import tasks
        >>> tasks.get("reverse").decode([2, 5, 6, 2, 0, 0])
        ['<sep>', '1', '2', '<sep>']
        """
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(
                f"{self.name}.decode: `ids` must be 1-D (one sample), got shape {ids.shape}"
            )
        out = []
        for i in ids.tolist():
            if not 0 <= i < self.vocab_size:
                raise ValueError(
                    f"{self.name}.decode: token id {i} is outside 0..{self.vocab_size - 1}"
                )
            if i != PAD or not strip_pad:
                out.append(self.vocab[i])
        return out

    def format(self, ids: Any, *, strip_pad: bool = True) -> str:
        """:meth:`decode`, joined with spaces (for printing)."""
        return " ".join(self.decode(ids, strip_pad=strip_pad))
