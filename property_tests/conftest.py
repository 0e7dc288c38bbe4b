"""Fixtures and Hypothesis profiles for the property tests.

The ``xp`` backend matrix comes from :mod:`namcore.testing.fixtures` (see
``tests/conftest.py``). The Hypothesis profile is chosen with
``$NAMCORE_HYPOTHESIS_PROFILE``:

- ``ci`` (default): 10 examples, derandomized, no example database, so every run
  draws the same examples and a failure reproduces on the next run (10, not more:
  each example of the ndonnx backend builds and runs an ONNX graph, and the property
  tests at 25 examples took about a fifth of the suite's time);
- ``dev``: 50 random examples, failures kept in the local ``.hypothesis/`` database;
- ``thorough``: 500 random examples, for a nightly or pre-release run.

``deadline`` is off in all of them: the first call on a new shape pays for JAX
compilation, which would otherwise trip the per-example deadline.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from namcore.testing.fixtures import *  # noqa: F403

PROFILE_ENV_VAR = "NAMCORE_HYPOTHESIS_PROFILE"
PROFILES = ("ci", "dev", "thorough")

# The shared strategy/oracle modules live next to this file. pytest's default
# ("prepend") import mode already puts this folder on sys.path; doing it here as well
# keeps `import prop_strategies` working under --import-mode=importlib.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        # `xp` is function-scoped but stateless across examples (a namespace, and
        # on jax:jit the module-level primitives swapped for jitted ones).
        HealthCheck.function_scoped_fixture,
        # the first example of each shape compiles under jax:jit
        HealthCheck.too_slow,
        # one test function runs under several `xp` parametrizations
        HealthCheck.differing_executors,
    ],
}

settings.register_profile("ci", max_examples=10, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)

_profile = os.environ.get(PROFILE_ENV_VAR, "").strip() or "ci"
if _profile not in PROFILES:
    raise pytest.UsageError(
        f"${PROFILE_ENV_VAR} must be one of {', '.join(PROFILES)}, got {_profile!r}"
    )
settings.load_profile(_profile)
