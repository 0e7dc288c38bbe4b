"""namcore.tasks: exact layouts, answers checked by independent oracles, splits, metrics."""

from __future__ import annotations

import doctest
import importlib
import re

import numpy as np
import pytest

from namcore import tasks
from namcore.tasks import EOS, MASK, PAD, SEP, scan
from namcore.tasks._batch import layout

DIGIT_TASKS = ["add", "reverse", "reduce", "copy", "repeat-copy"]
N = 300  # samples per property check


def rows(task, batch, which="targets"):
    """Decoded rows (padding stripped) of ``batch.inputs`` or ``batch.targets``."""
    return [task.decode(row) for row in getattr(batch, which)]


def parts(tokens):
    """Split decoded tokens at ``<sep>``: ``['<sep>', '1', '<sep>', '2']`` -> [[], ['1'], ['2']]."""
    out = [[]]
    for tok in tokens:
        if tok == "<sep>":
            out.append([])
        else:
            out[-1].append(tok)
    return out


def slot(task, batch, i):
    """Decoded target tokens at the scored positions of sample ``i``."""
    return task.decode(batch.targets[i][batch.loss_mask[i]], strip_pad=False)


def little_endian(digits):
    return sum(int(d) * 10**k for k, d in enumerate(digits))


# -- registry and splits -------------------------------------------------------------------


def test_names_and_get():
    assert tasks.NAMES == (
        "add",
        "reverse",
        "reduce",
        "dyck",
        "copy",
        "repeat-copy",
        "scan",
        "sort",
        "merge",
        "search",
        "stack",
        "queue",
        "priority-queue",
        "listops",
        "listops-short",
    )
    for name in tasks.NAMES:
        task = tasks.get(name)
        assert task.name == name
        assert task.vocab[:4] == ("<pad>", "<mask>", "<sep>", "<eos>")
        assert task.vocab_size == len(task.vocab) == len(set(task.vocab))
    assert (PAD, MASK, SEP, EOS) == (0, 1, 2, 3)
    assert tasks.get("add").vocab_size == 14
    assert tasks.get("dyck").vocab_size == 12
    assert tasks.get("scan").vocab_size == 4 + 13 + 6
    assert tasks.get("repeat-copy").options["k"] == 3
    assert tasks.get("repeat-copy", k=4).options["k"] == 4


def test_unknown_task_and_option():
    with pytest.raises(ValueError, match=r"unknown task 'fib'.*'add'.*'scan'"):
        tasks.get("fib")
    with pytest.raises(ValueError, match="unknown task"):
        tasks.splits("palin")
    with pytest.raises(TypeError, match=r"task 'add' has no option 'k'"):
        tasks.get("add", k=2)
    with pytest.raises(ValueError, match="max_depth"):
        tasks.get("dyck", max_depth=1)
    with pytest.raises(ValueError, match="p_open"):
        tasks.get("dyck", p_open=1.5)
    with pytest.raises(ValueError, match="`k`"):
        tasks.get("repeat-copy", k=0)


def test_splits():
    paper = {
        "train": (1, 10),
        "id": (5, 10),
        "od_easy": (11, 13),
        "od_hard": (14, 16),
        "od_extra": (17, 22),
    }
    assert dict(tasks.SPLITS) == paper
    for name in DIGIT_TASKS:
        assert tasks.splits(name) == paper
    assert tasks.splits("scan") == {"train": (1, 22), "test": (24, 48)}
    assert tasks.splits("dyck")["train"] == (9, 31)
    assert tasks.splits("dyck")["od_length"] == (33, 63)
    tasks.splits("add")["train"] = (0, 0)  # a copy: the registry is unchanged
    assert tasks.SPLITS["train"] == (1, 10)


# -- exact layouts, hand-checked ------------------------------------------------------------


def test_layout_by_hand():
    inputs, targets, scored = layout([10, 11], [5], 3)
    assert inputs == [10, 11, SEP, MASK, MASK, MASK, EOS]
    assert targets == [10, 11, SEP, 5, EOS, EOS, EOS]
    assert scored == [False, False, False, True, True, True, False]
    with pytest.raises(ValueError, match="does not fit"):
        layout([4], [4, 4], 1)


