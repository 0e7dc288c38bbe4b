"""Post-processing of the ONNX graphs ndonnx builds.

ndonnx wraps every matrix product in an ``If`` node: for operands with a zero-sized
dimension it takes a branch that builds an empty result (working around an onnxruntime
bug), otherwise the branch holding the ``MatMul``. The guard and its condition
(``Size``, ``Mul``, ``Equal`` nodes) cost 22-34 % of a small streaming step's time in
onnxruntime (``benchmarks/streaming.py``).
:func:`inline_matmul_guards` replaces each guard by its ``MatMul``; the result is exact
for inputs without zero-sized dimensions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["count_ops", "inline_matmul_guards", "subgraphs"]


def subgraphs(node: Any) -> Iterator[Any]:
    """The subgraphs (If branches, loop bodies) held by the attributes of ``node``."""
    for attribute in node.attribute:
        if attribute.HasField("g"):
            yield attribute.g
        yield from attribute.graphs


def _guarded_matmul(node: Any) -> Any | None:
    """The ``MatMul`` of an ndonnx matmul guard, or ``None`` for any other node.

    A guard is an ``If`` with one output whose ``else_branch`` is exactly
    ``MatMul -> Identity``.
    """
    if node.op_type != "If" or len(node.output) != 1:
        return None
    branch = next((a.g for a in node.attribute if a.name == "else_branch"), None)
    if branch is None or [n.op_type for n in branch.node] != ["MatMul", "Identity"]:
        return None
    matmul, identity = branch.node
    return matmul if identity.input[0] == matmul.output[0] else None


def _reads(node: Any) -> set[str]:
    """Every name ``node`` reads, including outer names read inside its subgraphs."""
    names = set(node.input)
    for graph in subgraphs(node):
        for inner in graph.node:
            names |= _reads(inner)
    return names


def count_ops(model: Any) -> dict[str, int]:
    """How many nodes of each op type the top level of ``model``'s graph has."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def inline_matmul_guards(model: Any) -> tuple[Any, int]:
    """A copy of ``model`` with every matmul guard replaced by its ``MatMul``.

    Nodes that then feed no output (the guards' conditions) are dropped. Returns the
    copy and the number of guards replaced. The copy passes ``onnx.checker``.
    """
    import onnx
    from onnx import helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes, replaced = [], 0
    for node in out.graph.node:
        matmul = _guarded_matmul(node)
        if matmul is None:
            nodes.append(node)
            continue
        # the MatMul reads names of the outer graph; rename its output to the If's
        nodes.append(
            helper.make_node(
                "MatMul",
                list(matmul.input),
                [node.output[0]],
                name=f"{node.name or 'matmul'}_inlined",
            )
        )
        replaced += 1
    needed = {o.name for o in out.graph.output}
    kept = []
    for node in reversed(nodes):  # drop what feeds no output (the guards' conditions)
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(_reads(node))
    nodes = kept[::-1]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    onnx.checker.check_model(out)
    return out, replaced
