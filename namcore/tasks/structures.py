"""The data-structure tasks: answer ``pop`` as a stack, a FIFO queue or a priority queue.

A sample is a stream of ``n`` pushes and ``n`` pops, ``<sep> op ... op <eos>``, where a
digit ``d`` pushes ``d`` and the token ``pop`` removes one element. The target at a
``pop`` is the element removed (only those positions are scored); everywhere else
the targets repeat the inputs. The answers are interleaved with the stream, so a
model must answer each pop when it comes: nothing is left to a final answer slot.

=================  ====================================
task               a ``pop`` returns
=================  ====================================
stack              the element pushed last (LIFO)
queue              the element pushed first (FIFO)
priority-queue     the smallest element present
=================  ====================================

The interleaving is a random walk: push with probability 1/2 while both a push and
a pop are possible, so the stream is always valid (never a pop of nothing) and ends
empty. The vocabulary is the digit tasks' plus ``pop`` (id 14); the length parameter
is ``n``, with the digit tasks' splits.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ._batch import EOS, SEP, LaidRow, stratified_lengths
from ._task import Sampler, Task
from .digits import DIGIT0, DIGIT_SPLITS
from .digits import VOCAB as DIGIT_VOCAB

__all__ = ["POP", "VOCAB", "priority_queue_task", "queue_task", "stack_task"]

#: Token names: the digit tasks' vocabulary, then ``pop``.
VOCAB: tuple[str, ...] = (*DIGIT_VOCAB, "pop")
#: Token id of ``pop``.
POP = len(DIGIT_VOCAB)


class _Store(Protocol):
    """A data structure of ints: what ``pop`` returns is the structure's business."""

    def push(self, x: int) -> None: ...

    def pop(self) -> int: ...


class _Stack:
    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, x: int) -> None:
        self.items.append(x)

    def pop(self) -> int:
        return self.items.pop()


class _Queue:
    def __init__(self) -> None:
        self.items: deque[int] = deque()

    def push(self, x: int) -> None:
        self.items.append(x)

    def pop(self) -> int:
        return self.items.popleft()


class _MinHeap:
    def __init__(self) -> None:
        self.items: list[int] = []

    def push(self, x: int) -> None:
        heapq.heappush(self.items, x)

    def pop(self) -> int:
        return heapq.heappop(self.items)


def _stream(rng: np.random.Generator, n: int, structure: Callable[[], _Store]) -> LaidRow:
    """One laid-out sample of ``n`` pushes and ``n`` pops."""
    store = structure()
    inputs, targets = [SEP], [SEP]
    pushes = held = 0
    while pushes < n or held:
        push = held == 0 or (pushes < n and rng.random() < 0.5)
        if push:
            token = int(rng.integers(0, 10)) + DIGIT0
            store.push(token)
            inputs.append(token)
            targets.append(token)
            pushes, held = pushes + 1, held + 1
        else:
            inputs.append(POP)
            targets.append(store.pop())
            held -= 1
    inputs.append(EOS)
    targets.append(EOS)
    scored = [token == POP for token in inputs]
    return inputs, targets, scored


def _sampler(structure: Callable[[], _Store]) -> Sampler:
    def sample(
        rng: np.random.Generator, n: int, lo: int, hi: int
    ) -> tuple[list[LaidRow], np.ndarray]:
        lengths = stratified_lengths(n, lo, hi, rng)
        return [_stream(rng, length, structure) for length in lengths.tolist()], lengths

    return sample


def stack_task() -> Task:
    """Pops return the element pushed last.

    Examples
    --------
    >>> task = stack_task()
    >>> batch = task.generate(1, 3, 3, seed=2)
    >>> task.format(batch.inputs[0])
    '<sep> 8 2 pop 3 pop pop <eos>'
    >>> task.format(batch.targets[0])
    '<sep> 8 2 2 3 3 8 <eos>'
    """
    return Task("stack", VOCAB, DIGIT_SPLITS, _sampler(_Stack), length_name="pushes", laid_out=True)


def queue_task() -> Task:
    """Pops return the element pushed first (FIFO).

    Examples
    --------
    >>> task = queue_task()
    >>> task.format(task.generate(1, 3, 3, seed=2).targets[0])  # inputs: 8 2 pop 3 pop pop
    '<sep> 8 2 8 3 2 3 <eos>'
    """
    return Task("queue", VOCAB, DIGIT_SPLITS, _sampler(_Queue), length_name="pushes", laid_out=True)


def priority_queue_task() -> Task:
    """Pops return the smallest element present.

    Examples
    --------
    >>> task = priority_queue_task()
    >>> task.format(task.generate(1, 3, 3, seed=2).targets[0])  # inputs: 8 2 pop 3 pop pop
    '<sep> 8 2 2 3 3 8 <eos>'
    """
    return Task(
        "priority-queue",
        VOCAB,
        DIGIT_SPLITS,
        _sampler(_MinHeap),
        length_name="pushes",
        laid_out=True,
    )
