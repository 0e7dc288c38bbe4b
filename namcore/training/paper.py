"""The paper's Table 2 (ICLR 2023 text of Nam & Seo), keyed by namcore's names.

Sequence accuracy in percent. The paper's task names map to ours as Palin → ``reverse``,
Fib → ``add``, Reduce → ``reduce`` and SCAN → ``scan`` (length split); its splits ID,
OD-easy and OD-hard to ``id``, ``od_easy`` and ``od_hard``, and SCAN's Train and Test to
``train`` and ``test``. The paper has no Dyck column and no NAM Transformer row; UT and
DNC are kept for reference although namcore has no such models.

Examples
--------
>>> from namcore.training.paper import TABLE2
>>> TABLE2["reduce"]["od_hard"]["namtm"]
100.0
>>> TABLE2["add"]["od_hard"]["transformer"]
0.0
"""

from __future__ import annotations

__all__ = ["PAPER_MODELS", "TABLE2"]

#: Column order of the paper, with namcore's model names (``None``: no namcore model).
PAPER_MODELS: tuple[tuple[str, str | None], ...] = (
    ("TF", "transformer"),
    ("LSTM", "lstm"),
    ("UT", "ut"),
    ("DNC", "dnc"),
    ("LSAM", "lsam"),
    ("NAM-TM", "namtm"),
    ("No Jmp", "namtm-nojump"),
)

# Keys of a row: namcore's model names, and the paper's own lower-cased where we have none.
_COLUMNS = tuple(model or label.lower() for label, model in PAPER_MODELS)


def _row(*values: float) -> dict[str, float]:
    return {column: float(v) for column, v in zip(_COLUMNS, values, strict=True)}


#: ``TABLE2[task][split][model]``: the paper's sequence accuracy in percent.
TABLE2: dict[str, dict[str, dict[str, float]]] = {
    "reverse": {
        "id": _row(100, 100, 100, 100, 100, 100, 100),
        "od_easy": _row(65.6, 100, 99.2, 100, 100, 100, 100),
        "od_hard": _row(19.0, 100, 5.2, 100, 100, 100, 100),
    },
    "add": {
        "id": _row(98.9, 46.2, 99.1, 46.9, 100, 97.4, 40.4),
        "od_easy": _row(0.4, 8.3, 21.3, 1.8, 39.9, 89.7, 19.8),
        "od_hard": _row(0.0, 0.0, 0.1, 0.0, 2.9, 71.5, 1.1),
    },
    "reduce": {
        "id": _row(99.6, 99.5, 98.7, 100, 99.9, 100, 100),
        "od_easy": _row(0.2, 91.5, 15.7, 95.7, 96.8, 100, 100),
        "od_hard": _row(0.0, 63.6, 0.0, 60.1, 77.6, 100, 100),
    },
    "scan": {
        "train": _row(99.8, 99.9, 99.6, 99.3, 99.5, 99.6, 99.9),
        "test": _row(0.0, 14.5, 4.5, 8.6, 14.9, 11.2, 9.6),
    },
}
