"""The model registry: entries, lookups, registration rules and entry-point discovery."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from typing import ClassVar

import numpy as np
import pytest

from namcore import models
from namcore.models import ModelConfig, ModelEntry, Spec
from namcore.models import layers as L
from namcore.training import get_preset, model_config

BUILTIN = ("lsam", "namtm", "namtm-nojump", "lstm", "transformer", "nam-transformer", "ham")


@dataclasses.dataclass(frozen=True)
class MeanConfig(ModelConfig):
    model: ClassVar[str] = "test-mean"


def _specs(config: MeanConfig) -> dict[str, Spec]:
    return {
        "embed": Spec((config.vocab_size, config.d_model), "normal"),
        "head.w": Spec((config.d_model, config.output_size), "uniform", 0.5),
        "head.b": Spec((config.output_size,), "zeros"),
    }


def _forward(params, tokens, mask=None, *, config):
    ctx, mask = L.context(params, tokens, mask, "TestMean")
    x = L.embed(params, "embed", tokens, ctx.xp)
    return L.dense(params, "head", x, ctx.xp)


MEAN = ModelEntry("test-mean", MeanConfig, _specs, _forward)


@pytest.fixture
def registered():
    """MEAN registered for one test, removed after it."""
    models.register(MEAN)
    try:
        yield MEAN
    finally:
        models.unregister(MEAN.name)


def test_builtin_models_come_first_in_a_fixed_order():
    assert models.names()[: len(BUILTIN)] == BUILTIN
    assert models.get_entry("namtm-nojump").class_name == "NAMTM"
    assert models.get_entry("ham-soft").label == "DHAM"


def test_lookups_name_the_choices():
    with pytest.raises(ValueError, match="unknown model 'nope'; choose from lsam, namtm"):
        models.get_entry("nope")
    with pytest.raises(TypeError, match=r"expected a model config .*got object"):
        models.entry_for(object())
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        models.config_class("nope")


def test_a_config_finds_its_primary_entry_and_checkpoint_name():
    config = models.NAMTMConfig(vocab_size=5, d_model=8, n_tapes=2, jump=False)
    assert models.entry_for(config).name == "namtm"  # the variant shares the primary
    assert models.config_class("nam-transformer") is models.NAMTransformerConfig
    # checkpoints of earlier versions stored "nam_transformer"
    old = {**models.NAMTransformerConfig(vocab_size=5).to_dict(), "model": "nam_transformer"}
    assert models.config_from_dict(old) == models.NAMTransformerConfig(vocab_size=5)


def test_a_registered_model_is_everywhere(registered):
    import namcore.models.numpy as mn

    assert models.names()[-1] == "test-mean"
    config = model_config("test-mean", "reduce", "smoke")  # the default config hook
    assert config == MeanConfig(vocab_size=config.vocab_size, d_model=get_preset("smoke").d_model)
    model = mn.TestMean(config, seed=3)
    logits = model(np.ones((2, 4), dtype=np.int64))
    assert logits.shape == (2, 4, config.output_size)
    assert models.parameter_count(config) == sum(int(a.size) for a in model.params.values())
    assert "TestMean" in mn.__all__ and "TestMean" in dir(mn)

    from namcore._check import case_names

    assert "model test-mean" in case_names()
    models.unregister("test-mean")
    with pytest.raises(AttributeError):
        mn.TestMean  # noqa: B018
    models.register(MEAN)  # for the fixture's teardown


def test_registration_conflicts_are_refused(registered):
    with pytest.raises(ValueError, match="already registered"):
        models.register(dataclasses.replace(MEAN))
    other = dataclasses.replace(MEAN, name="test-mean-2", forward=lambda *a, **k: None)
    with pytest.raises(ValueError, match="shares MeanConfig with 'test-mean' but not"):
        models.register(other)

    @dataclasses.dataclass(frozen=True)
    class OtherConfig(ModelConfig):
        model: ClassVar[str] = "other"

    clash = ModelEntry("other", OtherConfig, _specs, _forward, class_name="TestMean")
    with pytest.raises(ValueError, match="class name 'TestMean' of 'other' is taken"):
        models.register(clash)
    with pytest.raises(TypeError, match="expected a ModelEntry"):
        models.register("test-mean")  # type: ignore[arg-type]
    replaced = dataclasses.replace(MEAN, label="Mean")
    models.register(replaced, replace=True)
    assert models.get_entry("test-mean").label == "Mean"


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"config": dict}, TypeError, "config must be a ModelConfig subclass"),
        ({"config": ModelConfig}, ValueError, "ModelConfig.model is empty"),
        ({"forward": None}, TypeError, "forward must be callable"),
        ({"export": "zip"}, ValueError, "export must be one of"),
        ({"class_name": "2D"}, ValueError, "is not a Python identifier"),
    ],
)
def test_bad_entries_are_refused(changes, error, message):
    fields = {"name": "x", "config": MeanConfig, "specs": _specs, "forward": _forward}
    with pytest.raises(error, match=message):
        ModelEntry(**{**fields, **changes})


def test_entry_defaults():
    entry = ModelEntry("bag-of-words", MeanConfig, _specs, _forward)
    assert (entry.class_name, entry.label, entry.export) == (
        "BagOfWords",
        "bag-of-words",
        "sequence",
    )
    assert entry.example_configs() == {"bag-of-words": MeanConfig(vocab_size=11, d_model=16)}
    assert not entry.streams(MeanConfig(vocab_size=3)) and entry.loss_hook is None
    wrong = dataclasses.replace(entry, make_config=lambda task, preset: models.LSAMConfig(5))
    from namcore import tasks

    with pytest.raises(TypeError, match="make_config returned a LSAMConfig"):
        wrong.config_for(tasks.get("reduce"), get_preset("smoke"))


def _fake_distribution(root, name: str, entry_points: str) -> None:
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[namcore.models]\n{entry_points}\n")


def test_entry_points_are_discovered_and_a_broken_one_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "good_plugin.py").write_text(
        textwrap.dedent(
            """
            import dataclasses
            from typing import ClassVar
            from namcore.models import ModelConfig, ModelEntry, Spec

            @dataclasses.dataclass(frozen=True)
            class GoodConfig(ModelConfig):
                model: ClassVar[str] = "good"

            def specs(config):
                return {"bias": Spec((config.output_size,), "zeros")}

            def forward(params, tokens, mask=None, *, config):
                return params["bias"] + 0.0 * tokens[..., None]

            ENTRY = ModelEntry("good", GoodConfig, specs, forward)
            """
        )
    )
    _fake_distribution(tmp_path, "good_plugin", "good = good_plugin:ENTRY")
    _fake_distribution(tmp_path, "broken_plugin", "broken = no_such_module:ENTRY")
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from namcore import models\n"
        "    print(models.names()[-1])\n"
        "print([str(w.message) for w in caught])\n"
        "from namcore.models.numpy import Good\n"
        "print(type(Good).__name__, Good.__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "good"
    assert "skipping model plug-in 'broken' (no_such_module:ENTRY)" in lines[1]
    assert "ModuleNotFoundError" in lines[1]
    assert lines[2] == "type namcore.models.numpy"
