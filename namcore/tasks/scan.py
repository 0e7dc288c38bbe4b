"""SCAN (Lake & Baroni, 2018) and its length split, built from the grammar.

Every SCAN command comes from a small phrase-structure grammar::

    C -> S | S and S | S after S
    S -> V | V twice | V thrice
    V -> U | U D | turn D | U opposite D | turn opposite D | U around D | turn around D
    D -> left | right
    U -> walk | look | run | jump

:func:`commands` enumerates all 20,910 commands with their action sequences (from
:func:`interpret`), and :func:`length_split` splits them as SCAN's length split does:
train on the commands with at most 22 actions (16,990), test on the rest (3,920, with
24 to 48 actions). Nothing is downloaded.

As a task (:func:`scan_task`) the length parameter is the number of actions, so the
splits are length ranges too: ``train`` is 1–22 and ``test`` 24–48. The vocabulary
(23 tokens) is the specials ``<pad> <mask> <sep> <eos>``, the 13 command words, then
the 6 actions. A sample is

* inputs: ``command words <sep> <mask>*slots <eos>``,
* targets: ``command words <sep> actions <eos>*(slots - actions + 1)``,

with a fixed number of answer ``slots`` (48 by default, the longest action sequence),
so the inputs do not reveal how many actions the answer has.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ._batch import SPECIALS, Row
from ._task import Task, check_int

__all__ = [
    "ACTIONS",
    "SCAN_SPLITS",
    "TRAIN_MAX_ACTIONS",
    "VOCAB",
    "WORDS",
    "commands",
    "interpret",
    "length_split",
    "scan_task",
]

#: The 13 words of the commands.
WORDS: tuple[str, ...] = (
    "walk",
    "look",
    "run",
    "jump",
    "turn",
    "left",
    "right",
    "opposite",
    "around",
    "twice",
    "thrice",
    "and",
    "after",
)
#: The 6 actions of the outputs.
ACTIONS: tuple[str, ...] = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")
#: Token names of the SCAN task: the specials, the command words, then the actions.
VOCAB: tuple[str, ...] = SPECIALS + WORDS + ACTIONS

#: The length split as ranges of the number of actions (no command has 23).
SCAN_SPLITS: Mapping[str, tuple[int, int]] = MappingProxyType({"train": (1, 22), "test": (24, 48)})

#: Longest train action sequence of the length split.
TRAIN_MAX_ACTIONS = 22

_VERBS = ("walk", "look", "run", "jump")
_TURNS = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
_REPEATS = {"twice": 2, "thrice": 3}


def _bad(command: str, why: str) -> ValueError:
    return ValueError(f"interpret: {command!r} is not a SCAN command: {why}")


def _phrase(words: list[str], command: str) -> list[str]:
    """Actions of a V phrase (no conjunction, no repetition)."""
    if not words:
        raise _bad(command, "an empty phrase")
    head, rest = words[0], words[1:]
    if head == "turn":
        verb: list[str] = []
        if not rest:
            raise _bad(command, "'turn' needs 'left' or 'right'")
    elif head in _VERBS:
        verb = ["I_" + head.upper()]
        if not rest:
            return verb
    else:
        raise _bad(command, f"a phrase starts with {head!r}")
    modifier = rest[0] if len(rest) == 2 else None
    direction = rest[-1]
    if len(rest) > 2 or direction not in _TURNS or modifier not in (None, "opposite", "around"):
        raise _bad(command, f"cannot read {' '.join(words)!r}")
    turn = [_TURNS[direction]]
    if modifier is None:
        return turn + verb
    if modifier == "opposite":
        return turn * 2 + verb
    return (turn + verb) * 4


def _repeated(words: list[str], command: str) -> list[str]:
    """Actions of an S phrase (a V phrase, possibly followed by twice/thrice)."""
    if words and words[-1] in _REPEATS:
        return _phrase(words[:-1], command) * _REPEATS[words[-1]]
    return _phrase(words, command)


def interpret(command: str) -> tuple[str, ...]:
    """The action sequence of a SCAN command.

    Raises ``ValueError`` for a string the grammar does not generate.

    Examples
    --------
    >>> interpret("jump left after walk twice")
    ('I_WALK', 'I_WALK', 'I_TURN_LEFT', 'I_JUMP')
    >>> len(interpret("jump around left thrice and walk opposite right thrice"))
    33
    >>> interpret("turn opposite right and look")
    ('I_TURN_RIGHT', 'I_TURN_RIGHT', 'I_LOOK')
    """
    if not isinstance(command, str):
        raise TypeError(f"interpret: `command` must be a str, got {type(command).__name__}")
    words = command.split()
    joints = [i for i, w in enumerate(words) if w in ("and", "after")]
    if len(joints) > 1:
        raise _bad(command, "at most one 'and' or 'after'")
    if not joints:
        return tuple(_repeated(words, command))
    i = joints[0]
    first, second = _repeated(words[:i], command), _repeated(words[i + 1 :], command)
    return tuple(first + second if words[i] == "and" else second + first)


def _v_phrases() -> list[str]:
    phrases = list(_VERBS)
    for direction in _TURNS:
        for head in (*_VERBS, "turn"):
            phrases.append(f"{head} {direction}")
            phrases.append(f"{head} opposite {direction}")
            phrases.append(f"{head} around {direction}")
    return phrases


@functools.lru_cache(maxsize=1)
def commands() -> tuple[tuple[str, str], ...]:
    """All 20,910 SCAN commands as ``(command, actions)`` pairs of space-separated strings.

    The order is fixed: single phrases first, then every ``and`` and ``after`` pair.

    Examples
    --------
    >>> pairs = commands()
    >>> len(pairs), pairs[0]
    (20910, ('walk', 'I_WALK'))
    """
    simple = [f"{v}{suffix}" for v in _v_phrases() for suffix in ("", " twice", " thrice")]
    texts = simple + [
        f"{x} {joint} {y}"
        for joint in ("and", "after")
        for x, y in itertools.product(simple, simple)
    ]
    return tuple((text, " ".join(interpret(text))) for text in texts)


@functools.lru_cache(maxsize=1)
def length_split() -> dict[str, tuple[tuple[str, str], ...]]:
    """SCAN's length split: ``{"train": pairs, "test": pairs}`` (see :func:`commands`).

    Train has the 16,990 commands with at most 22 actions; test the 3,920 others.

    Examples
    --------
    >>> split = length_split()
    >>> len(split["train"]), len(split["test"])
    (16990, 3920)
    """
    pairs = commands()
    return {
        "train": tuple(p for p in pairs if len(p[1].split()) <= TRAIN_MAX_ACTIONS),
        "test": tuple(p for p in pairs if len(p[1].split()) > TRAIN_MAX_ACTIONS),
    }


@functools.lru_cache(maxsize=1)
def _encoded() -> tuple[list[list[int]], list[list[int]], np.ndarray]:
    index = {name: i for i, name in enumerate(VOCAB)}
    prompts = [[index[w] for w in c.split()] for c, _ in commands()]
    answers = [[index[a] for a in acts.split()] for _, acts in commands()]
    return prompts, answers, np.asarray([len(a) for a in answers], dtype=np.int64)


def _sampler(slots: int):
    def sample(rng: np.random.Generator, n: int, lo: int, hi: int):
        prompts, answers, n_actions = _encoded()
        pool = np.flatnonzero((n_actions >= lo) & (n_actions <= hi))
        if pool.size == 0:
            raise ValueError(
                f"scan.generate: no SCAN command has {lo}..{hi} actions; they "
                f"have {n_actions.min()}..{n_actions.max()} (none has 23)"
            )
        longest = int(n_actions[pool].max())
        if longest > slots:
            raise ValueError(
                f"scan.generate: commands with up to {longest} actions do not fit "
                f"in {slots} answer slots; use get('scan', slots={longest})"
            )
        rounds = -(-n // pool.size)
        order = np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:n]
        rows: list[Row] = [(prompts[i], answers[i], slots) for i in order.tolist()]
        return rows, n_actions[order]

    return sample


def scan_task(slots: int = 48) -> Task:
    """SCAN as an aligned task; the length parameter is the number of actions.

    :meth:`~namcore.tasks.Task.generate` draws commands uniformly from those whose
    action count lies in ``min_len..max_len``, going through all of them in a random
    order before any repeats: ``generate(3920, 24, 48, seed)`` is the whole test split.

    Parameters
    ----------
    slots : int, optional
        Answer positions per sample; at least the longest answer drawn. Default: 48.

    Examples
    --------
    >>> task = scan_task(slots=8)
    >>> batch = task.generate(1, 5, 8, seed=1)
    >>> print(task.format(batch.inputs[0]))  # doctest: +NORMALIZE_WHITESPACE
    jump opposite right after look twice <sep>
    <mask> <mask> <mask> <mask> <mask> <mask> <mask> <mask> <eos>
    >>> print(task.format(batch.targets[0]))  # doctest: +NORMALIZE_WHITESPACE
    jump opposite right after look twice <sep>
    I_LOOK I_LOOK I_TURN_RIGHT I_TURN_RIGHT I_JUMP <eos> <eos> <eos> <eos>
    """
    slots = check_int("scan_task", "slots", slots, 1, " (answer positions per sample)")
    return Task(
        "scan", VOCAB, SCAN_SPLITS, _sampler(slots), options={"slots": slots}, length_name="actions"
    )
