"""pytest fixtures for testing array-API code over the whole backend matrix.

Import them into a ``conftest.py``::

    from namcore.testing.fixtures import *  # noqa: F403

``xp`` is parametrized over :class:`~namcore.testing.XPBackend`; a member that
cannot run here is skipped with its reason, and ``$NAMCORE_TEST_BACKENDS`` narrows
the matrix. On ``jax:jit`` (and ``jax:gpu``) every function a test module tagged with
``array_api_extra.testing.lazy_xp_function`` runs under ``jax.jit``; on ``dask`` those
functions may not call ``compute`` or ``persist`` (they must only build the graph).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from namcore._typing import Device, Namespace

from ._matrix import XPBackend, selected_backends, setup_backend

__all__ = ["device", "library", "xp", "xp_setup"]


def _apply_markers(request: pytest.FixtureRequest, member: XPBackend) -> None:
    for marker in request.node.iter_markers("skip_xp_backend"):
        target, reason = _marker_args(marker)
        if target is member or target.library == member.value:
            pytest.skip(f"{member.value}: {reason}")
    for marker in request.node.iter_markers("xfail_xp_backend"):
        target, reason = _marker_args(marker)
        if target is member:
            strict = marker.kwargs.get("strict", True)
            request.node.add_marker(pytest.mark.xfail(reason=reason, strict=strict))


def _marker_args(marker: pytest.Mark) -> tuple[XPBackend, str]:
    if len(marker.args) != 1 or not isinstance(marker.args[0], XPBackend):
        raise TypeError(f"{marker.name} takes exactly one XPBackend, got {marker.args}")
    extra = set(marker.kwargs) - {"reason", "strict"}
    if "reason" not in marker.kwargs or extra:
        raise TypeError(
            f"{marker.name} needs reason= (and optionally strict=), got {sorted(marker.kwargs)}"
        )
    return marker.args[0], marker.kwargs["reason"]


@pytest.fixture(params=[pytest.param(m, id=m.value) for m in selected_backends()])
def library(request: pytest.FixtureRequest) -> XPBackend:
    """The :class:`XPBackend` member of this test run."""
    member = request.param
    _apply_markers(request, member)
    return member


@pytest.fixture
def xp_setup(library: XPBackend) -> tuple[Namespace, Device]:
    """``(namespace, device)`` of the member, or a visible skip with the reason."""
    try:
        return setup_backend(library)
    except LookupError as exc:
        pytest.skip(f"{library.value}: {exc}")


@pytest.fixture
def xp(
    library: XPBackend, xp_setup: tuple[Namespace, Device], request: pytest.FixtureRequest
) -> Iterator[Namespace]:
    """The array namespace under test (functions jitted on ``jax:jit``)."""
    namespace, _ = xp_setup
    if library.is_jit or library is XPBackend.DASK:
        from array_api_extra.testing import patch_lazy_xp_functions

        with patch_lazy_xp_functions(request, xp=namespace):
            yield namespace
    else:
        yield namespace


@pytest.fixture
def device(xp_setup: tuple[Namespace, Device]) -> Device:
    """The device inputs should be created on (CPU, or the GPU of a GPU member)."""
    return xp_setup[1]
