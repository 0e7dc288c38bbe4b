"""The training engines: one protocol, one schedule, one loss hook, one evaluation loop."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest

from namcore.tasks import Batch
from namcore.training import Engine, RunFolder, get_preset, model_config
from namcore.training.data import eval_sets, train_batch
from namcore.training.engine import ENGINES, FRAMEWORKS, active_hook, engine_class
from namcore.training.errors import TrainingError
from namcore.training.run_folder import Progress, selection_key
from namcore.training.scoring import length_counts, merge_counts, predict_all, score_sets

PRESET = get_preset("smoke")


def installed() -> list[str]:
    """The frameworks whose engine can be built here."""
    import importlib.util

    return [
        name
        for name in FRAMEWORKS
        if all(importlib.util.find_spec(m) is not None for m in ENGINES[name].requires)
    ]


def both() -> None:
    if installed() != list(FRAMEWORKS):
        pytest.skip(f"needs {', '.join(FRAMEWORKS)}; installed: {', '.join(installed())}")


def padded(batch: Batch, multiple: int = 8) -> Batch:
    """``batch`` padded to a width both engines run as it is (JAX pads to 8)."""
    extra = -batch.inputs.shape[1] % multiple

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, extra)))

    return dataclasses.replace(
        batch,
        inputs=pad(batch.inputs),
        targets=pad(batch.targets),
        mask=pad(batch.mask),
        loss_mask=pad(batch.loss_mask),
    )


def engines(model: str = "lstm", task: str = "reduce") -> dict[str, Engine]:
    config = model_config(model, task, PRESET)
    return {name: engine_class(name)(config, PRESET, 0) for name in FRAMEWORKS}


def step(engine: Engine, batch: Batch, lr: float, index: int = 0) -> tuple[float, float]:
    return engine.train_step(batch.inputs, batch.targets, batch.mask, batch.loss_mask, lr, index)


# ------------------------------------------------------------------------ protocol
def test_frameworks_come_from_the_backend_names_and_the_engine_table():
    from namcore import backends

    assert FRAMEWORKS == ("torch", "jax")
    assert set(FRAMEWORKS) == set(ENGINES) and set(FRAMEWORKS) <= set(backends.NAMES)
    with pytest.raises(TrainingError, match="cannot train with backend 'numpy'"):
        engine_class("numpy")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_engine_implements_the_protocol(framework):
    if framework not in installed():
        pytest.skip(f"{framework} is not installed")
    factory = engine_class(framework)
    engine = factory(model_config("lstm", "reduce", PRESET), PRESET, 0)
    assert isinstance(engine, Engine)
    assert engine.framework == framework
    # the same signatures as the protocol, not merely the same method names
    for name in ("train_step", "predict", "params", "optimizer_arrays", "load"):
        declared = inspect.signature(getattr(Engine, name))
        implemented = inspect.signature(getattr(type(engine), name))
        assert list(implemented.parameters) == list(declared.parameters), name
        assert [p.default for p in implemented.parameters.values()] == [
            p.default for p in declared.parameters.values()
        ], name


def test_both_engines_take_the_same_first_step():
    both()
    found = engines()
    batch = padded(train_batch("reduce", PRESET, seed=0, step=7))
    first = {name: step(e, batch, PRESET.lr_at(0)) for name, e in found.items()}
    (loss_t, acc_t), (loss_j, acc_j) = first["torch"], first["jax"]
    assert loss_t == pytest.approx(loss_j, rel=1e-5) and acc_t == acc_j
    after = {name: e.params() for name, e in found.items()}
    moved = {k: np.abs(after["torch"][k] - after["jax"][k]).max() for k in after["torch"]}
    # Adam's first step is lr * sign(gradient) wherever the gradient is not tiny
    assert np.median(list(moved.values())) < 1e-5, moved
    second = {name: step(e, batch, PRESET.lr_at(1), 1)[0] for name, e in found.items()}
    assert second["torch"] == pytest.approx(second["jax"], rel=1e-4)
    predicted = {name: e.predict(batch.inputs, batch.mask) for name, e in found.items()}
    assert (predicted["torch"] == predicted["jax"]).mean() > 0.99


# ------------------------------------------------------------------------ schedule
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_each_engine_steps_by_the_learning_rate_it_is_given(framework):
    if framework not in installed():
        pytest.skip(f"{framework} is not installed")
    config = model_config("lstm", "reduce", PRESET)
    batch = train_batch("reduce", PRESET, seed=0, step=0)
    start = engine_class(framework)(config, PRESET, 0).params()
    moved = {}
    for lr in (0.0, 1e-3, 2e-3):
        engine = engine_class(framework)(config, PRESET, 0)
        step(engine, batch, lr, index=10_000)  # far past every decay: only lr counts
        moved[lr] = {k: v - start[k] for k, v in engine.params().items()}
    assert all(not np.any(d) for d in moved[0.0].values())
    for name, small in moved[1e-3].items():
        np.testing.assert_allclose(moved[2e-3][name], 2 * small, rtol=1e-4, atol=1e-6)


def test_the_jax_engine_loads_a_state_written_with_the_schedule_in_optax():
    pytest.importorskip("optax")
    config = model_config("lstm", "reduce", PRESET)
    engine = engine_class("jax")(config, PRESET, 0)
    step(engine, train_batch("reduce", PRESET, seed=0, step=0), PRESET.lr_at(0))
    arrays = engine.optimizer_arrays()
    legacy = {**arrays, "[3].count": np.asarray(1, dtype=np.int32)}  # the old 4th link
    other = engine_class("jax")(config, PRESET, 0)
    other.load(engine.params(), legacy)
    assert other.optimizer_arrays().keys() == arrays.keys()
    with pytest.raises(ValueError, match="does not fit"):
        other.load(engine.params(), {**arrays, "[4].count": np.asarray(1)})


# ----------------------------------------------------------------------- loss hook
def test_the_loss_hook_is_the_entrys_and_applies_per_config():
    from namcore.models import entry_for

    hard = model_config("ham", "sort", PRESET)
    soft = model_config("ham-soft", "sort", PRESET)
    assert active_hook(hard) is entry_for(hard).loss_hook is not None
    assert active_hook(soft) is None and active_hook(model_config("lstm", "sort", PRESET)) is None


def test_both_engines_call_the_declared_hook_and_agree(monkeypatch):
    both()
    from namcore.training import engine as engine_module

    real = engine_module.entry_for
    calls: list[dict] = []

    def traced(config):
        entry = real(config)
        hook = entry.loss_hook
        if hook is None:
            return entry

        def loss(*args, **kwargs):
            calls.append(kwargs)
            return hook.loss(*args, **kwargs)

        return dataclasses.replace(entry, loss_hook=dataclasses.replace(hook, loss=loss))

    monkeypatch.setattr(engine_module, "entry_for", traced)
    found = engines("ham", "sort")
    batch = padded(train_batch("sort", PRESET, seed=0, step=19))
    losses = {name: step(e, batch, PRESET.lr_at(19), 19)[0] for name, e in found.items()}
    assert losses["torch"] == pytest.approx(losses["jax"], rel=1e-5)
    assert len(calls) == 2  # torch once, and jax once while tracing its step
    assert all(c["preset"] is PRESET and callable(c["stop_gradient"]) for c in calls)


# ------------------------------------------------------------------------- scoring
def test_one_evaluation_loop_whatever_the_chunk():
    sets = eval_sets("reduce", 40, ["id", "od_easy"])
    seen: list[int] = []

    def predict(inputs, mask):
        seen.append(len(inputs))
        return np.where(mask, inputs, 0)  # right only where the answer is the input

    whole = score_sets(predict, sets, chunk=1000)
    assert seen == [40, 40]
    assert score_sets(predict, sets, chunk=7) == whole
    assert seen[2:] == ([7] * 5 + [5]) * 2
    batch = sets["id"]
    predictions = predict_all(predict, batch)

    def rows(i: int) -> Batch:
        return Batch(*(getattr(batch, f.name)[i : i + 9] for f in dataclasses.fields(batch)))

    counts = merge_counts(length_counts(predictions[i : i + 9], rows(i)) for i in range(0, 40, 9))
    assert counts["samples"] == 40 and counts["accuracy"] == pytest.approx(whole["id"]["accuracy"])
    assert counts["by_length"] == pytest.approx(whole["id"]["by_length"])


# ---------------------------------------------------------------------- run folder
def test_progress_keeps_the_best_and_reads_old_records():
    progress = Progress()
    assert progress.offer(selection_key({"id": 0.1, "od_easy": 0.0}, "od_easy"), 5)
    assert not progress.offer(selection_key({"id": 0.05, "od_easy": 0.0}, "od_easy"), 10)
    assert progress.offer(selection_key({"id": 0.0, "od_easy": 0.2}, "od_easy"), 15)
    assert progress.to_dict() == {"step": 0, "best": [0.2, 0.1], "best_step": 15}
    old = Progress.from_dict({"step": 20, "best": 0.2, "best_step": 15, "framework": "torch"})
    assert not old.offer((0.2, 0.9), 25) and old.offer((0.3, 0.0), 25)


def test_run_folder_finds_the_checkpoint_and_refuses_conflicts(tmp_path):
    folder = RunFolder(tmp_path / "run")
    assert not folder.is_run() and folder.checkpoint() is None and folder.metrics() == []
    assert folder.claim("reduce", "lstm", "torch", "smoke", resume=False) is None
    folder.begin({"task": "reduce", "model": "lstm", "backend": "torch", "preset": "smoke"}, 0)
    assert folder.is_run() and folder.read_run()["model"] == "lstm"
    with pytest.raises(TrainingError, match="--resume"):
        folder.claim("reduce", "lstm", "torch", "smoke", resume=False)
    with pytest.raises(TrainingError, match="backend 'torch'"):
        folder.claim("reduce", "lstm", "jax", None, resume=True)
    with pytest.raises(TrainingError, match="not 'namtm' on 'reduce'"):
        folder.claim("reduce", "namtm", "torch", None, resume=True)
    for name in (RunFolder.LAST, RunFolder.BEST):  # best once there is one, else last
        (folder.path / name).write_bytes(b"")
        assert folder.checkpoint() == folder.path / name
    assert folder.checkpoint(RunFolder.LAST) == folder.path / RunFolder.LAST
    (folder.path / RunFolder.METRICS).write_text(
        "".join(json.dumps({"step": s}) + "\n" for s in (3, 6, 9))
    )
    folder.begin(folder.read_run(), 6)  # a resumed run forgets what came after its step
    assert [line["step"] for line in folder.metrics()] == [3, 6]