# (task, options, (n, min_len, max_len, seed)) -> (inputs, targets) of sample 0, each
# checked by hand: e.g. 599 + 597 = 1196, little-endian 6 9 1 1.
GOLDEN = [
    (
        "add",
        {},
        (1, 3, 3, 4),
        "<sep> 9 9 5 <sep> 7 9 5 <sep> <mask> <mask> <mask> <mask> <eos>",
        "<sep> 9 9 5 <sep> 7 9 5 <sep> 6 9 1 1 <eos>",
    ),
    (
        "add",
        {},
        (1, 2, 2, 3),  # 1 + 28 = 29
        "<sep> 1 <sep> 8 2 <sep> <mask> <mask> <mask> <eos>",
        "<sep> 1 <sep> 8 2 <sep> 9 2 0 <eos>",
    ),
    (
        "reverse",
        {},
        (1, 4, 4, 0),
        "<sep> 8 6 5 2 <sep> <mask> <mask> <mask> <mask> <eos>",
        "<sep> 8 6 5 2 <sep> 2 5 6 8 <eos>",
    ),
    (
        "reduce",
        {},
        (1, 5, 5, 0),
        "0 6 5 3 3 <sep> <mask> <mask> <mask> <mask> <mask> <eos>",
        "0 6 5 3 3 <sep> 6 5 3 3 <eos> <eos>",
    ),
    (
        "copy",
        {},
        (1, 3, 3, 0),
        "<sep> 8 6 5 <sep> <mask> <mask> <mask> <eos>",
        "<sep> 8 6 5 <sep> 8 6 5 <eos>",
    ),
    (
        "repeat-copy",
        {"k": 2},
        (1, 2, 2, 0),
        "<sep> 8 6 <sep> <mask> <mask> <mask> <mask> <eos>",
        "<sep> 8 6 <sep> 8 6 8 6 <eos>",
    ),
    (
        "dyck",
        {},
        (1, 8, 8, 2),
        "{ [ ] { [ ] [ ( <sep> <mask> <mask> <mask> <mask> <eos>",
        "{ [ ] { [ ] [ ( <sep> ) ] } } <eos>",
    ),
    (
        "scan",
        {"slots": 8},
        (1, 5, 8, 1),
        "jump opposite right after look twice <sep> " + "<mask> " * 8 + "<eos>",
        "jump opposite right after look twice <sep> I_LOOK I_LOOK I_TURN_RIGHT I_TURN_RIGHT "
        "I_JUMP <eos> <eos> <eos> <eos>",
    ),
]


@pytest.mark.parametrize(
    ("name", "options", "args", "inputs", "targets"), GOLDEN, ids=[g[0] for g in GOLDEN]
)
def test_golden_sample(name, options, args, inputs, targets):
    task = tasks.get(name, **options)
    batch = task.generate(*args)
    assert task.format(batch.inputs[0]) == inputs
    assert task.format(batch.targets[0]) == targets
    assert batch.inputs.shape == (1, len(inputs.split()))
    n_slots = inputs.split().count("<mask>")
    assert batch.loss_mask.sum() == n_slots
    assert (batch.inputs[batch.loss_mask] == MASK).all()


def test_golden_lengths():
    assert tasks.get("add").generate(1, 3, 3, seed=4).lengths.tolist() == [3]
    assert tasks.get("dyck").generate(1, 8, 8, seed=2).lengths.tolist() == [8]
    assert tasks.get("scan", slots=8).generate(1, 5, 8, seed=1).lengths.tolist() == [5]


# -- answers against independent oracles ----------------------------------------------------


def test_add_sums():
    task = tasks.get("add")
    batch = task.generate(N, 1, 12, seed=1)
    for i, tokens in enumerate(rows(task, batch, "inputs")):
        empty, a, b, answer_slot = parts(tokens[:-1])
        assert empty == [] and tokens[-1] == "<eos>"
        assert len(b) == batch.lengths[i] and 1 <= len(a) <= len(b)
        assert len(b) == 1 or b[-1] != "0"  # exactly d digits
        assert len(a) == 1 or a[-1] != "0"
        assert answer_slot == ["<mask>"] * (len(b) + 1)
        total = slot(task, batch, i)
        assert little_endian(total) == little_endian(a) + little_endian(b)
        assert parts(task.decode(batch.targets[i]))[:3] == [[], a, b]


def test_add_first_number_lengths_vary():
    task = tasks.get("add")
    batch = task.generate(200, 6, 6, seed=2)
    a_lengths = {len(parts(t)[1]) for t in rows(task, batch, "inputs")}
    assert a_lengths == {1, 2, 3, 4, 5, 6}


