"""Checkpoints of namcore.models: safetensors round trips, moves between backends, errors.

Weights are float64 and perturbed away from every fresh initialisation, so a loader
that silently re-initialised (or dropped a tensor) could not pass. The oracle for
logits is the NumPy float64 forward pass of the weights that were saved.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pickle
import re
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from namcore import backends, models
from namcore.testing import (
    ENV_VAR,
    XPBackend,
    assert_matches_numpy,
    selected_backends,
    setup_backend,
    to_numpy,
)

safetensors_numpy = pytest.importorskip("safetensors.numpy")

FORMAT_VERSION = models.FORMAT_VERSION
ModelConfig = models.ModelConfig

# ---------------------------------------------------------------------------------------
# Cases, weights, inputs
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A model config and the name of its class in every backend package."""

    id: str
    config: ModelConfig
    cls: str


CASES = [
    Case("lsam", models.LSAMConfig(vocab_size=9, d_model=8, n_heads=2, d_ff=12), "LSAM"),
    Case(
        "namtm",
        models.NAMTMConfig(
            vocab_size=10, d_model=12, n_tapes=3, tape_length=5, n_layers=1, action_bias=0.5
        ),
        "NAMTM",
    ),
    Case(
        "nam-transformer",
        models.NAMTransformerConfig(
            vocab_size=8,
            d_model=16,
            n_heads=4,
            n_layers=1,
            d_ff=24,
            positions="learned",
            max_length=12,
        ),
        "NAMTransformer",
    ),
    Case(
        "nam-transformer-causal",
        models.NAMTransformerConfig(vocab_size=8, d_model=8, n_heads=2, n_layers=2, causal=True),
        "NAMTransformer",
    ),
    Case(
        "nam-transformer-cls",
        models.NAMTransformerConfig(
            vocab_size=7, d_model=8, n_heads=2, n_layers=1, cls=True, n_classes=3
        ),
        "NAMTransformer",
    ),
    Case(
        "transformer",
        models.TransformerBaselineConfig(vocab_size=7, d_model=8, n_heads=2, n_layers=1),
        "TransformerBaseline",
    ),
    Case("lstm", models.LSTMBaselineConfig(vocab_size=7, d_model=10), "LSTMBaseline"),
]
CASE_PARAMS = [pytest.param(case, id=case.id) for case in CASES]
_BY_ID = {case.id: case for case in CASES}

#: Backends a checkpoint can come from and go to (cupy skips without a GPU).
BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "cupy")

_METADATA_FORMAT = "namcore.format_version"
_METADATA_CONFIG = "namcore.config"


def _weights(config: ModelConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Float64 weights under the shared names, unlike any fresh initialisation."""
    rng = np.random.default_rng(1000 + seed)
    fresh = models.init_numpy(config, seed=17 + seed, dtype=np.float64)
    return {
        name: fresh[name] + rng.normal(scale=0.1, size=fresh[name].shape) for name in sorted(fresh)
    }


def _inputs(config: ModelConfig) -> tuple[np.ndarray, np.ndarray]:
    """Integer tokens (2, 6) and a mask with padding at the end of the second row."""
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, config.vocab_size, size=(2, 6))
    mask = np.ones((2, 6), dtype=bool)
    mask[1, 4:] = False
    return tokens, mask


def _oracle(config: ModelConfig, weights: dict[str, np.ndarray]) -> np.ndarray:
    """NumPy float64 logits of ``weights`` on :func:`_inputs`."""
    tokens, mask = _inputs(config)
    return models.forward(weights, tokens, mask, config=config)


def _metadata(config: ModelConfig, version: int = FORMAT_VERSION) -> dict[str, str]:
    """The header metadata :func:`namcore.models.save` writes."""
    return {_METADATA_FORMAT: str(version), _METADATA_CONFIG: json.dumps(config.to_dict())}


def _write_raw(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> Path:
    """A safetensors file written directly, bypassing namcore's checks."""
    safetensors_numpy.save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata
    )
    return path


