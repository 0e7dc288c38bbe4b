"""namcore.fewshot: the data, NAM's write/erase against namcore.write, the metrics, the
CLI's errors, and smoke runs on PyTorch and JAX that write the report."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

import namcore
from namcore.cli import main
from namcore.fewshot import check_out, run
from namcore.fewshot.classifier import (
    average_novel,
    episode_scores,
    features,
    gates,
    init_params,
    nam_memory,
)
from namcore.fewshot.data import digits, render_strokes, synthetic
from namcore.fewshot.episodes import (
    Episodes,
    episode_metrics,
    evaluation_episodes,
    interval,
    training_episodes,
)
from namcore.fewshot.report import FILES
from namcore.training import TrainingError


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


SMALL = {"n_base": 6, "n_novel": 4, "base_train": 12, "base_test": 5, "novel_per_class": 7}


# ----------------------------------------------------------------------------- data
def test_synthetic_shapes_labels_and_range():
    data = synthetic(**SMALL, size=12)
    assert data.base_train_x.shape == (72, 144) and data.base_train_x.dtype == np.float32
    assert data.base_test_x.shape == (30, 144) and data.novel_x.shape == (28, 144)
    assert data.image_shape == (12, 12) and (data.n_base, data.n_novel) == (6, 4)
    assert sorted(set(data.novel_y.tolist())) == [0, 1, 2, 3]
    assert np.bincount(data.base_train_y).tolist() == [12] * 6
    for x in (data.base_train_x, data.base_test_x, data.novel_x):
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_synthetic_is_deterministic_per_seed():
    a, b, c = synthetic(**SMALL, seed=3), synthetic(**SMALL, seed=3), synthetic(**SMALL, seed=4)
    for name in ("base_train_x", "base_test_x", "novel_x", "base_train_y", "novel_y"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.base_train_x, c.base_train_x)
    # a class's images do not depend on how many classes or samples are asked for
    more = synthetic(**{**SMALL, "n_base": 8, "base_train": 12}, seed=3)
    np.testing.assert_array_equal(more.base_train_x[:72], a.base_train_x)


def test_synthetic_classes_are_separated_but_samples_vary():
    data = synthetic(n_base=10, n_novel=1, base_train=20, base_test=10, novel_per_class=1)
    means = np.stack([data.base_train_x[data.base_train_y == c].mean(0) for c in range(10)])
    predicted = np.argmax(_unit(data.base_test_x) @ _unit(means).T, axis=1)
    assert np.mean(predicted == data.base_test_y) > 0.6  # chance is 0.1
    within = np.std(data.base_train_x[data.base_train_y == 0], axis=0).mean()
    assert within > 0.05  # distortions and noise: no two samples alike


def test_render_strokes_draws_the_segment():
    image = render_strokes(np.array([[[2.0, 5.0, 9.0, 5.0]]]), np.array([[0.6]]), 12)
    image = image.reshape(12, 12)
    assert image[5, 2:10].min() > 0.99 and image[0].max() < 1e-6


def test_bad_generator_arguments():
    with pytest.raises(ValueError, match="n_base must be a positive int"):
        synthetic(n_base=0)
    with pytest.raises(ValueError, match="size must be at least 8"):
        synthetic(size=4)


def test_digits_splits_base_and_novel_classes():
    pytest.importorskip("sklearn", reason="the digits data set needs namcore[fewshot]")
    data = digits()
    assert (data.n_base, data.n_novel, data.image_shape) == (5, 5, (8, 8))
    total = len(data.base_train_y) + len(data.base_test_y) + len(data.novel_y)
    assert total == 1797 and data.base_train_x.shape[1] == 64
    assert 0.0 <= data.base_train_x.min() and data.base_train_x.max() <= 1.0
    assert not set(map(tuple, data.base_train_x[:50])) & set(map(tuple, data.base_test_x))


def test_digits_without_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'namcore\[fewshot\]'"):
        digits()
    with pytest.raises(TrainingError, match=r"needs scikit-learn.*namcore\[fewshot\]"):
        run("digits", "smoke", "torch")


# ------------------------------------------------------------- NAM against namcore.write
def _episode(seed: int = 0, batch: int = 3, shot: int = 2, way: int = 3):
    rng = np.random.default_rng(seed)
    params = {
        k: v.astype(np.float64)
        for k, v in init_params(
            n_pixels=5, hidden=6, dim=4, n_base=7, gate_hidden=5, seed=seed
        ).items()
    }
    support = rng.normal(size=(batch, way * shot, 4))
    onehot = np.repeat(np.eye(way), shot, axis=0)[None].repeat(batch, axis=0)
    base = rng.normal(size=(batch, 7, 4))
    return params, base, support, onehot


def test_nam_memory_equals_namcore_write_step_by_step():
    params, base, support, onehot = _episode()
    memory_b, memory_n = nam_memory(params, base, support, onehot)
    p_w, p_e = gates(params, support)
    for b in range(base.shape[0]):
        expect_b = _unit(base[b])
        expect_n = np.zeros((onehot.shape[2], 4))
        for n in range(support.shape[1]):
            k = support[b, n]
            expect_n = namcore.write(expect_n, k, onehot[b, n], p_w[b, n], 0.0)
            expect_b = namcore.write(expect_b, k, np.zeros(7), 0.0, p_e[b, n])
        np.testing.assert_allclose(memory_b[b], expect_b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(memory_n[b], expect_n, rtol=1e-12, atol=1e-12)


def test_a_full_erase_removes_the_support_direction_from_the_base_weights():
    params, base, support, onehot = _episode(batch=1, shot=1, way=1)
    params["gen.erase.1.b"] = np.array([60.0])  # p_erase = 1
    memory_b, memory_n = nam_memory(params, base, support, onehot)
    k = _unit(support[0, 0])
    np.testing.assert_allclose(memory_b[0] @ k, 0.0, atol=1e-12)  # read after erase: 0
    # the novel row is p_w times the key, so its cosine with the key is 1
    np.testing.assert_allclose(_unit(memory_n[0, 0]), k, rtol=1e-12)


def test_one_shot_nam_novel_weights_point_where_the_baseline_s_do():
    params, base, support, onehot = _episode(shot=1)
    _, memory_n = nam_memory(params, base, support, onehot)
    np.testing.assert_allclose(_unit(memory_n), _unit(average_novel(support, onehot)), rtol=1e-10)


def test_episode_scores_are_scaled_cosines_base_first():
    params, base, support, onehot = _episode()
    queries = np.random.default_rng(1).normal(size=(3, 4, 4))
    scores = episode_scores(params, "cosine", base, support, onehot, queries)
    assert scores.shape == (3, 4, 7 + 3)
    expect = 10.0 * _unit(queries) @ _unit(base).transpose(0, 2, 1)
    np.testing.assert_allclose(scores[..., :7], expect, rtol=1e-6)
    with pytest.raises(ValueError, match="method must be one of"):
        episode_scores(params, "knn", base, support, onehot, queries)


# --------------------------------------------------------------------- episodes, metrics
def test_interval_is_the_normal_95_percent_interval():
    values = np.array([0.2, 0.4, 0.6, 0.8])
    mean, half = interval(values)
    assert mean == 0.5
    assert math.isclose(half, 1.96 * np.std(values, ddof=1) / 2.0, abs_tol=1e-5)
    assert interval(np.array([0.3])) == (0.3, 0.0)
    with pytest.raises(ValueError):
        interval(np.array([]))


def test_episode_metrics_count_base_false_positives():
    # C=2 base classes, N=2 novel; 2 novel queries (label 0, 1), 2 base queries (0, 1)
    scores = np.array(
        [
            [
                [0.9, 0.0, 0.5, 0.1],  # novel 0 -> base 0 (a base false positive)
                [0.0, 0.0, 0.2, 0.8],  # novel 1 -> novel 1
                [0.7, 0.1, 0.0, 0.0],  # base 0 -> base 0
                [0.0, 0.3, 0.9, 0.0],  # base 1 -> novel 0 (a novel false positive)
            ]
        ]
    )
    ep = Episodes(
        np.zeros((1, 2), int),
        np.eye(2)[None],
        np.zeros((1, 2), int),
        np.array([[0, 1]]),
        np.zeros((1, 2), int),
        np.array([[0, 1]]),
    )
    m = {k: float(v[0]) for k, v in episode_metrics(scores, 2, ep).items()}
    assert m == {
        "novel": 1.0,
        "base": 1.0,
        "both": 0.5,
        "base_false_positives": 0.5,
        "novel_false_positives": 0.5,
    }


def test_episodes_keep_support_and_queries_apart():
    novel = np.repeat(np.arange(6), 10)
    base = np.repeat(np.arange(4), 5)
    ep = evaluation_episodes(novel, base, n_episodes=5, way=5, shot=3, queries=4, seed=0)
    assert ep.support.shape == (5, 15) and ep.onehot.shape == (5, 15, 5)
    assert ep.base_queries.shape == (5, 20) and ep.base_classes is None
    for e in range(5):
        assert not set(ep.support[e]) & set(ep.novel_queries[e])
        # the one-hot label of each support image names its class in this episode
        chosen = novel[ep.support[e]].reshape(5, 3)
        assert (chosen == chosen[:, :1]).all()
        assert (novel[ep.novel_queries[e]].reshape(5, 4) == chosen[:, :1]).all()
    labels = np.repeat(np.arange(8), 10)
    train = training_episodes(labels, n_episodes=4, way=3, shot=2, queries=2, seed=0, step=1)
    assert train.base_classes is not None and train.base_classes.shape == (4, 5)
    for e in range(4):
        fake = set(labels[train.support[e]])
        assert len(fake) == 3 and not fake & set(train.base_classes[e])
        kept = train.base_classes[e][train.base_labels[e]]
        np.testing.assert_array_equal(kept, labels[train.base_queries[e]])


# ------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data", "cifar"], "unknown data set 'cifar'; choose from synthetic, digits"),
        (["--preset", "paper"], "unknown preset 'paper'; choose from smoke, quick"),
        (["--backend", "numpy"], "cannot train with backend 'numpy'; choose from torch, jax"),
    ],
)
def test_cli_refuses_bad_names_with_one_line(flags, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fewshot", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"namcore fewshot: error: {message}"
    assert not out.exists()


def test_cli_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["fewshot", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not empty; pass --overwrite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    file = tmp_path / "notes.txt"
    assert main(["fewshot", "--preset", "smoke", "--out", str(file)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    check_out(tmp_path, overwrite=True)  # allowed when asked
    with pytest.raises(TrainingError, match="seed must be"):
        run("synthetic", "smoke", "torch", seed=-1)


# ---------------------------------------------------------------- end to end, parity
def _check_report(out, backend):
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    results = json.loads((out / "results.json").read_text())
    assert results["backend"] == backend and results["preset"] == "smoke"
    for shots in ("1-shot", "5-shot"):
        row = results["results"][shots]
        for method in ("cosine", "nam"):
            for metric in ("novel", "base", "both", "base_false_positives"):
                cell = row[method][metric]
                assert 0.0 <= cell["mean"] <= 1.0 and cell["ci95"] >= 0.0
                assert cell["episodes"] == 12
        for metric, diff in row["nam_minus_cosine"].items():  # the paired difference
            expect = row["nam"][metric]["mean"] - row["cosine"][metric]["mean"]
            assert math.isclose(diff["mean"], expect, abs_tol=2e-5) and diff["ci95"] >= 0.0
    assert "Base false positives" in (out / "results.md").read_text()
    assert (out / "fewshot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


def test_smoke_run_on_torch_through_the_cli(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "fs"
    assert main(["fewshot", "--preset", "smoke", "--backend", "torch", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    first = _check_report(out, "torch")
    # the same command again is refused, then allowed with --overwrite (same numbers)
    assert main(["fewshot", "--preset", "smoke", "--backend", "torch", "--out", str(out)]) == 2
    flags = ["--preset", "smoke", "--backend", "torch", "--overwrite"]
    assert main(["fewshot", *flags, "--out", str(out)]) == 0
    again = _check_report(out, "torch")
    assert again["results"] == first["results"]


def test_smoke_run_on_jax_through_the_api(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    results = run("synthetic", "smoke", "jax", tmp_path / "fs")
    assert results == json.loads((tmp_path / "fs" / "results.json").read_text())
    _check_report(tmp_path / "fs", "jax")


@pytest.fixture(scope="module")
def trained():
    """Smoke-sized parameters trained by both stages on torch, and an episode."""
    pytest.importorskip("torch")
    from namcore.fewshot.train import train_stage1, train_stage2

    data = synthetic(**SMALL)
    params = init_params(n_pixels=256, hidden=16, dim=8, n_base=6, gate_hidden=4, seed=0)
    params = train_stage1(
        params, data.base_train_x, data.base_train_y, "torch",
        steps=5, batch=16, lr=1e-2, weight_decay=0.0, seed=0,
    )  # fmt: skip
    feats = features(params, data.base_train_x)
    params = train_stage2(
        params, feats, data.base_train_y, "torch",
        way=3, shot=2, queries=2, steps=3, batch=2, lr=1e-2, seed=0,
    )  # fmt: skip
    support = features(params, data.novel_x[:8].reshape(2, 4, -1))
    onehot = np.repeat(np.eye(2, dtype=np.float32), 2, axis=0)[None].repeat(2, axis=0)
    queries = features(params, data.base_test_x[:10].reshape(2, 5, -1))
    base = np.broadcast_to(params["base.w"], (2, 6, 8))
    return params, (base, support, onehot, queries)


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_numpy_inference_equals_the_framework_s(trained, framework):
    params, arrays = trained
    if framework == "torch":
        torch = pytest.importorskip("torch")

        def convert(a):
            return torch.from_numpy(np.ascontiguousarray(a))

        def back(a):
            return a.numpy()
    else:
        jnp = pytest.importorskip("jax.numpy")
        convert, back = jnp.asarray, np.asarray
    p_fw = {k: convert(v) for k, v in params.items()}
    for method in ("cosine", "nam"):
        expect = episode_scores(params, method, *arrays)
        got = back(episode_scores(p_fw, method, *(convert(a) for a in arrays)))
        # float32: the tolerance follows the scores' scale (the learned scale times cosines)
        np.testing.assert_allclose(got, expect, rtol=2e-5, atol=2e-5 * np.abs(expect).max())
    assert params["gen.erase.0.w"].dtype == np.float32
