"""Algorithmic tasks for length generalization, as aligned token arrays.

The tasks of the NAM paper's compositional / zero-shot experiments (Nam & Seo, arXiv
2302.09422) and of the authors' later code (https://github.com/hwnam831/neuralattentionmemory):
``add`` (the paper's "Fib"), ``reverse``
(its "Palin"), ``reduce``, ``dyck`` (Dyck-4 completion), ``copy``, ``repeat-copy`` and
``scan`` (SCAN's length split, built from its grammar); and the tasks of the HAM paper
(Andrychowicz & Kurach, arXiv 1602.03218): ``sort``, ``merge``, ``search``
(:mod:`namcore.tasks.ordering`) and the data structures ``stack``, ``queue`` and
``priority-queue`` (:mod:`namcore.tasks.structures`); and Long Range Arena's ``listops``
(with ``listops-short``, the same grammar at CPU-sized lengths;
:mod:`namcore.tasks.listops`), a 10-way classification laid out with a one-position
answer slot. Every task generates, from a
seed, a :class:`Batch` whose inputs and targets are aligned position by position, so
any sequence labeller (LSAM, NAM-TM, a Transformer encoder) can learn it.

A sample is ``prompt <sep> <mask>...<mask> <eos>`` in the inputs; the targets hold the
answer at the ``<mask>`` positions (the answer slot, the only scored positions) and
repeat the inputs elsewhere. Token ids 0–3 are ``<pad> <mask> <sep> <eos>`` in every
task. :mod:`namcore.tasks.digits`, :mod:`namcore.tasks.dyck` and
:mod:`namcore.tasks.scan` describe each layout.

Examples
--------
>>> from namcore import tasks
>>> tasks.NAMES  # doctest: +NORMALIZE_WHITESPACE
('add', 'reverse', 'reduce', 'dyck', 'copy', 'repeat-copy', 'scan', 'sort', 'merge',
 'search', 'stack', 'queue', 'priority-queue', 'listops', 'listops-short')
>>> task = tasks.get("reverse")
>>> tasks.splits("reverse")["od_easy"]
(11, 13)
>>> batch = task.generate(256, *tasks.splits("reverse")["train"], seed=0)
>>> batch.inputs.shape, batch.inputs.dtype.name
((256, 23), 'int64')
>>> task.format(batch.inputs[0])
'<sep> 7 0 3 9 <sep> <mask> <mask> <mask> <mask> <eos>'
>>> task.format(batch.targets[0])
'<sep> 7 0 3 9 <sep> 9 3 0 7 <eos>'
>>> tasks.sequence_accuracy(batch.targets, batch)
1.0
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from . import listops, scan
from ._batch import EOS, MASK, PAD, SEP, SPECIALS, Batch
from ._task import Task
from .digits import DIGIT_SPLITS, add_task, copy_task, reduce_task, repeat_copy_task, reverse_task
from .dyck import DYCK_SPLITS, dyck_task
from .listops import LISTOPS_SPLITS, listops_short_task, listops_task
from .metrics import accuracy_by_length, sequence_accuracy, sequence_correct
from .ordering import MERGE_SPLITS, merge_task, search_task, sort_task
from .scan import SCAN_SPLITS, scan_task
from .structures import priority_queue_task, queue_task, stack_task

__all__ = [
    "DYCK_SPLITS",
    "EOS",
    "LISTOPS_SPLITS",
    "MASK",
    "MERGE_SPLITS",
    "NAMES",
    "PAD",
    "SCAN_SPLITS",
    "SEP",
    "SPECIALS",
    "SPLITS",
    "Batch",
    "Task",
    "accuracy_by_length",
    "get",
    "listops",
    "scan",
    "sequence_accuracy",
    "sequence_correct",
    "splits",
]

_FACTORIES: dict[str, Callable[..., Task]] = {
    "add": add_task,
    "reverse": reverse_task,
    "reduce": reduce_task,
    "dyck": dyck_task,
    "copy": copy_task,
    "repeat-copy": repeat_copy_task,
    "scan": scan_task,
    "sort": sort_task,
    "merge": merge_task,
    "search": search_task,
    "stack": stack_task,
    "queue": queue_task,
    "priority-queue": priority_queue_task,
    "listops": listops_task,
    "listops-short": listops_short_task,
}

#: Names :func:`get` knows, in a fixed order.
NAMES: tuple[str, ...] = tuple(_FACTORIES)

#: The paper's length splits of the digit tasks (add, reverse, reduce, copy,
#: repeat-copy), as inclusive ranges of the number of digits: train 1–10, in-distribution
#: validation ``id`` 5–10, ``od_easy`` 11–13, ``od_hard`` 14–16, and ``od_extra`` 17–22
#: (the test range of the authors' later code).
SPLITS: Mapping[str, tuple[int, int]] = DIGIT_SPLITS


def _check_name(func: str, name: Any) -> str:
    if name not in _FACTORIES:
        raise ValueError(
            f"{func}: unknown task {name!r}; the tasks are {', '.join(repr(n) for n in NAMES)}"
        )
    return name


def get(name: str, **options: Any) -> Task:
    """The task called ``name``, built with ``options``.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    **options
        Task options: ``k`` (copies, default 3) for ``"repeat-copy"``; ``max_depth``
        (default 8, or a ``(low, high)`` range) and ``p_open`` (default 0.7) for
        ``"dyck"``; ``slots`` (answer positions, default 48) for ``"scan"``;
        ``max_depth`` (default 10) and ``max_args`` (default 10) for the ListOps tasks.

    Examples
    --------
    >>> from namcore import tasks
    >>> tasks.get("repeat-copy", k=4)
    Task('repeat-copy', vocab_size=14, k=4)
    >>> tasks.get("fib")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    ValueError: get: unknown task 'fib'; the tasks are 'add', 'reverse', 'reduce', 'dyck',
    'copy', 'repeat-copy', 'scan', 'sort', 'merge', 'search', 'stack', 'queue',
    'priority-queue', 'listops', 'listops-short'
    """
    factory = _FACTORIES[_check_name("get", name)]
    accepted = list(inspect.signature(factory).parameters)
    unknown = [key for key in options if key not in accepted]
    if unknown:
        known = ", ".join(f"`{key}`" for key in accepted) or "none"
        raise TypeError(
            f"get: task {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {known}"
        )
    return factory(**options)


def splits(name: str) -> dict[str, tuple[int, int]]:
    """Named inclusive ranges of the length parameter of task ``name``.

    The digit tasks use :data:`SPLITS`; ``"dyck"`` uses prefix lengths
    (:data:`DYCK_SPLITS`), ``"scan"`` action counts: ``train`` 1–22, ``test`` 24–48, and
    the ListOps tasks expression lengths (``train``, ``val`` and ``test`` alike).

    Examples
    --------
    >>> from namcore import tasks
    >>> tasks.splits("scan")
    {'train': (1, 22), 'test': (24, 48)}
    >>> tasks.splits("add")["od_hard"]
    (14, 16)
    """
    return dict(_FACTORIES[_check_name("splits", name)]().splits)
