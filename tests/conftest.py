"""Test set-up: 8 fake CPU devices (so sharding code runs as on a pod), and the data directory."""

import os

import jax

# Must run before any JAX computation initialises the backend.
jax.config.update("jax_num_cpu_devices", 8)

import pytest  # pylint: disable=g-import-not-at-top

from metanas.data import npz  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope="session")
def data_dir() -> str:
  """The real data directory. Tests that need data FAIL (not skip) when it is missing."""
  d = os.environ.get(npz.ENV_VAR)
  if not d or not os.path.isdir(d):
    pytest.fail(f"Set {npz.ENV_VAR} to the metanas data folder (../shared/data in a checkout); "
                f"got {d!r}.")
  return d