def test_reverse_copy_repeat():
    for name, k in [("reverse", 1), ("copy", 1), ("repeat-copy", 3), ("repeat-copy", 4)]:
        task = tasks.get(name, k=k) if name == "repeat-copy" else tasks.get(name)
        batch = task.generate(N, 1, 12, seed=3)
        for i, tokens in enumerate(rows(task, batch, "inputs")):
            empty, s, answer_slot = parts(tokens[:-1])
            assert empty == [] and len(s) == batch.lengths[i]
            assert answer_slot == ["<mask>"] * (k * len(s))
            expected = s[::-1] if name == "reverse" else s * k
            assert slot(task, batch, i) == expected


def test_reduce():
    task = tasks.get("reduce")
    batch = task.generate(N, 1, 16, seed=4)
    zeros = 0
    digits = 0
    for i, tokens in enumerate(rows(task, batch, "inputs")):
        s, answer_slot = parts(tokens[:-1])
        assert len(s) == batch.lengths[i] and answer_slot == ["<mask>"] * len(s)
        kept = [d for d in s if d != "0"]
        assert slot(task, batch, i) == kept + ["<eos>"] * (len(s) - len(kept))
        zeros += len(s) - len(kept)
        digits += len(s)
    assert 0.45 < zeros / digits < 0.55  # each digit is 0 with probability 1/2


def balanced(word):
    closer = {"(": ")", "[": "]", "{": "}", "<": ">"}
    stack = []
    for b in word:
        if b in closer:
            stack.append(closer[b])
        elif not stack or stack.pop() != b:
            return False
    return not stack


def test_dyck():
    for max_depth in (8, 2, (9, 12)):
        task = tasks.get("dyck", max_depth=max_depth)
        batch = task.generate(N, 1, 40, seed=5)
        caps = (max_depth, max_depth) if isinstance(max_depth, int) else max_depth
        for i, tokens in enumerate(rows(task, batch, "inputs")):
            prefix, answer_slot = parts(tokens[:-1])
            answer = slot(task, batch, i)
            assert len(prefix) == batch.lengths[i]
            assert answer_slot == ["<mask>"] * len(answer) and len(answer) >= 1
            assert all(b in ")]}>" for b in answer)
            assert balanced(prefix + answer)
            depth = max(
                sum(1 if b in "([{<" else -1 for b in prefix[: j + 1]) for j in range(len(prefix))
            )
            assert depth <= caps[1]
    assert not balanced(list("(]")) and not balanced(list("(("))


def test_dyck_open_probability():
    # Away from the walls (depth 1..cap-1), 70% of the moves open a bracket.
    task = tasks.get("dyck", max_depth=10**6)
    batch = task.generate(400, 30, 30, seed=6)
    opens = sum(b in "([{<" for t in rows(task, batch, "inputs") for b in parts(t)[0][1:-1])
    assert 0.67 < opens / (400 * 28) < 0.73


def oracle(command):
    """SCAN semantics written independently of namcore.tasks.scan: by rewriting."""
    m = re.fullmatch(r"(.+) (and|after) (.+)", command)
    if m:
        x, y = oracle(m[1]), oracle(m[3])
        return x + y if m[2] == "and" else y + x
    m = re.fullmatch(r"(.+) (twice|thrice)", command)
    if m:
        return oracle(m[1]) * {"twice": 2, "thrice": 3}[m[2]]
    m = re.fullmatch(r"(walk|look|run|jump|turn)(?: (opposite|around))? (left|right)", command)
    if m:
        act = [] if m[1] == "turn" else ["I_" + m[1].upper()]
        turn = ["I_TURN_" + m[3].upper()]
        if m[2] == "around":
            return (turn + act) * 4
        return turn * (2 if m[2] == "opposite" else 1) + act
    assert command in ("walk", "look", "run", "jump"), command
    return ["I_" + command.upper()]


def test_scan_interpretation_matches_oracle():
    pairs = scan.commands()
    assert len({c for c, _ in pairs}) == len(pairs)
    for command, actions in pairs:
        assert actions.split() == oracle(command)
    assert scan.interpret("walk") == ("I_WALK",)
    assert scan.interpret("turn around right") == ("I_TURN_RIGHT",) * 4
    assert scan.interpret("look opposite left") == ("I_TURN_LEFT", "I_TURN_LEFT", "I_LOOK")
    for bad in [
        "",
        "walk and",
        "turn",
        "walk twice twice",
        "walk and run after jump",
        "left walk",
        "walk opposite",
        "fly",
    ]:
        with pytest.raises(ValueError, match="not a SCAN command"):
            scan.interpret(bad)


