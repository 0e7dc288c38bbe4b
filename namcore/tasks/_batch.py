"""The result type shared by every task generator, and the special tokens.

Every task lays out one sample the same way (see :func:`layout`): the task's prompt,
a separator, an *answer slot* of ``MASK`` tokens, and a final ``EOS``. The targets
repeat the inputs everywhere except in the slot, which holds the answer (followed by
``EOS`` fillers when the answer is shorter than the slot). Only the slot is scored.
A batch right-pads the samples with ``PAD`` to the longest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EOS",
    "MASK",
    "PAD",
    "SEP",
    "SPECIALS",
    "Batch",
    "LaidRow",
    "Row",
    "assemble",
    "layout",
    "stratified_lengths",
]

#: Padding token (id 0 in every task): after the end of a sample.
PAD = 0
#: The answer-slot token of the inputs: "predict something here".
MASK = 1
#: Separator (the paper's delimiter) between the parts of a prompt and before the slot.
SEP = 2
#: End of a sample; also fills the answer slot after a short answer.
EOS = 3
#: Names of the four special tokens, in id order; every task's vocabulary starts with them.
SPECIALS: tuple[str, ...] = ("<pad>", "<mask>", "<sep>", "<eos>")

#: One sample before padding: (prompt tokens, answer tokens, number of slot positions).
Row = tuple[list[int], list[int], int]


@dataclass(frozen=True, eq=False)
class Batch:
    """Aligned input and target token arrays of ``N`` samples, right-padded to ``L``.

    Attributes
    ----------
    inputs : numpy.ndarray of int64, shape (N, L)
        What the model reads: the prompt, ``SEP``, ``MASK`` over the answer slot,
        ``EOS``, then ``PAD``.
    targets : numpy.ndarray of int64, shape (N, L)
        What the model should output at each position: equal to ``inputs`` outside the
        answer slot, the answer (then ``EOS`` fillers) inside it.
    mask : numpy.ndarray of bool, shape (N, L)
        ``True`` at real tokens, ``False`` at padding. Each row is ``True`` on a prefix.
    loss_mask : numpy.ndarray of bool, shape (N, L)
        ``True`` at the scored positions (the answer slot); a subset of ``mask``.
    lengths : numpy.ndarray of int64, shape (N,)
        The task's length parameter of each sample (number of digits, Dyck prefix
        length, number of SCAN actions, ...), not the row length.

    Examples
    --------
    >>> from namcore import tasks
    >>> batch = tasks.get("reverse").generate(4, 2, 3, seed=0)
    >>> len(batch), batch.inputs.shape == batch.targets.shape == batch.mask.shape
    (4, True)
    >>> sorted(batch.lengths.tolist())
    [2, 2, 3, 3]
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    loss_mask: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        shape = self.inputs.shape
        for name in ("targets", "mask", "loss_mask"):
            if getattr(self, name).shape != shape:
                raise ValueError(
                    f"Batch: `{name}` must have the shape of `inputs` {shape}, "
                    f"got {getattr(self, name).shape}"
                )
        if self.lengths.shape != shape[:1]:
            raise ValueError(
                f"Batch: `lengths` must have shape ({shape[0]},), got {self.lengths.shape}"
            )

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def layout(
    prompt: Sequence[int], answer: Sequence[int], slots: int
) -> tuple[list[int], list[int], list[bool]]:
    """Inputs, targets and loss mask of one sample (no padding).

    ``inputs = prompt SEP MASK*slots EOS`` and
    ``targets = prompt SEP answer EOS*(slots - len(answer)) EOS``; the ``slots``
    positions after the separator are scored.

    Examples
    --------
    >>> layout([4, 5], [5, 4], 2)
    ([4, 5, 2, 1, 1, 3], [4, 5, 2, 5, 4, 3], [False, False, False, True, True, False])
    >>> layout([4], [], 2)[1]
    [4, 2, 3, 3, 3]
    """
    if len(answer) > slots:
        raise ValueError(
            f"layout: an answer of {len(answer)} tokens does not fit in {slots} slot positions"
        )
    head = [*prompt, SEP]
    inputs = [*head, *([MASK] * slots), EOS]
    targets = [*head, *answer, *([EOS] * (slots - len(answer))), EOS]
    scored = [False] * len(head) + [True] * slots + [False]
    return inputs, targets, scored


#: One sample already laid out: (inputs, targets, scored), all of one length.
LaidRow = tuple[list[int], list[int], list[bool]]


def assemble(
    rows: Sequence[Row] | Sequence[LaidRow],
    lengths: Sequence[int] | np.ndarray,
    *,
    laid_out: bool = False,
) -> Batch:
    """Lay out every row (unless ``laid_out``) and right-pad them into a :class:`Batch`."""
    laid = list(rows) if laid_out else [layout(*row) for row in rows]
    width = max(len(inputs) for inputs, _, _ in laid)
    n = len(laid)
    inputs = np.full((n, width), PAD, dtype=np.int64)
    targets = np.full((n, width), PAD, dtype=np.int64)
    mask = np.zeros((n, width), dtype=bool)
    loss_mask = np.zeros((n, width), dtype=bool)
    for i, (row_in, row_out, row_scored) in enumerate(laid):
        size = len(row_in)
        inputs[i, :size] = row_in
        targets[i, :size] = row_out
        mask[i, :size] = True
        loss_mask[i, :size] = row_scored
    return Batch(inputs, targets, mask, loss_mask, np.asarray(lengths, dtype=np.int64))


def stratified_lengths(n: int, min_len: int, max_len: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` lengths spread as evenly as possible over ``min_len..max_len``, shuffled.

    Sample ``i`` (before shuffling) gets ``min_len + (span * i) // n`` with
    ``span = max_len - min_len + 1``, so every length gets ``n // span`` or one more
    samples and the per-length accuracies all rest on similar counts.

    Examples
    --------
    >>> import numpy as np
    >>> sorted(stratified_lengths(7, 1, 3, np.random.default_rng(0)).tolist())
    [1, 1, 1, 2, 2, 3, 3]
    """
    span = max_len - min_len + 1
    ordered = min_len + (span * np.arange(n, dtype=np.int64)) // n
    return rng.permutation(ordered)
