"""ListOps (Long Range Arena): evaluate a long nested list expression, a 10-way label.

The grammar is that of LRA's ListOps (Nangia & Bowman 2018; Tay et al. 2021). An
expression is a value ``0``–``9`` or an operator applied to 2 or more expressions::

    [MAX 2 9 [MIN 4 7 ] 0 ]          = 9

with the operators ``[MIN``, ``[MAX``, ``[MED`` (the integer part of the median) and
``[SM`` (the sum modulo 10), each closed by ``]``. A random tree grows from its root:
below ``max_depth`` a node is a value with probability 0.75 and otherwise an operator
with 2 to ``max_args`` children (uniformly); at ``max_depth`` it is a value. The
*length* of an expression is its number of tokens (operators, values and ``]``);
:func:`generate` keeps the trees whose length lies in ``min_length..max_length``, drops
duplicates, and labels each with its value.

As a :class:`~namcore.tasks.Task` (``tasks.get("listops")``) a sample is laid out like
every other task, with a one-position answer slot that holds the label::

    inputs:   expression <sep> <mask> <eos>
    targets:  expression <sep> label  <eos>

so the sequence accuracy of the aligned machinery is classification accuracy, and a
bidirectional encoder reads the label at the ``<mask>`` position (a CLS token placed
at the end). The vocabulary has 19 tokens: the specials (ids 0–3), the values ``0``–``9``
(ids 4–13, the labels too), the four operators (14–17) and ``]`` (18). The length
parameter is the expression's length; samples are not spread evenly over the range but
follow the generator's own distribution, as in LRA. ``"listops"`` uses LRA's lengths
500–2000; ``"listops-short"`` (:data:`SHORT_LENGTHS`) is the same grammar at lengths a
CPU trains on in minutes.

Examples
--------
>>> from namcore.tasks import listops
>>> [(text, label)] = listops.generate(1, seed=4, min_length=5, max_length=12)
>>> text, label
('[SM 7 [MED 4 9 2 ] 6 ]', 7)
>>> listops.evaluate(text) == label
True
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ._batch import SPECIALS, Row
from ._task import Task, check_int

__all__ = [
    "LISTOPS_SPLITS",
    "OPERATORS",
    "SHORT_LENGTHS",
    "VOCAB",
    "evaluate",
    "generate",
    "labels",
    "listops_short_task",
    "listops_task",
]

#: The operators, in token order.
OPERATORS: tuple[str, ...] = ("[MIN", "[MAX", "[MED", "[SM")
#: Token names: the specials, the values ``0``–``9``, the operators and ``]``.
VOCAB: tuple[str, ...] = SPECIALS + tuple(str(d) for d in range(10)) + OPERATORS + ("]",)
#: LRA's ListOps lengths (tokens per expression), inclusive; every split draws from them.
LISTOPS_SPLITS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"train": (500, 2000), "val": (500, 2000), "test": (500, 2000)}
)
#: The lengths of ``"listops-short"``: what the ``quick`` preset trains on a 2-core CPU.
SHORT_LENGTHS: tuple[int, int] = (32, 128)

# Local token codes of the generator: 0-9 values, 10-13 operators, 14 "]".
_CLOSE = 14
_VALUE_P = 0.75


def _apply(op: int, args: list[int]) -> int:
    if op == 10:
        return min(args)
    if op == 11:
        return max(args)
    if op == 12:
        ordered = sorted(args)
        half = len(ordered) // 2
        return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) // 2
    return sum(args) % 10


class _Uniforms:
    """Uniform numbers drawn from ``rng`` in blocks (one Python call per number is slow)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.i = rng, 0
        self.block: list[float] = []

    def __call__(self) -> float:
        if self.i == len(self.block):
            self.block, self.i = self.rng.random(4096).tolist(), 0
        self.i += 1
        return self.block[self.i - 1]


def _tree(draw: _Uniforms, max_length: int, max_depth: int, max_args: int):
    """One random expression as local codes and its value, or None once it must exceed
    ``max_length`` tokens (every open operator still needs a value per missing child and
    its ``]``, so the tree is abandoned as soon as that lower bound is too long)."""
    tokens: list[int] = []
    stack: list[list] = []  # per open operator: [op, children still to draw, values]
    # The fewest tokens the open operators still need: a value per missing child and a
    # "]" each, less one per open operator below the root (its parent counted it as a
    # missing child, but its own first token is already written).
    pending = 0
    while True:
        if len(stack) + 1 < max_depth and draw() >= _VALUE_P:
            op = 10 + int(draw() * 4)
            children = 2 + int(draw() * (max_args - 1))
            tokens.append(op)
            pending += children + (1 if not stack else 0)
            stack.append([op, children, []])
        else:
            value = int(draw() * 10)
            tokens.append(value)
            while stack:
                frame = stack[-1]
                frame[2].append(value)
                frame[1] -= 1
                pending -= 1
                if frame[1]:
                    break
                stack.pop()
                tokens.append(_CLOSE)
                pending -= 1 if not stack else 0
                value = _apply(frame[0], frame[2])
            else:
                return tokens, value
        if len(tokens) + pending > max_length:
            return None


def _samples(
    rng: np.random.Generator,
    n: int,
    min_length: int,
    max_length: int,
    max_depth: int,
    max_args: int,
) -> list[tuple[tuple[int, ...], int]]:
    draw = _Uniforms(rng)
    seen: set[tuple[int, ...]] = set()
    out: list[tuple[tuple[int, ...], int]] = []
    while len(out) < n:
        tree = _tree(draw, max_length, max_depth, max_args)
        if tree is None or not min_length <= len(tree[0]) <= max_length:
            continue
        key = tuple(tree[0])
        if key not in seen:
            seen.add(key)
            out.append((key, tree[1]))
    return out


