"""ListOps: the generator against an independent evaluator, its bounds, and the task."""

from __future__ import annotations

import math

import numpy as np
import pytest

from namcore import tasks
from namcore.tasks import EOS, MASK, PAD, SEP, listops

OPS = {"[MIN", "[MAX", "[MED", "[SM"}


def parse(tokens: list[str], at: int = 0, depth: int = 1):
    """Recursive descent: (value, next position, deepest depth, arities) of the
    expression starting at ``tokens[at]``; written apart from the generator's code."""
    token = tokens[at]
    if token.isdigit():
        assert len(token) == 1
        return int(token), at + 1, depth, []
    assert token in OPS, token
    args, arities, deepest, at = [], [], depth, at + 1
    while tokens[at] != "]":
        value, at, sub_depth, sub_arities = parse(tokens, at, depth + 1)
        args.append(value)
        arities += sub_arities
        deepest = max(deepest, sub_depth)
    arities.append(len(args))
    if token == "[MIN":
        value = min(args)
    elif token == "[MAX":
        value = max(args)
    elif token == "[SM":
        value = math.fsum(args) % 10
    else:  # the integer part of the median
        s = sorted(args)
        middle = len(s) // 2
        value = s[middle] if len(s) % 2 else math.floor((s[middle - 1] + s[middle]) / 2)
    return int(value), at + 1, deepest, arities


def check_expression(text: str, label: int, lo: int, hi: int, max_depth=10, max_args=10):
    tokens = text.split()
    value, end, depth, arities = parse(tokens)
    assert end == len(tokens)  # one whole expression, nothing after it
    assert value == label
    assert lo <= len(tokens) <= hi
    assert depth <= max_depth
    assert all(2 <= k <= max_args for k in arities)


def test_hand_checked_values():
    for text, value in [
        ("7", 7),
        ("[MIN 4 2 9 ]", 2),
        ("[MAX 4 2 9 ]", 9),
        ("[MED 4 2 9 ]", 4),
        ("[MED 4 7 ]", 5),  # 5.5
        ("[MED 1 2 ]", 1),  # 1.5
        ("[SM 9 9 5 ]", 3),
        ("[SM 1 [MAX 2 [MIN 8 3 ] ] [MED 0 0 9 9 ] ]", 8),
    ]:
        assert listops.evaluate(text) == value
        assert parse(text.split())[0] == value
    with pytest.raises(ValueError, match="not one complete expression"):
        listops.evaluate("[MIN 1 2")


@pytest.mark.parametrize(("lo", "hi", "n"), [(500, 2000, 40), (32, 128, 300), (1, 12, 200)])
def test_labels_lengths_depths_and_arities(lo, hi, n):
    pairs = listops.generate(n, seed=5, min_length=lo, max_length=hi)
    assert len(pairs) == n
    for text, label in pairs:
        check_expression(text, label, lo, hi)
        assert listops.evaluate(text) == label


def test_other_depths_and_arities():
    for text, label in listops.generate(
        100, seed=2, min_length=4, max_length=60, max_depth=3, max_args=3
    ):
        check_expression(text, label, 4, 60, max_depth=3, max_args=3)


@pytest.mark.parametrize("length", [4, 5, 32, 101])
def test_an_exact_length_is_reachable(length):
    # the early rejection must never drop a tree that ends exactly at max_length
    pairs = listops.generate(12, seed=1, min_length=length, max_length=length)
    for text, label in pairs:
        check_expression(text, label, length, length)


def test_deterministic_per_seed_and_deduplicated():
    a = listops.generate(50, seed=9, min_length=20, max_length=80)
    assert a == listops.generate(50, seed=9, min_length=20, max_length=80)
    assert a != listops.generate(50, seed=10, min_length=20, max_length=80)
    # lengths 1..4 hold only 10 values and 400 four-token expressions: duplicates are
    # drawn often and must be dropped
    small = listops.generate(300, seed=0, min_length=1, max_length=4)
    assert len({text for text, _ in small}) == 300
    assert {text for text, _ in small if len(text.split()) == 1} == {str(d) for d in range(10)}


def test_every_label_and_operator_occurs():
    pairs = listops.generate(300, seed=3, min_length=32, max_length=128)
    assert {label for _, label in pairs} == set(range(10))
    assert {t for text, _ in pairs for t in text.split() if t.startswith("[")} == OPS


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"min_length": 9, "max_length": 8}, ValueError, "`min_length` must be <="),
        ({"min_length": 2, "max_length": 3}, ValueError, "no expression has 2..3"),
        ({"min_length": 5, "max_length": 9, "max_depth": 1}, ValueError, "no expression"),
        ({"max_args": 1}, ValueError, "`max_args` must be an int >= 2"),
        ({"min_length": 0}, ValueError, "`min_length`"),
        ({"max_depth": 2.0}, TypeError, "`max_depth` must be an int"),
    ],
)
def test_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        listops.generate(2, seed=0, **kwargs)


def test_the_tasks_and_their_splits():
    lra, short = tasks.get("listops"), tasks.get("listops-short")
    assert "listops" in tasks.NAMES and "listops-short" in tasks.NAMES
    assert lra.vocab == short.vocab and lra.vocab_size == 19
    assert lra.vocab[4:14] == tuple(str(d) for d in range(10))
    assert tasks.splits("listops") == {
        "train": (500, 2000),
        "val": (500, 2000),
        "test": (500, 2000),
    }
    assert tasks.splits("listops-short")["test"] == listops.SHORT_LENGTHS
    assert tasks.get("listops", max_depth=6).options == {"max_depth": 6, "max_args": 10}


@pytest.mark.parametrize(("name", "n"), [("listops-short", 64), ("listops", 8)])
def test_batches_hold_the_label_in_a_one_position_slot(name, n):
    task = tasks.get(name)
    lo, hi = tasks.splits(name)["train"]
    batch = task.generate(n, lo, hi, seed=4)
    size = batch.mask.sum(axis=1)
    assert batch.inputs.shape[1] == size.max() == batch.lengths.max() + 3
    assert (batch.lengths == size - 3).all() and (
        (lo <= batch.lengths) & (batch.lengths <= hi)
    ).all()
    assert (batch.loss_mask.sum(axis=1) == 1).all()
    rows = np.arange(n)
    assert (batch.inputs[rows, size - 3] == SEP).all() and (
        batch.inputs[rows, size - 1] == EOS
    ).all()
    assert (batch.inputs[batch.loss_mask] == MASK).all() and (
        batch.inputs[~batch.mask] == PAD
    ).all()
    labels = listops.labels(batch)
    for i in range(n):
        text = " ".join(task.decode(batch.inputs[i, : batch.lengths[i]]))
        assert parse(text.split())[0] == labels[i]
    # sequence accuracy is classification accuracy: right where the label is right
    guess = batch.targets.copy()
    guess[rows[: n // 2], size[: n // 2] - 2] = 4 + (labels[: n // 2] + 1) % 10
    assert tasks.sequence_accuracy(guess, batch) == 0.5
    again = task.generate(n, lo, hi, seed=4)
    assert np.array_equal(again.inputs, batch.inputs) and np.array_equal(
        again.targets, batch.targets
    )