def _assert_same_weights(params: dict[str, Any], expected: dict[str, np.ndarray]) -> None:
    """Same names, and every array bit for bit equal (dtype and shape included)."""
    assert sorted(params) == sorted(expected)
    for name, value in expected.items():
        got = to_numpy(params[name])
        assert got.dtype == value.dtype, f"{name}: dtype {got.dtype} != {value.dtype}"
        assert got.shape == value.shape, f"{name}: shape {got.shape} != {value.shape}"
        assert got.tobytes() == value.tobytes(), f"{name}: values differ"


# ---------------------------------------------------------------------------------------
# Backends: set up (or skip visibly), save through, load into
# ---------------------------------------------------------------------------------------


def _require(name: str) -> Any:
    """The array namespace of backend ``name``, or a visible skip saying why not."""
    member = XPBackend(name)
    if member not in selected_backends():
        pytest.skip(f"{name} is not selected in ${ENV_VAR}")
    if name != "numpy":
        pytest.importorskip(name)
    try:
        namespace, _ = setup_backend(member)  # jax: enables float64 (x64)
    except LookupError as exc:
        pytest.skip(f"{name}: {exc}")
    return namespace


def _package(name: str) -> Any:
    return importlib.import_module(f"namcore.models.{name}")


@functools.cache
def _jax_apply(config: ModelConfig) -> Any:
    """``namcore.models.jax.apply`` jitted once per config (eager scans retrace each call)."""
    import jax

    return jax.jit(functools.partial(_package("jax").apply, config=config))


def _save_from(name: str, path: Path, case: Case, weights: dict[str, np.ndarray]) -> None:
    """Save ``weights`` through backend ``name``'s own model API."""
    _require(name)
    if name == "torch":
        import torch

        model = getattr(_package("torch"), case.cls)(case.config, weights, dtype=torch.float64)
        model.save(path)
    elif name == "jax":
        import jax.numpy as jnp

        params = {k: jnp.asarray(v) for k, v in weights.items()}
        getattr(_package("jax"), case.cls)(case.config).save(path, params)
    elif name == "array_api_strict":  # no model package: the functional API
        import array_api_strict

        models.save(path, {k: array_api_strict.asarray(v) for k, v in weights.items()}, case.config)
    else:  # numpy, cupy: inference models
        model = getattr(_package(name), case.cls)(case.config, weights, dtype="float64")
        model.save(path)


def _load_into(name: str, path: Path, case: Case) -> tuple[dict[str, Any], Any, Any]:
    """Load with backend ``name``'s ``from_file``: ``(params, logits on _inputs, xp)``."""
    xp = _require(name)
    backend = backends.get(name)
    tokens, mask = (backend.from_numpy(a) for a in _inputs(case.config))
    if name == "torch":
        import torch

        model = getattr(_package("torch"), case.cls).from_file(path)
        assert model.config == case.config
        with torch.no_grad():
            return model.params(), model(tokens, mask), xp
    if name == "jax":
        model, params = getattr(_package("jax"), case.cls).from_file(path)
        assert type(model) is getattr(_package("jax"), case.cls)
        assert model.config == case.config
        return params, _jax_apply(case.config)(params, tokens, mask), xp
    if name == "array_api_strict":  # no model package: the functional API
        params, config = models.load(path, backend=name)
        assert config == case.config
        return params, models.forward(params, tokens, mask, config=config), xp
    model = getattr(_package(name), case.cls).from_file(path)  # numpy, cupy
    assert model.config == case.config
    return model.params, model(tokens, mask), xp


# ---------------------------------------------------------------------------------------
# 1. Round trip through save / load
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_save_load_round_trip(tmp_path: Path, case: Case, dtype: str) -> None:
    params = {k: v.astype(dtype) for k, v in _weights(case.config).items()}
    path = tmp_path / "model.safetensors"
    models.save(path, params, case.config)
    loaded, config = models.load(path, backend="numpy")
    assert type(config) is type(case.config)
    assert config == case.config
    assert models.load_config(path) == case.config
    assert set(loaded) == set(models.parameter_shapes(case.config))
    assert all(isinstance(a, np.ndarray) for a in loaded.values())
    _assert_same_weights(loaded, params)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_checkpoint_layout(tmp_path: Path, case: Case) -> None:
    """One tensor per shared name, and exactly the metadata the error tests imitate."""
    path = tmp_path / "model.safetensors"
    weights = _weights(case.config)
    models.save(path, weights, case.config)
    with safetensors_numpy.safe_open(str(path), framework="numpy") as handle:
        assert handle.metadata() == _metadata(case.config)
        shapes = {name: tuple(handle.get_tensor(name).shape) for name in handle.keys()}
    assert shapes == models.parameter_shapes(case.config)


