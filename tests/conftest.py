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


@pytest.fixture(scope="session")
def load_script():
  """Imports a script that is not in the package, by its path under the repository root."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def load(*parts: str):
    spec = importlib.util.spec_from_file_location("_".join(parts).removesuffix(".py"),
                                                  os.path.join(root, *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

  return load
