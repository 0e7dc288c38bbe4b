"""ONNX export through ndonnx: every exported graph, run in onnxruntime, equals NumPy."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("ndonnx")
ort = pytest.importorskip("onnxruntime")

from namcore.cli import main  # noqa: E402
from namcore.export import build_graph, export_onnx, graph_kinds  # noqa: E402
from namcore.models import (  # noqa: E402
    LSAMConfig,
    LSTMBaselineConfig,
    NAMTMConfig,
    NAMTransformerConfig,
    TransformerBaselineConfig,
    forward,
    init_numpy,
    save,
)

RECURRENT_LENGTH = 5

# (config, kind): one entry per exported model kind
GRAPHS = {
    "lsam-sequence": (LSAMConfig(vocab_size=9, d_model=8, n_heads=2), "sequence"),
    "lsam-step": (
        LSAMConfig(vocab_size=9, d_model=12, n_heads=3, bidirectional=False, decoder=False),
        "step",
    ),
    "namtm-sequence": (
        NAMTMConfig(vocab_size=9, d_model=8, n_tapes=2, tape_length=6, n_layers=1),
        "sequence",
    ),
    "lstm-sequence": (LSTMBaselineConfig(vocab_size=9, d_model=8), "sequence"),
    "nam-encoder": (NAMTransformerConfig(vocab_size=9, d_model=8, n_heads=2), "sequence"),
    "nam-classifier": (
        NAMTransformerConfig(vocab_size=9, d_model=8, n_heads=2, cls=True, n_classes=3),
        "sequence",
    ),
    "nam-causal-step": (
        NAMTransformerConfig(vocab_size=9, d_model=8, n_heads=2, causal=True),
        "step",
    ),
    "nam-causal-sequence": (
        NAMTransformerConfig(vocab_size=9, d_model=8, n_heads=2, causal=True),
        "sequence",
    ),
    "transformer": (TransformerBaselineConfig(vocab_size=9, d_model=8, n_heads=2), "sequence"),
}

_SESSIONS: dict[str, tuple] = {}
_PROGRESS: dict[str, list[tuple[int, int]]] = {}  # what build_graph reported while recording


def session(name: str) -> tuple:
    """(session, params, config) for a graph, built once per test run."""
    if name not in _SESSIONS:
        config, kind = GRAPHS[name]
        params = init_numpy(config, seed=3)
        recurrent = not isinstance(config, NAMTransformerConfig | TransformerBaselineConfig)
        length = RECURRENT_LENGTH if kind == "sequence" and recurrent else None
        steps = _PROGRESS[name] = []
        model, spec = build_graph(
            params, config, kind=kind, length=length, progress=lambda *a: steps.append(a)
        )
        assert spec.kind == kind
        _SESSIONS[name] = (ort.InferenceSession(model.SerializeToString()), params, config)
    return _SESSIONS[name]


def tokens_and_mask(batch: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 9, size=(batch, length))
    mask = np.ones((batch, length), dtype=bool)
    if batch > 1:
        mask[1, length // 2 :] = False  # a right-padded row
    return tokens, mask


def assert_close(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n, (_, kind) in GRAPHS.items() if kind == "sequence"])
def test_sequence_graph_matches_numpy(name):
    sess, params, config = session(name)
    recurrent = not isinstance(config, NAMTransformerConfig | TransformerBaselineConfig)
    # the batch is dynamic everywhere; the Transformers take any length too
    shapes = [(3, RECURRENT_LENGTH), (1, RECURRENT_LENGTH)]
    if not recurrent:
        shapes += [(2, 11), (4, 2)]
    for seed, (batch, length) in enumerate(shapes):
        tokens, mask = tokens_and_mask(batch, length, seed)
        (got,) = sess.run(None, {"tokens": tokens, "mask": mask})
        assert got.dtype == np.float32
        assert_close(got, forward(params, tokens, mask, config=config))


def _stream(name: str, tokens: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    """Logits (B, L, V) from feeding ``tokens`` to a step graph one at a time."""
    sess, _params, config = session(name)
    batch, d, heads = tokens.shape[0], config.d_model, config.n_heads
    if isinstance(config, LSAMConfig):
        state = {
            "memory": np.zeros((batch, heads, d // heads, d // heads), np.float32),
            "hidden": np.zeros((batch, d), np.float32),
        }
    else:
        state = {
            "position": np.array(0, dtype=np.int64),
            "memory": np.zeros((config.n_layers, batch, heads, d // heads, d // heads), np.float32),
        }
    logits, shapes = [], []
    for t in range(tokens.shape[1]):
        out = sess.run(None, {"token": tokens[:, t], **state})
        logits.append(out[0])
        state = dict(zip(state, out[1:], strict=True))
        shapes.append(tuple(a.shape for a in state.values()))
    return np.stack(logits, axis=1), shapes


@pytest.mark.parametrize("name", ["lsam-step", "nam-causal-step"])
@pytest.mark.parametrize("batch", [1, 3])
def test_streaming_step_matches_numpy(name, batch):
    _, params, config = session(name)
    tokens, _ = tokens_and_mask(batch, 9, seed=batch)
    got, state_shapes = _stream(name, tokens)
    assert_close(got, forward(params, tokens, config=config))
    # constant memory: the state has the same size after every token
    assert len(set(state_shapes)) == 1


def test_streaming_step_continues_a_numpy_stream():
    """The ONNX step picks up a state produced by NumPy and agrees with it."""
    sess, params, config = session("lsam-step")
    tokens, _ = tokens_and_mask(2, 6, seed=9)
    _logits, (memory, hidden) = forward(params, tokens[:, :4], config=config, return_state=True)
    out = sess.run(
        None,
        {
            "token": tokens[:, 4],
            "memory": memory.astype(np.float32),
            "hidden": hidden.astype(np.float32),
        },
    )
    assert_close(out[0], forward(params, tokens[:, :5], config=config)[:, 4])


@pytest.mark.parametrize(
    "name", ["lsam-step", "nam-causal-step", "nam-classifier", "lstm-sequence"]
)
def test_graph_without_matmul_guards_gives_the_same_outputs(name):
    from namcore._onnx_graph import count_ops, inline_matmul_guards

    config, kind = GRAPHS[name]
    params = init_numpy(config, seed=3)
    length = RECURRENT_LENGTH if name == "lstm-sequence" else None
    guarded, _ = build_graph(params, config, kind=kind, length=length)
    plain, _ = build_graph(params, config, kind=kind, length=length, matmul_guards=False)
    replaced = inline_matmul_guards(guarded)[1]
    assert replaced > 0 and inline_matmul_guards(plain)[1] == 0  # no guard is left
    assert count_ops(plain).get("If", 0) == count_ops(guarded)["If"] - replaced
    assert count_ops(plain)["MatMul"] >= replaced
    assert len(plain.graph.node) < len(guarded.graph.node)
    sessions = [ort.InferenceSession(m.SerializeToString()) for m in (guarded, plain)]
    feeds = {}
    for arg in sessions[0].get_inputs():
        shape = [2 if not isinstance(d, int) else d for d in arg.shape]
        if arg.type == "tensor(int64)":
            feeds[arg.name] = np.random.default_rng(0).integers(0, 9, size=shape)
        elif arg.type == "tensor(bool)":
            feeds[arg.name] = np.ones(shape, dtype=bool)
        else:
            feeds[arg.name] = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for a, b in zip(*(s.run(None, feeds) for s in sessions), strict=True):
        # onnxruntime fuses the plain MatMuls with their neighbours (e.g. into Gemm),
        # so results may differ in the last bit
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_graph_kinds():
    assert graph_kinds(GRAPHS["lsam-step"][0]) == ("step", "sequence")
    assert graph_kinds(GRAPHS["lsam-sequence"][0]) == ("sequence",)
    assert graph_kinds(GRAPHS["nam-causal-step"][0]) == ("step", "sequence")
    assert graph_kinds(GRAPHS["nam-encoder"][0]) == ("sequence",)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("lsam-sequence", {"kind": "step"}, "cannot stream"),
        ("lsam-sequence", {}, "pass length=N"),
        ("nam-encoder", {"length": 5}, "only for recurrent sequence graphs"),
        ("lsam-sequence", {"length": 0}, "positive int"),
        ("nam-encoder", {"kind": "decoder"}, "kind must be 'step' or 'sequence'"),
        ("nam-encoder", {"dtype": "float16"}, "dtype must be"),
    ],
)
def test_build_errors(name, kwargs, match):
    config, _ = GRAPHS[name]
    with pytest.raises(ValueError, match=match):
        build_graph(init_numpy(config, seed=0), config, **kwargs)


def test_ham_is_refused_with_the_reason():
    from namcore.models import HAMConfig

    config = HAMConfig(vocab_size=5, d_model=8)
    with pytest.raises(ValueError, match="HAM models cannot be exported"):
        build_graph(init_numpy(config, seed=0), config, length=4)


@pytest.fixture
def checkpoint(tmp_path):
    config = GRAPHS["nam-causal-step"][0]
    params = init_numpy(config, seed=3)
    save(tmp_path / "run" / "best.safetensors", params, config)
    return tmp_path / "run", params, config


def test_export_onnx_writes_a_file_with_metadata(checkpoint, tmp_path):
    import onnx

    run, _params, config = checkpoint
    out = tmp_path / "model.onnx"
    spec = export_onnx(run, out)
    assert spec.kind == "step" and list(spec.inputs) == ["token", "position", "memory"]
    model = onnx.load(out)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["namcore.model"] == "NAMTransformer"
    assert json.loads(meta["namcore.config"]) == config.to_dict()
    assert meta["namcore.checkpoint"] == "best.safetensors"
    assert [i.name for i in model.graph.input] == ["token", "position", "memory"]


def test_export_onnx_refuses_to_overwrite(checkpoint, tmp_path):
    run, _, _ = checkpoint
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(run, out)
    assert out.read_bytes() == b"keep me"
    export_onnx(run, out, overwrite=True, kind="sequence")
    assert out.read_bytes() != b"keep me"


def test_export_onnx_missing_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a run folder nor a checkpoint"):
        export_onnx(tmp_path / "nope", tmp_path / "m.onnx")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no best\.safetensors or last"):
        export_onnx(tmp_path / "empty", tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_onnx(checkpoint, tmp_path, capsys):
    run, params, config = checkpoint
    out = tmp_path / "sub" / "model.onnx"
    assert (
        main(
            [
                "export",
                "onnx",
                str(run),
                "--out",
                str(out),
                "--kind",
                "sequence",
                "--no-matmul-guards",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "sequence graph" in printed and "tokens" in printed and "logits" in printed
    sess = ort.InferenceSession(str(out))
    tokens, mask = tokens_and_mask(2, 6, seed=4)
    (got,) = sess.run(None, {"tokens": tokens, "mask": mask})
    assert_close(got, forward(params, tokens, mask, config=config))


def test_cli_export_errors_exit_2(checkpoint, tmp_path, capsys):
    run, _, _ = checkpoint
    out = tmp_path / "model.onnx"
    out.write_bytes(b"x")
    assert main(["export", "onnx", str(run), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (
        main(["export", "onnx", str(run), "--out", str(out), "--length", "4", "--overwrite"]) == 2
    )
    assert "only for recurrent" in capsys.readouterr().err
    assert out.read_bytes() == b"x"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["new", "overwrite"])
def test_cli_export_refuses_a_folder_as_out_before_building(
    checkpoint, tmp_path, capsys, overwrite
):
    run, _, _ = checkpoint
    folder = tmp_path / "exports"
    folder.mkdir()
    assert main(["export", "onnx", str(run), "--out", str(folder), *overwrite]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"namcore export: error: {folder} is a folder; give the path of the .onnx file to "
        f"write, e.g. {folder / 'model.onnx'}"
    )
    assert list(folder.iterdir()) == []


def test_export_refuses_an_out_below_a_file(checkpoint, tmp_path):
    run, _, _ = checkpoint
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(NotADirectoryError, match="notes is a file"):
        export_onnx(run, tmp_path / "notes" / "model.onnx")


def test_cli_export_refuses_an_unrollable_length_at_once(tmp_path, capsys):
    from namcore.export import MAX_LENGTH

    config, _ = GRAPHS["lstm-sequence"]
    save(tmp_path / "lstm.safetensors", init_numpy(config, seed=0), config)
    out = tmp_path / "lstm.onnx"
    argv = ["export", "onnx", str(tmp_path / "lstm.safetensors"), "--out", str(out)]
    assert main([*argv, "--length", "100000"]) == 2
    err = capsys.readouterr().err
    assert f"length 100000 is more than {MAX_LENGTH}" in err and "2 GiB" in err
    assert not out.exists()
    step_config, _ = GRAPHS["lsam-step"]  # a model that streams is pointed to its step
    with pytest.raises(ValueError, match=r"kind='step'\), which takes any length"):
        build_graph(init_numpy(step_config, seed=0), step_config, kind="sequence", length=10**5)


def test_recording_an_unrolled_graph_reports_every_step():
    session("lstm-sequence")  # built once for the other tests too
    steps = _PROGRESS["lstm-sequence"]
    one_pass = [(i, RECURRENT_LENGTH) for i in range(1, RECURRENT_LENGTH + 1)]
    assert steps and steps == one_pass * (len(steps) // RECURRENT_LENGTH)
    session("nam-encoder")  # nothing unrolled, nothing reported
    assert _PROGRESS["nam-encoder"] == []


def test_cli_export_shows_the_recording_progress(checkpoint, tmp_path, capsys, monkeypatch):
    import ndonnx as ndx

    import namcore.export

    def recording(params, config, **kwargs):  # reports as an unrolled recurrence of 2 steps
        for step in (1, 2):
            kwargs["progress"](step, 2)
        x = ndx.argument(shape=("batch",), dtype=ndx.int64)  # a tiny graph: no model recorded
        spec = namcore.export.GraphSpec("sequence", {"x": (("batch",), "int64")}, {})
        return ndx.build({"x": x}, {"y": x}), spec

    monkeypatch.setattr(namcore.export, "build_graph", recording)
    run, _, _ = checkpoint
    assert main(["export", "onnx", str(run), "--out", str(tmp_path / "m.onnx")]) == 0
    err = capsys.readouterr().err
    assert "unrolling the recurrence over 2 steps" in err and "step 2/2" in err


@pytest.mark.parametrize("module", ["safetensors", "ndonnx"])
def test_cli_export_names_the_extra_of_a_missing_dependency(
    checkpoint, tmp_path, capsys, monkeypatch, module
):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    run, _, _ = checkpoint
    assert main(["export", "onnx", str(run), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"namcore export: error: ONNX export needs {module}, not installed here: "
        "pip install 'namcore[onnx]'"
    )