def test_load_casts_to_dtype(tmp_path: Path) -> None:
    case = _BY_ID["namtm"]
    params = {k: v.astype(np.float32) for k, v in _weights(case.config).items()}
    path = tmp_path / "model.safetensors"
    models.save(path, params, case.config)
    loaded, _ = models.load(path, dtype="float64")
    _assert_same_weights(loaded, {k: v.astype(np.float64) for k, v in params.items()})


# ---------------------------------------------------------------------------------------
# 2. Weights move between every pair of backends
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dest", BACKENDS)
@pytest.mark.parametrize("source", BACKENDS)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_weights_move_between_backends(tmp_path: Path, case: Case, source: str, dest: str) -> None:
    weights = _weights(case.config)
    path = tmp_path / "model.safetensors"
    _save_from(source, path, case, weights)
    params, logits, xp = _load_into(dest, path, case)
    _assert_same_weights(params, weights)
    assert_matches_numpy(logits, _oracle(case.config, weights), xp=xp, dtype="float64")


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_torch_state_dict_round_trip(tmp_path: Path, case: Case) -> None:
    """``save(path, model.state_dict())`` then ``load_state_dict`` (strict) into a fresh model."""
    xp = _require("torch")
    import torch

    cls = getattr(_package("torch"), case.cls)
    weights = _weights(case.config)
    path = tmp_path / "model.safetensors"
    models.save(path, cls(case.config, weights, dtype=torch.float64).state_dict(), case.config)
    params, config = models.load(path, backend="torch")
    target = cls(config, seed=3, dtype=torch.float64)
    target.load_state_dict(params)  # strict: same names and shapes as the module's own
    _assert_same_weights(target.state_dict(), weights)
    tokens, mask = (torch.from_numpy(a) for a in _inputs(case.config))
    with torch.no_grad():
        logits = target(tokens, mask)
    assert_matches_numpy(logits, _oracle(case.config, weights), xp=xp, dtype="float64")


# ---------------------------------------------------------------------------------------
# 3. Trained weights: torch -> jax, numpy; jax -> torch, numpy
# ---------------------------------------------------------------------------------------

# Recurrent models are cheap to train in torch; in JAX, jitting their gradient through
# lax.scan costs seconds, so JAX trains the (scan-free) non-causal NAM Transformers.
TORCH_TRAIN_CASES = [pytest.param(_BY_ID[i], id=i) for i in ("namtm", "nam-transformer-causal")]
JAX_TRAIN_CASES = [
    pytest.param(_BY_ID[i], id=i) for i in ("nam-transformer", "nam-transformer-cls")
]
_STEPS, _LR = 3, 0.05


@dataclass(frozen=True)
class Trained:
    """A model trained a few steps: weights before/after, its logits, and its own save."""

    before: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    logits: np.ndarray
    save: Callable[[Path], None]


def _targets(case: Case) -> np.ndarray:
    """Random class labels, one per output row (per token, or per sequence with n_classes)."""
    shape = _oracle(case.config, _weights(case.config)).shape
    return np.random.default_rng(9).integers(0, shape[-1], size=shape[:-1])


@functools.cache
def _train_torch(case: Case) -> Trained:
    """Three torch.optim.Adam steps of cross-entropy (cached across destinations)."""
    import torch

    model = getattr(_package("torch"), case.cls)(
        case.config, _weights(case.config), dtype=torch.float64
    )
    tokens, mask, targets = (torch.from_numpy(a) for a in (*_inputs(case.config), _targets(case)))
    optimizer = torch.optim.Adam(model.parameters(), lr=_LR)
    for _ in range(_STEPS):
        optimizer.zero_grad()
        logits = model(tokens, mask)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        )
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(tokens, mask).numpy()
    after = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return Trained(_weights(case.config), after, logits, model.save)