def test_scan_split_counts_and_overlap():
    grammar = (4 + 5 * 6) * 3  # 34 V phrases, each x1, x2, x3
    assert len(scan.commands()) == grammar + 2 * grammar**2 == 20910
    split = scan.length_split()
    train, test = split["train"], split["test"]
    assert (len(train), len(test)) == (16990, 3920)
    assert not {c for c, _ in train} & {c for c, _ in test}
    assert {c for c, _ in train} | {c for c, _ in test} == {c for c, _ in scan.commands()}
    assert max(len(a.split()) for _, a in train) == 22
    assert {len(a.split()) for _, a in test} <= set(range(24, 49))
    assert min(len(a.split()) for _, a in test) == 24
    assert max(len(a.split()) for _, a in test) == 48


def test_scan_generate():
    task = tasks.get("scan")
    test_commands = {c for c, _ in scan.length_split()["test"]}
    batch = task.generate(3920, *tasks.splits("scan")["test"], seed=7)
    seen = []
    for i, tokens in enumerate(rows(task, batch, "inputs")):
        words, answer_slot = parts(tokens[:-1])
        assert answer_slot == ["<mask>"] * 48
        command = " ".join(words)
        actions = oracle(command)
        assert len(actions) == batch.lengths[i]
        assert slot(task, batch, i) == actions + ["<eos>"] * (48 - len(actions))
        seen.append(command)
    assert sorted(seen) == sorted(test_commands)  # the whole test split, once each
    train = task.generate(500, *tasks.splits("scan")["train"], seed=7)
    assert train.lengths.max() <= 22
    assert not {" ".join(parts(t)[0]) for t in rows(task, train, "inputs")} & test_commands
    longest = {c for c, a in scan.commands() if len(a.split()) == 48}
    repeated = task.generate(2 * len(longest) + 5, 48, 48, seed=0)  # more than the pool
    counts = {}
    for t in rows(task, repeated, "inputs"):
        key = " ".join(parts(t)[0])
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) == longest and set(counts.values()) <= {2, 3}


def test_scan_errors():
    with pytest.raises(ValueError, match=r"no SCAN command has 23\.\.23 actions"):
        tasks.get("scan").generate(4, 23, 23, seed=0)
    with pytest.raises(ValueError, match=r"do not fit in 22 answer slots.*slots=48"):
        tasks.get("scan", slots=22).generate(4, 1, 48, seed=0)


# -- lengths, determinism, padding ----------------------------------------------------------

ALL = [(name, lo, hi) for name in DIGIT_TASKS for lo, hi in [(1, 1), (1, 10), (14, 16)]]
ALL += [("dyck", 1, 5), ("dyck", 9, 31), ("scan", 1, 22), ("scan", 24, 48)]


@pytest.mark.parametrize(("name", "lo", "hi"), ALL)
def test_lengths_in_range_and_padding(name, lo, hi):
    task = tasks.get(name)
    batch = task.generate(97, lo, hi, seed=8)
    n, width = batch.inputs.shape
    assert n == len(batch) == 97
    for array in (batch.inputs, batch.targets, batch.lengths):
        assert array.dtype == np.int64
    assert batch.mask.dtype == batch.loss_mask.dtype == bool
    assert ((lo <= batch.lengths) & (batch.lengths <= hi)).all()
    if name != "scan":  # stratified: every length, evenly
        counts = np.bincount(batch.lengths - lo, minlength=hi - lo + 1)
        assert counts.max() - counts.min() <= 1
    size = batch.mask.sum(axis=1)
    assert (batch.mask == (np.arange(width) < size[:, None])).all()  # True on a prefix
    assert size.max() == width  # padded to the longest sample only
    assert (batch.inputs[~batch.mask] == PAD).all() and (batch.targets[~batch.mask] == PAD).all()
    assert (batch.inputs[batch.mask] != PAD).all() and (batch.targets[batch.mask] != PAD).all()
    assert not (batch.loss_mask & ~batch.mask).any()
    assert (batch.inputs[batch.loss_mask] == MASK).all()
    assert (batch.inputs[~batch.loss_mask] != MASK).all()
    unscored = batch.mask & ~batch.loss_mask
    assert (batch.inputs[unscored] == batch.targets[unscored]).all()
    assert (batch.inputs[np.arange(n), size - 1] == EOS).all()
    assert (batch.inputs < task.vocab_size).all() and (batch.targets < task.vocab_size).all()


