"""ONNX export: a trained model's inference graph, built by running namcore on ndonnx.

namcore's model code is written against the array API standard, so calling it with
ndonnx arrays records an ONNX graph instead of computing numbers: the parameters
become constants, the inputs become graph inputs (``ndonnx.argument``), and
``ndonnx.build`` turns the result into an ONNX model that onnxruntime (or any ONNX
runtime on an edge device) runs. There is no export-specific model code.

Two graph kinds:

``"step"`` (the default for causal LSAM and the causal NAM Transformer)
    One streaming step: the next token and the memory state in, the prediction and
    the new state out. Decoding a stream of any length takes constant memory, which
    is the point of NAM on small devices.
``"sequence"`` (the default for every other model)
    The whole forward pass: ``tokens`` and ``mask`` (B, L) in, ``logits`` out. The
    Transformers take any batch and length. ndonnx records no loops, so the
    recurrent models (LSAM, NAM-TM, LSTM) unroll their recurrence at a fixed
    ``length``; their batch stays dynamic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from namcore._io import atomic_write

__all__ = ["MAX_LENGTH", "GraphSpec", "Progress", "build_graph", "export_onnx", "graph_kinds"]

#: The longest sequence a recurrent model's ``"sequence"`` graph is unrolled to.
#: ndonnx records every step of the recurrence into the graph: each step adds
#: hundreds of nodes and kB and takes one to several seconds to record on one CPU core
#: (LSAM, NAM-TM, LSTM at d_model 64), and an ONNX file stops at 2 GiB. Longer inputs
#: need the streaming step (causal LSAM) or a graph per window.
MAX_LENGTH = 1024

#: ``progress(step, length)``: called after each step of a recurrence is recorded,
#: ``step`` running from 1 to ``length`` once per recurrence the model has (an
#: encoder and a decoder: twice).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GraphSpec:
    """What an exported graph takes and gives: ``{name: (shape, dtype)}``.

    Symbolic sizes are strings (``"batch"``, ``"length"``).
    """

    kind: str
    inputs: dict[str, tuple[tuple[int | str, ...], str]]
    outputs: dict[str, tuple[tuple[int | str, ...], str]]


def graph_kinds(config: Any) -> tuple[str, ...]:
    """The graph kinds a model config can be exported as, the default first.

    Empty for a model that cannot be exported (its entry's ``export="none"``).
    """
    from namcore.models import entry_for

    entry = entry_for(config)
    if entry.export == "none":
        return ()
    return ("step", "sequence") if entry.streams(config) else ("sequence",)


def build_graph(
    params: dict[str, Any],
    config: Any,
    *,
    kind: str | None = None,
    length: int | None = None,
    dtype: str = "float32",
    matmul_guards: bool = True,
    progress: Progress | None = None,
) -> tuple[Any, GraphSpec]:
    """The ONNX model (an ``onnx.ModelProto``) of a model's inference graph.

    Parameters
    ----------
    params : mapping of str to array
        The model's parameters (arrays of any backend).
    config : ModelConfig
        Its config.
    kind : {"step", "sequence"}, optional
        Default: the first of :func:`graph_kinds`.
    length : int, optional
        Sequence length of a recurrent model's ``"sequence"`` graph (required there,
        refused elsewhere: the other graphs take any length), at most
        :data:`MAX_LENGTH`. Recording takes time in proportion: pass ``progress``.
    dtype : str
        Floating dtype of the graph: ``"float32"`` (default) or ``"float64"``.
    matmul_guards : bool
        Keep the ``If`` node ndonnx puts around every matrix product (it guards
        against an onnxruntime bug with zero-sized operands). ``False`` replaces each
        by its ``MatMul`` (see :mod:`namcore._onnx_graph`): streaming steps measured
        22-34 % faster, exact for inputs without a zero-sized dimension (no batch
        of 0). Default: keep them.
    progress : callable, optional
        ``progress(step, length)`` after each recorded step of an unrolled
        recurrence (see :data:`Progress`); other graphs record no steps.

    Returns
    -------
    model : onnx.ModelProto
    spec : GraphSpec

    Raises
    ------
    ValueError
        A model that cannot be exported, a kind it cannot have, a bad dtype, or a
        length that is missing, not a positive int, not wanted, or above
        :data:`MAX_LENGTH`.
    """
    import ndonnx as ndx

    from namcore import backends
    from namcore.models import entry_for

    entry = entry_for(config)
    name = entry.class_name
    if entry.export == "none":
        raise ValueError(f"export: {entry.export_note or f'{name} models cannot be exported'}")
    kinds = graph_kinds(config)
    kind = kinds[0] if kind is None else kind
    if kind not in ("step", "sequence"):
        raise ValueError(f"export: kind must be 'step' or 'sequence', got {kind!r}")
    if kind not in kinds:
        raise ValueError(
            f"export: this {name} config cannot stream (only causal "
            "LSAM, bidirectional=False and decoder=False, and the causal NAM "
            "Transformer can); export kind='sequence' instead"
        )
    if dtype not in ("float32", "float64"):
        raise ValueError(f"export: dtype must be 'float32' or 'float64', got {dtype!r}")
    unrolled = kind == "sequence" and entry.export == "unrolled"
    if unrolled and length is None:
        raise ValueError(
            f"export: the {name} sequence graph unrolls its recurrence (ONNX "
            "graphs from ndonnx have no loops): pass length=N, the sequence "
            "length it will take"
        )
    if length is not None and (
        not unrolled or isinstance(length, bool) or not isinstance(length, int) or length < 1
    ):
        raise ValueError(
            "export: length is only for recurrent sequence graphs and must be a "
            f"positive int, got {length!r} for the {name} {kind} graph"
        )
    if unrolled and length is not None and length > MAX_LENGTH:
        instead = (
            "export the streaming step (kind='step'), which takes any length"
            if "step" in kinds
            else "export a shorter length and run the graph on windows of it"
        )
        raise ValueError(
            f"export: length {length} is more than {MAX_LENGTH}, the longest the {name} "
            "sequence graph is unrolled to (ndonnx records every step into the graph: "
            "a second or more and hundreds of kB each, and ONNX files stop at 2 GiB); "
            f"{instead}"
        )
    target = backends.get("ndonnx")
    weights = {
        key: target.from_numpy(backends.for_array(a).to_numpy(a), dtype=dtype)
        for key, a in params.items()
    }
    if kind == "sequence":
        dims = ("batch", length if unrolled else "length")
        tokens = ndx.argument(shape=dims, dtype=ndx.int64)
        mask = ndx.argument(shape=dims, dtype=ndx.bool)
        with _recording_steps(target, progress if unrolled else None):
            logits = entry.forward(weights, tokens, mask, config=config)
        inputs = {"tokens": tokens, "mask": mask}
        outputs = {"logits": logits}
    else:
        inputs, outputs = _step_graph(entry, weights, config, getattr(ndx, dtype))
    model = ndx.build(inputs, outputs)
    if not matmul_guards:
        from namcore._onnx_graph import inline_matmul_guards

        model, _ = inline_matmul_guards(model)
    spec = GraphSpec(kind, _describe(inputs), _describe(outputs))
    return model, spec


@contextmanager
def _recording_steps(backend: Any, progress: Progress | None) -> Iterator[None]:
    """Call ``progress`` after each step of every ``backend.scan`` while inside.

    The recurrent models run their time loop through the backend's ``scan``; on
    ndonnx each step records nodes, which is what takes the time. The scan of this
    backend object is wrapped for the duration (an instance attribute over the
    method), so nothing changes in the model code or elsewhere afterwards.
    """
    if progress is None:
        yield
        return
    report = progress
    original = backend.scan

    def scan(f: Callable[..., Any], init: Any, xs: Any, *, length: int | None = None) -> Any:
        leaves = xs if isinstance(xs, tuple) else (() if xs is None else (xs,))
        sizes = [leaf.shape[0] for leaf in leaves if leaf.shape[0] is not None]
        total = length if length is not None else int(sizes[0]) if sizes else 0
        done = 0

        def step(carry: Any, x: Any) -> Any:
            nonlocal done
            out = f(carry, x)
            done += 1
            report(done, total)
            return out

        return original(step, init, xs, length=length)

    backend.scan = scan  # shadows the method, on this object only
    try:
        yield
    finally:
        del backend.scan


def _step_graph(
    entry: Any, weights: dict[str, Any], config: Any, float_type: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs ``token`` and the state, outputs ``logits`` and ``<state>_out``."""
    import ndonnx as ndx

    streaming = entry.streaming
    token = ndx.argument(shape=("batch",), dtype=ndx.int64)
    state = {
        name: ndx.argument(shape=shape, dtype=float_type if kind == "float" else ndx.int64)
        for name, (shape, kind) in streaming.state(config).items()
    }
    logits, new_state = streaming.step(weights, token, state, config=config)
    outputs = {"logits": logits, **{f"{name}_out": new_state[name] for name in state}}
    return {"token": token, **state}, outputs