@functools.cache
def _train_jax(case: Case) -> Trained:
    """Three optax.adam steps of cross-entropy, gradients from jax.grad (cached)."""
    import jax
    import jax.numpy as jnp
    import optax

    model = getattr(_package("jax"), case.cls)(case.config)
    tokens, mask, targets = (jnp.asarray(a) for a in (*_inputs(case.config), _targets(case)))
    params = {k: jnp.asarray(v) for k, v in _weights(case.config).items()}

    def loss(p: dict[str, Any]) -> Any:
        logits = model.apply(p, tokens, mask)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    grad = jax.jit(jax.grad(loss))  # one compilation; optax's few updates run eagerly
    optimizer = optax.adam(_LR)
    state = optimizer.init(params)
    for _ in range(_STEPS):
        updates, state = optimizer.update(grad(params), state, params)
        params = optax.apply_updates(params, updates)
    logits = np.asarray(_jax_apply(case.config)(params, tokens, mask))
    after = {k: np.asarray(v) for k, v in params.items()}
    return Trained(
        _weights(case.config), after, logits, functools.partial(model.save, params=params)
    )


def _check_trained(tmp_path: Path, case: Case, trained: Trained, dest: str) -> None:
    # Not vacuous: training moved most weights, and the logits with them.
    changed = [k for k in trained.before if not np.array_equal(trained.before[k], trained.after[k])]
    assert len(changed) > len(trained.before) // 2, f"training changed only {changed}"
    assert np.max(np.abs(trained.logits - _oracle(case.config, trained.before))) > 1e-3
    path = tmp_path / "trained.safetensors"
    trained.save(path)
    params, logits, xp = _load_into(dest, path, case)
    _assert_same_weights(params, trained.after)
    assert_matches_numpy(logits, trained.logits, xp=xp, dtype="float64", rtol=1e-12)


@pytest.mark.parametrize("dest", ["numpy", "jax"])
@pytest.mark.parametrize("case", TORCH_TRAIN_CASES)
def test_torch_trained_weights_load_elsewhere(tmp_path: Path, case: Case, dest: str) -> None:
    _require("torch")
    _require(dest)
    _check_trained(tmp_path, case, _train_torch(case), dest)


@pytest.mark.parametrize("dest", ["numpy", "torch"])
@pytest.mark.parametrize("case", JAX_TRAIN_CASES)
def test_jax_trained_weights_load_elsewhere(tmp_path: Path, case: Case, dest: str) -> None:
    _require("jax")
    pytest.importorskip("optax")
    _require(dest)
    _check_trained(tmp_path, case, _train_jax(case), dest)


# ---------------------------------------------------------------------------------------
# 4. Errors
# ---------------------------------------------------------------------------------------

