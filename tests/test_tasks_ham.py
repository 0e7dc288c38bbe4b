"""The HAM paper's tasks: sort, merge, search and the data structures, against oracles."""

from __future__ import annotations

import numpy as np
import pytest

from namcore import tasks
from namcore.tasks import EOS, MASK, PAD, SEP
from namcore.tasks.structures import POP

DIGIT0 = 4  # token id of the digit 0


def rows(batch):
    """Per sample: (inputs, targets, scored) without padding, as lists."""
    for i in range(len(batch)):
        n = int(batch.mask[i].sum())
        yield (
            batch.inputs[i, :n].tolist(),
            batch.targets[i, :n].tolist(),
            batch.loss_mask[i, :n].tolist(),
        )


def split_at(tokens, value):
    """``tokens`` cut at every ``value``."""
    parts, current = [], []
    for t in tokens:
        if t == value:
            parts.append(current)
            current = []
        else:
            current.append(t)
    return [*parts, current]


@pytest.mark.parametrize("lengths", [(1, 10), (17, 22)])
def test_sort(lengths):
    batch = tasks.get("sort").generate(200, *lengths, seed=1)
    for (inputs, targets, scored), n in zip(rows(batch), batch.lengths, strict=True):
        _, digits, slot = split_at(inputs, SEP)
        assert len(digits) == n and slot == [MASK] * n + [EOS]
        answer = [t for t, s in zip(targets, scored, strict=True) if s]
        assert answer == sorted(digits)
        assert all(DIGIT0 <= t < DIGIT0 + 10 for t in answer)


def test_merge():
    task = tasks.get("merge")
    batch = task.generate(300, 2, 16, seed=2)
    cuts = set()
    for (inputs, targets, scored), n in zip(rows(batch), batch.lengths, strict=True):
        _, a, b, slot = split_at(inputs, SEP)
        assert a == sorted(a) and b == sorted(b) and a and b and len(a) + len(b) == n
        assert slot == [MASK] * n + [EOS]
        assert [t for t, s in zip(targets, scored, strict=True) if s] == sorted(a + b)
        cuts.add(len(a))
    assert len(cuts) > 10  # the split point varies
    with pytest.raises(ValueError, match="merge needs at least 2"):
        task.generate(4, 1, 3, seed=0)
    assert tasks.splits("merge")["train"] == (2, 10)


def test_search():
    task = tasks.get("search")
    assert task.vocab_size == 4 + 10 + 32
    batch = task.generate(300, 1, 22, seed=3)
    positions = set()
    for (inputs, targets, scored), n in zip(rows(batch), batch.lengths, strict=True):
        _, pairs, query, slot = split_at(inputs, SEP)
        keys, values = pairs[0::2], pairs[1::2]
        assert len(keys) == len(values) == n
        assert keys == sorted(set(keys)) and all(t >= 14 for t in keys)
        assert all(DIGIT0 <= v < DIGIT0 + 10 for v in values)
        assert len(query) == 1 and query[0] in keys and slot == [MASK, EOS]
        answer = [t for t, s in zip(targets, scored, strict=True) if s]
        assert answer == [values[keys.index(query[0])]]
        positions.add((n, keys.index(query[0])))
    assert len(positions) > 100  # queries hit every position, not only the ends


class ListStructure:
    """An independent reference: a plain list and a rule for what ``pop`` removes."""

    def __init__(self, pick):
        self.items, self.pick = [], pick

    def pop(self):
        return self.items.pop(self.pick(self.items))


PICKS = {
    "stack": lambda items: len(items) - 1,
    "queue": lambda items: 0,
    "priority-queue": lambda items: items.index(min(items)),
}


@pytest.mark.parametrize("name", list(PICKS))
@pytest.mark.parametrize("lengths", [(1, 10), (14, 16)])
def test_data_structures_answer_every_pop(name, lengths):
    task = tasks.get(name)
    assert task.vocab[POP] == "pop" and task.vocab_size == 15
    batch = task.generate(200, *lengths, seed=4)
    for (inputs, targets, scored), n in zip(rows(batch), batch.lengths, strict=True):
        assert inputs[0] == targets[0] == SEP and inputs[-1] == targets[-1] == EOS
        ops = inputs[1:-1]
        assert ops.count(POP) == n and len(ops) == 2 * n
        reference = ListStructure(PICKS[name])
        for op, target, is_scored in zip(ops, targets[1:-1], scored[1:-1], strict=True):
            assert is_scored == (op == POP)
            if op == POP:
                assert reference.items, "a pop of an empty structure"
                assert target == reference.pop()
            else:
                assert DIGIT0 <= op < DIGIT0 + 10 and target == op
                reference.items.append(op)
        assert reference.items == []
    assert not (batch.inputs[~batch.mask] != PAD).any()


def test_interleavings_vary():
    batch = tasks.get("stack").generate(100, 6, 6, seed=5)
    shapes = {tuple(row == POP) for row in batch.inputs}
    assert len(shapes) > 20
    assert np.array_equal(batch.loss_mask, batch.inputs == POP)
