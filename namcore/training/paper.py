"""The paper's Tables 1 and 2 (ICLR 2023 text of Nam & Seo), keyed by namcore's names.

Table 1 (:data:`TABLE1`) is Long Range Arena: accuracy in percent and training speed
relative to the softmax Transformer, on an RTX 3080 at lengths up to 2,000 (the
authors' configs cut ListOps to 1,000). Table 2 (:data:`TABLE2`) follows.

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
>>> TABLE1["listops"]["nam-transformer"]
{'accuracy': 36.1, 'speedup': 2.66}
"""

from __future__ import annotations

__all__ = ["PAPER_MODELS", "TABLE1", "TABLE1_MODELS", "TABLE2"]

#: Table 1's rows, with namcore's model names.
TABLE1_MODELS: tuple[tuple[str, str], ...] = (
    ("Transformer", "transformer"),
    ("Linear Transformer", "linear-transformer"),
    ("NAM Transformer (Ours)", "nam-transformer"),
)


def _lra(*pairs: tuple[float, float]) -> dict[str, dict[str, float]]:
    return {
        model: {"accuracy": float(accuracy), "speedup": float(speedup)}
        for (_, model), (accuracy, speedup) in zip(TABLE1_MODELS, pairs, strict=True)
    }


#: ``TABLE1[task][model]``: the paper's accuracy (%) and training speedup over the
#: Transformer, for LRA's ListOps, Text (byte-level IMDb) and Image (CIFAR-10 pixels).
TABLE1: dict[str, dict[str, dict[str, float]]] = {
    "listops": _lra((29.75, 1), (36.5, 2.59), (36.1, 2.66)),
    "text": _lra((57.28, 1), (64.27, 2.35), (63.49, 2.44)),
    "image": _lra((40.16, 1), (38.76, 10.02), (37.18, 10.07)),
}

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