_CASE = _BY_ID["lstm"]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A real checkpoint of the LSTM case."""
    path = tmp_path / "model.safetensors"
    models.save(path, _weights(_CASE.config), _CASE.config)
    return path


def _broken_tensors(kind: str) -> tuple[dict[str, np.ndarray], str]:
    """LSTM tensors with one defect, and the message load must give."""
    tensors = _weights(_CASE.config)
    if kind == "missing":
        del tensors["decoder.w_h"]
        return tensors, r"missing \['decoder\.w_h'\]"
    if kind == "extra":
        tensors["decoder.extra"] = np.zeros(3)
        return tensors, r"unexpected \['decoder\.extra'\]"
    tensors["embed"] = np.ascontiguousarray(tensors["embed"].T)
    return tensors, re.escape("embed has shape (10, 7), expected (7, 10)")


@pytest.mark.parametrize("kind", ["missing", "extra", "misshaped"])
def test_load_refuses_tensors_that_do_not_fit(tmp_path: Path, kind: str) -> None:
    tensors, message = _broken_tensors(kind)
    path = _write_raw(tmp_path / "bad.safetensors", tensors, _metadata(_CASE.config))
    with pytest.raises(ValueError, match=rf"do not fit LSTMBaselineConfig: {message}"):
        models.load(path)
    with pytest.raises(ValueError, match=message):
        _package("numpy").LSTMBaseline.from_file(path)


@pytest.mark.parametrize("keep", [0.5, 0.999, 0.0])
def test_load_refuses_truncated_file(checkpoint: Path, keep: float) -> None:
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        models.load(checkpoint)
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        models.load_config(checkpoint)


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint at all\n", pickle.dumps({"embed": [1.0, 2.0]})],
    ids=["text", "pickle"],
)
def test_load_refuses_non_safetensors_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(
        ValueError,
        match=r"not a readable checkpoint \(truncated, or not a "
        r"safetensors file\)",
    ):
        models.load(path)


def test_load_refuses_newer_format(tmp_path: Path) -> None:
    path = _write_raw(
        tmp_path / "future.safetensors",
        _weights(_CASE.config),
        _metadata(_CASE.config, version=FORMAT_VERSION + 1),
    )
    message = (
        rf"written in checkpoint format {FORMAT_VERSION + 1}, newer than this namcore "
        rf"reads \({FORMAT_VERSION}\); upgrade namcore"
    )
    with pytest.raises(ValueError, match=message):
        models.load(path)
    with pytest.raises(ValueError, match=message):
        models.load_config(path)


@pytest.mark.parametrize(
    "metadata",
    [None, {"format": "pt"}, {_METADATA_FORMAT: str(FORMAT_VERSION)}],
    ids=["none", "foreign", "no-config"],
)
def test_load_refuses_file_without_namcore_metadata(
    tmp_path: Path, metadata: dict[str, str] | None
) -> None:
    path = _write_raw(tmp_path / "plain.safetensors", _weights(_CASE.config), metadata)
    with pytest.raises(ValueError, match="is a safetensors file but not a namcore checkpoint"):
        models.load(path)


@pytest.mark.parametrize(
    "reader",
    [models.load, models.load_config, _package("numpy").LSTMBaseline.from_file],
    ids=["load", "load_config", "from_file"],
)
def test_load_missing_file(tmp_path: Path, reader: Any) -> None:
    path = tmp_path / "absent.safetensors"
    with pytest.raises(FileNotFoundError, match=f"no checkpoint at {re.escape(str(path))}"):
        reader(path)


def test_save_refuses_to_overwrite(checkpoint: Path) -> None:
    original = checkpoint.read_bytes()
    other = _weights(_CASE.config, seed=1)
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True to replace it"):
        models.save(checkpoint, other, _CASE.config)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        _package("numpy").LSTMBaseline(_CASE.config, other).save(checkpoint)
    assert checkpoint.read_bytes() == original
    models.save(checkpoint, other, _CASE.config, overwrite=True)
    _assert_same_weights(models.load(checkpoint)[0], other)


def _wrong_params(kind: str) -> tuple[dict[str, np.ndarray], str]:
    weights = _weights(_CASE.config)
    if kind == "other-model":
        return _weights(_BY_ID["lsam"].config), r"params do not fit LSTMBaselineConfig: missing"
    if kind == "missing":
        del weights["embed"]
        return weights, r"missing \['embed'\]"
    weights["head.out.w"] = weights["head.out.w"][:, :-1]
    return weights, r"head\.out\.w has shape \(10, 6\), expected \(10, 7\)"


@pytest.mark.parametrize("kind", ["other-model", "missing", "misshaped"])
def test_save_refuses_wrong_params(tmp_path: Path, kind: str) -> None:
    params, message = _wrong_params(kind)
    with pytest.raises(ValueError, match=message):
        models.save(tmp_path / "model.safetensors", params, _CASE.config)
    assert list(tmp_path.iterdir()) == []


def test_load_unknown_backend(checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'; expected one of numpy"):
        models.load(checkpoint, backend="tensorflow")


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_from_file_refuses_other_model(tmp_path: Path, backend: str) -> None:
    _require(backend)
    namtm = _BY_ID["namtm"]
    path = tmp_path / "namtm.safetensors"
    models.save(path, _weights(namtm.config), namtm.config)
    with pytest.raises(TypeError, match="LSAM takes a LSAMConfig, got NAMTMConfig"):
        _package(backend).LSAM.from_file(path)


def test_save_refuses_mixed_dtypes_and_writes_nothing(tmp_path: Path) -> None:
    params = _weights(_CASE.config)
    params["embed"] = params["embed"].astype(np.float32)
    path = tmp_path / "mixed.safetensors"
    with pytest.raises(TypeError, match="share one dtype"):
        models.save(path, params, _CASE.config)
    assert not path.exists()


def test_save_refuses_a_non_array_parameter(tmp_path: Path) -> None:
    params = _weights(_CASE.config)
    params["embed"] = params["embed"].tolist()
    with pytest.raises(TypeError, match="'embed' is a list, not an array"):
        models.save(tmp_path / "list.safetensors", params, _CASE.config)


def test_load_refuses_a_format_version_below_one(tmp_path: Path) -> None:
    path = tmp_path / "old.safetensors"
    models.save(path, _weights(_CASE.config), _CASE.config)
    tensors = safetensors.numpy.load_file(str(path))
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        metadata = dict(handle.metadata())
    metadata["namcore.format_version"] = "0"
    safetensors.numpy.save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(ValueError, match="invalid checkpoint format version 0"):
        models.load(path)


def test_load_refuses_a_non_floating_dtype(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    models.save(path, _weights(_CASE.config), _CASE.config)
    with pytest.raises(ValueError, match="dtype must be one of"):
        models.load(path, dtype="int64")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_saved_file_gets_the_permissions_of_a_normal_file(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    models.save(path, _weights(_CASE.config), _CASE.config)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ---------------------------------------------------------------------------------------
# 5. Atomic writes
# ---------------------------------------------------------------------------------------


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    models.save(tmp_path / "model.safetensors", _weights(_CASE.config), _CASE.config)
    models.save(
        tmp_path / "model.safetensors", _weights(_CASE.config, seed=1), _CASE.config, overwrite=True
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "overwrite"])
def test_failed_save_leaves_destination_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, existing: bool
) -> None:
    path = tmp_path / "model.safetensors"
    if existing:
        models.save(path, _weights(_CASE.config), _CASE.config)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError("simulated disk failure")

    monkeypatch.setattr(models.serialization.os, failing, fail)
    with pytest.raises(OSError, match="simulated disk failure"):
        models.save(path, _weights(_CASE.config, seed=1), _CASE.config, overwrite=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# ---------------------------------------------------------------------------------------
# 6. No pickle
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dest", ["numpy", "torch", "jax"])
def test_loading_never_unpickles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dest: str
) -> None:
    case = _BY_ID["nam-transformer"]
    weights = _weights(case.config)
    path = tmp_path / "model.safetensors"
    models.save(path, weights, case.config)
    _require(dest)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a checkpoint was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    if dest == "torch":
        import torch

        monkeypatch.setattr(torch, "load", forbidden)
    params, logits, xp = _load_into(dest, path, case)
    _assert_same_weights(params, weights)
    assert_matches_numpy(logits, _oracle(case.config, weights), xp=xp, dtype="float64")


def test_float64_on_jax_without_x64_is_one_warning_or_an_error(tmp_path: Path) -> None:
    """Not one truncation warning per tensor: one warning that says what to do, or an error."""
    jax = pytest.importorskip("jax")
    config = models.NAMTMConfig(vocab_size=9, d_model=8, n_tapes=2, tape_length=6, n_layers=1)
    path = tmp_path / "x64.safetensors"
    models.save(path, models.init_numpy(config, seed=0, dtype=np.float64), config)
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            params, _ = models.load(path, backend="jax")
            assert [str(w.message) for w in caught] == [
                f"{path} holds float64 parameters, which backend 'jax' cannot create in this "
                "process: they are loaded as float32; to keep float64, enable float64 first "
                "(namcore.backends.get('jax').enable_float64())"
            ]
            assert len(params) > 1 and {str(p.dtype) for p in params.values()} == {"float32"}
            caught.clear()
            with pytest.raises(ValueError, match=r"dtype='float64': backend 'jax' cannot create"):
                models.load(path, backend="jax", dtype="float64")
            assert caught == []
    finally:
        jax.config.update("jax_enable_x64", previous)
