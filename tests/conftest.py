"""Shared fixtures: the ``xp`` backend matrix (see namcore.testing.fixtures)."""

from namcore.testing.fixtures import *  # noqa: F403
