"""Shared fixtures: the ``xp`` backend matrix (see namcore.testing.fixtures), JAX in x64."""

import os

import pytest

from namcore.testing.fixtures import *  # noqa: F403

# The CLI commands run in this process in the tests: leave its C allocator as it is
# (tests/test_allocator.py checks the settings in processes of their own).
os.environ.setdefault("NAMCORE_ALLOCATOR", "system")


@pytest.fixture
def jax_x64():
    """JAX with 64-bit types enabled for the test, restored afterwards."""
    jax = pytest.importorskip("jax")
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield jax
    jax.config.update("jax_enable_x64", previous)