def _describe(arrays: dict[str, Any]) -> dict[str, tuple[tuple[int | str, ...], str]]:
    out = {}
    for name, a in arrays.items():
        shape = tuple("?" if s is None else s for s in a.shape)
        out[name] = (shape, str(a.dtype).lower())
    return out


def export_onnx(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    kind: str | None = None,
    length: int | None = None,
    dtype: str = "float32",
    checkpoint: str | None = None,
    matmul_guards: bool = True,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> GraphSpec:
    """Export a trained model's inference graph to an ONNX file.

    Parameters
    ----------
    source : path-like
        A run folder written by ``namcore train`` (its ``best.safetensors``, else
        ``last.safetensors``) or a ``.safetensors`` checkpoint.
    out : path-like
        The ``.onnx`` file to write (atomically); not a folder.
    kind : {"step", "sequence"}, optional
        Streaming step or whole sequence; default: ``"step"`` for models that can
        stream, ``"sequence"`` otherwise (see :func:`graph_kinds`).
    length : int, optional
        Sequence length of a recurrent model's sequence graph, at most
        :data:`MAX_LENGTH`.
    dtype : str
        ``"float32"`` (default) or ``"float64"``.
    checkpoint : str, optional
        File name inside a run folder.
    matmul_guards : bool
        Keep ndonnx's guards around matrix products; see :func:`build_graph`.
    overwrite : bool
        Replace an existing ``out`` file (never a folder). Default: refuse.
    progress : callable, optional
        Told each recorded step of an unrolled recurrence; see :func:`build_graph`.

    Returns
    -------
    GraphSpec
        The graph's inputs and outputs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from namcore.models import LSAMConfig
    >>> from namcore.models.numpy import LSAM
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> config = LSAMConfig(vocab_size=8, d_model=8, n_heads=2, bidirectional=False,
    ...                     decoder=False)
    >>> LSAM(config).save(folder / "lsam.safetensors")
    >>> spec = export_onnx(folder / "lsam.safetensors", folder / "lsam.onnx")
    >>> spec.kind, list(spec.inputs)
    ('step', ['token', 'memory', 'hidden'])
    """
    from namcore.models import load

    source, out = Path(source), Path(out)
    if source.is_dir():
        from namcore.training.run_folder import RunFolder

        found = RunFolder(source).checkpoint(checkpoint)
        if found is None:
            names = [checkpoint] if checkpoint else list(RunFolder.CHECKPOINTS)
            raise FileNotFoundError(f"export: {source} holds no {' or '.join(names)}")
        source = found
    elif not source.is_file():
        raise FileNotFoundError(f"export: {source} is neither a run folder nor a checkpoint")
    _check_out(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"export: {out} exists; pass overwrite=True to replace it")
    params, config = load(source)
    model, spec = build_graph(
        params,
        config,
        kind=kind,
        length=length,
        dtype=dtype,
        matmul_guards=matmul_guards,
        progress=progress,
    )
    _annotate(model, config, spec, source)
    atomic_write(out, model.SerializeToString(), overwrite=overwrite)
    return spec


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that can never be written, before any time goes into the graph."""
    if out.is_dir():
        raise IsADirectoryError(
            f"export: {out} is a folder; give the path of the .onnx file to write, "
            f"e.g. {out / 'model.onnx'}"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"export: cannot write {out}: {parent} is a file")
            break


def _annotate(model: Any, config: Any, spec: GraphSpec, source: Path) -> None:
    """Record where the graph came from in the model's metadata."""
    import namcore
    from namcore.models import entry_for

    model.producer_name = "namcore"
    model.producer_version = namcore.__version__
    meta = {
        "namcore.model": entry_for(config).class_name,
        "namcore.config": json.dumps(config.to_dict()),
        "namcore.kind": spec.kind,
        "namcore.checkpoint": source.name,
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