@pytest.mark.parametrize("name", tasks.NAMES)
def test_determinism(name):
    task = tasks.get(name)
    lo, hi = (24, 48) if name == "scan" else (task.min_len, 10)
    a, b = task.generate(64, lo, hi, seed=11), tasks.get(name).generate(64, lo, hi, seed=11)
    c = task.generate(64, lo, hi, seed=12)
    for field in ("inputs", "targets", "mask", "loss_mask", "lengths"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.inputs.shape != c.inputs.shape or not np.array_equal(a.inputs, c.inputs)
    assert not np.array_equal(a.lengths, c.lengths)  # the order is shuffled per seed


@pytest.mark.parametrize("name", tasks.NAMES)
def test_bad_arguments(name):
    task = tasks.get(name)
    with pytest.raises(ValueError, match=rf"{name}.generate: `n` must be an int >= 1"):
        task.generate(0, 1, 3, seed=0)
    with pytest.raises(ValueError, match="`min_len` must be <= `max_len`, got min_len=4"):
        task.generate(2, 4, 3, seed=0)
    with pytest.raises(
        ValueError, match=rf"`min_len` must be an int >= {task.min_len} \({name} needs"
    ):
        task.generate(2, task.min_len - 1, 3, seed=0)
    lo = task.min_len
    with pytest.raises(ValueError, match="`seed` must be an int >= 0"):
        task.generate(2, lo, 3, seed=-1)
    with pytest.raises(TypeError, match="`n` must be an int"):
        task.generate(2.0, lo, 3, seed=0)
    with pytest.raises(TypeError, match="`max_len` must be an int"):
        task.generate(2, lo, True, seed=0)


def test_encode_decode():
    task = tasks.get("reverse")
    ids = task.encode("<sep> 1 2 <sep> <mask> <mask> <eos>")
    assert ids.tolist() == [SEP, 5, 6, SEP, MASK, MASK, EOS]
    assert task.decode(np.append(ids, [PAD, PAD])) == task.decode(ids)
    assert task.decode([PAD, 4], strip_pad=False) == ["<pad>", "0"]
    with pytest.raises(ValueError, match="unknown tokens"):
        task.encode("1 x")
    with pytest.raises(ValueError, match=r"outside 0\.\.13"):
        task.decode([14])
    with pytest.raises(ValueError, match="1-D"):
        task.decode([[4]])


# -- metrics --------------------------------------------------------------------------------


def test_sequence_accuracy():
    task = tasks.get("add")
    batch = task.generate(10, 1, 5, seed=9)
    assert tasks.sequence_accuracy(batch.targets, batch) == 1.0
    assert tasks.sequence_accuracy(batch.inputs, batch) == 0.0

    pred = batch.targets.copy()
    first_scored = batch.loss_mask[3].argmax()
    pred[3, first_scored] = (pred[3, first_scored] + 1) % task.vocab_size  # one wrong token
    assert tasks.sequence_correct(pred, batch).tolist() == [i != 3 for i in range(10)]
    assert tasks.sequence_accuracy(pred, batch) == 0.9

    noise = np.where(batch.loss_mask, batch.targets, 7)  # wrong only where nothing is scored
    noise[~batch.mask] = 5
    assert tasks.sequence_accuracy(noise, batch) == 1.0

    scores = np.eye(task.vocab_size)[pred]  # (N, L, V) scores are argmaxed
    assert tasks.sequence_accuracy(scores, batch) == 0.9
    with pytest.raises(ValueError, match="`predictions` must have the targets' shape"):
        tasks.sequence_accuracy(pred[:, :-1], batch)
    with pytest.raises(TypeError, match=r"`batch` must be a namcore\.tasks\.Batch"):
        tasks.sequence_accuracy(pred, pred)


def test_accuracy_by_length():
    batch = tasks.get("reduce").generate(12, 1, 3, seed=10)
    pred = batch.targets.copy()
    wrong = np.flatnonzero(batch.lengths == 2)[:2]  # two of the four 2-digit samples
    for i in wrong:
        pred[i, batch.loss_mask[i]] = PAD
    assert tasks.accuracy_by_length(pred, batch) == {1: 1.0, 2: 0.5, 3: 1.0}
    assert list(tasks.accuracy_by_length(batch.targets, batch)) == [1, 2, 3]


# -- docstring examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "namcore.tasks",
        "namcore.tasks._batch",
        "namcore.tasks._task",
        "namcore.tasks.metrics",
        "namcore.tasks.digits",
        "namcore.tasks.dyck",
        "namcore.tasks.scan",
        "namcore.tasks.ordering",
        "namcore.tasks.structures",
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