def _check(func: str, min_length: int, max_length: int, max_depth: int, max_args: int) -> None:
    check_int(func, "min_length", min_length, 1)
    check_int(func, "max_length", max_length, 1)
    check_int(func, "max_depth", max_depth, 1)
    check_int(func, "max_args", max_args, 2)
    if min_length > max_length:
        raise ValueError(
            f"{func}: `min_length` must be <= `max_length`, got {min_length} > {max_length}"
        )
    longest = 1
    for _ in range(max_depth - 1):  # the longest tree: every node above the last an operator
        longest = 2 + max_args * longest
    if (max_length < 4 and min_length > 1) or min_length > longest:
        raise ValueError(
            f"{func}: no expression has {min_length}..{max_length} tokens "
            f"(max_depth={max_depth}, max_args={max_args})"
        )


def generate(
    n: int,
    *,
    seed: int,
    min_length: int = 500,
    max_length: int = 2000,
    max_depth: int = 10,
    max_args: int = 10,
) -> list[tuple[str, int]]:
    """``n`` distinct random ListOps expressions with their values.

    Parameters
    ----------
    n : int
        Number of expressions.
    seed : int
        Seed of ``numpy.random.default_rng``; the same arguments give the same list.
    min_length, max_length : int
        Inclusive range of the number of tokens per expression (LRA: 500 to 2000).
    max_depth : int
        Nesting depth at which every node is a value (the root has depth 1).
    max_args : int
        Most children of an operator (at least 2).

    Returns
    -------
    list of (str, int)
        Space-separated expressions and their values ``0``–``9``.

    Examples
    --------
    >>> pairs = generate(3, seed=1, min_length=500, max_length=2000)
    >>> [500 <= len(text.split()) <= 2000 for text, _ in pairs]
    [True, True, True]
    """
    check_int("generate", "n", n, 1)
    check_int("generate", "seed", seed, 0)
    _check("generate", min_length, max_length, max_depth, max_args)
    names = [str(d) for d in range(10)] + list(OPERATORS) + ["]"]
    rng = np.random.default_rng(seed)
    pairs = _samples(rng, n, min_length, max_length, max_depth, max_args)
    return [(" ".join(names[t] for t in tokens), value) for tokens, value in pairs]


def evaluate(expression: str) -> int:
    """The value of a space-separated ListOps expression (a stack evaluator).

    Examples
    --------
    >>> evaluate("[SM 9 [MAX 2 5 ] 3 ]")
    7
    """
    stack: list[list] = [[None, []]]
    for token in expression.split():
        if token in OPERATORS:
            stack.append([10 + OPERATORS.index(token), []])
        elif token == "]":
            op, args = stack.pop()
            stack[-1][1].append(_apply(op, args))
        else:
            stack[-1][1].append(int(token))
    if len(stack) != 1 or len(stack[0][1]) != 1:
        raise ValueError(f"evaluate: not one complete expression: {expression!r}")
    return stack[0][1][0]


def labels(batch) -> np.ndarray:
    """The label (0–9) of every sample of a ListOps batch, read from its answer slot.

    Examples
    --------
    >>> from namcore import tasks
    >>> batch = tasks.get("listops-short").generate(2, 32, 40, seed=0)
    >>> labels(batch).shape
    (2,)
    """
    slot = np.argmax(batch.loss_mask, axis=1)
    return batch.targets[np.arange(len(batch)), slot] - len(SPECIALS)


def _sampler(max_depth: int, max_args: int):
    def sample(rng: np.random.Generator, n: int, lo: int, hi: int) -> tuple[list[Row], np.ndarray]:
        _check("listops.generate", lo, hi, max_depth, max_args)
        offset = len(SPECIALS)
        pairs = _samples(rng, n, lo, hi, max_depth, max_args)
        rows: list[Row] = [
            ([t + offset for t in tokens], [value + offset], 1) for tokens, value in pairs
        ]
        return rows, np.asarray([len(tokens) for tokens, _ in pairs], dtype=np.int64)

    return sample


def _task(name: str, span: tuple[int, int], max_depth: int, max_args: int) -> Task:
    _check(f"{name} task", *span, max_depth, max_args)
    return Task(
        name,
        VOCAB,
        {"train": span, "val": span, "test": span},
        _sampler(max_depth, max_args),
        options={"max_depth": max_depth, "max_args": max_args},
        length_name="expression length (tokens)",
    )


def listops_task(max_depth: int = 10, max_args: int = 10) -> Task:
    """LRA's ListOps: splits ``train``, ``val`` and ``test`` all of lengths 500–2000.

    Examples
    --------
    >>> task = listops_task()
    >>> task, task.splits["test"]
    (Task('listops', vocab_size=19, max_depth=10, max_args=10), (500, 2000))
    """
    return _task("listops", LISTOPS_SPLITS["train"], max_depth, max_args)


def listops_short_task(max_depth: int = 10, max_args: int = 10) -> Task:
    """ListOps at the lengths of :data:`SHORT_LENGTHS` (CPU-sized), same grammar.

    Examples
    --------
    >>> task = listops_short_task()
    >>> batch = task.generate(1, 4, 8, seed=3)
    >>> task.format(batch.inputs[0])
    '[MED 4 7 ] <sep> <mask> <eos>'
    >>> task.format(batch.targets[0])  # the integer part of the median 5.5
    '[MED 4 7 ] <sep> 5 <eos>'
    """
    return _task("listops-short", SHORT_LENGTHS, max_depth, max_args)
