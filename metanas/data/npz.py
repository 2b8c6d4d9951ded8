"""Readers for the project's offline `.npz` datasets.

The data directory is `config.data_dir` if set, else the `METANAS_DATA_DIR` environment variable.
Each dataset is one compressed `.npz` file whose arrays are listed in `SCHEMAS`; a missing or corrupt
file raises `DataError` naming the file, the directory searched and how to provide it.
"""

import os
import zipfile

import numpy as np

ENV_VAR = "METANAS_DATA_DIR"

# Dataset name -> (file name, arrays that must be present).
SCHEMAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "omniglot": ("omniglot28.npz", ("images", "split", "alphabet", "character", "drawer")),
    "mnist": ("mnist.npz", ("x_train", "y_train", "x_test", "y_test")),
    "fashion_mnist": ("fashion_mnist.npz", ("x_train", "y_train", "x_test", "y_test")),
    "coil20": ("coil20_32.npz", ("images", "object", "view", "angle_deg")),
    "olivetti": ("olivetti_faces.npz", ("images", "identity", "shot")),
    "oboe": ("oboe_error_matrix.npz", ("error", "runtime", "dataset_id", "model", "dataset_size")),
    "madelon": ("madelon.npz", ("X", "y")),
    "arcene": ("arcene.npz", ("X", "y")),
    "allaml": ("allaml.npz", ("X", "y")),
    "adult": ("adult.npz", ("X_num_train", "X_cat_train", "y_train", "X_num_test", "X_cat_test",
                            "y_test")),
    "magic": ("magic04.npz", ("X", "y")),
    "mice_gwas": ("mice_gwas.npz", ("genotypes", "pheno", "pheno_names")),
    "wheat": ("wheat.npz", ("X", "Y", "A_pedigree", "cv_set")),
}

_HOW_TO = (f"Point the {ENV_VAR} environment variable (or --config.data_dir) at the folder holding "
           "the metanas .npz files (in a metanas checkout: ../shared/data).")


class DataError(RuntimeError):
  """A dataset could not be found or read; the message says how to fix it."""


def resolve_data_dir(data_dir: str | None = None) -> str:
  """The data directory: the explicit argument, else $METANAS_DATA_DIR."""
  data_dir = data_dir or os.environ.get(ENV_VAR)
  if not data_dir:
    raise DataError(f"No data directory configured. {_HOW_TO}")
  if not os.path.isdir(data_dir):
    raise DataError(f"Data directory {data_dir!r} does not exist. {_HOW_TO}")
  return data_dir


def dataset_path(name: str, data_dir: str | None = None) -> str:
  """Path of dataset `name`'s file, checked to exist."""
  if name not in SCHEMAS:
    raise DataError(f"Unknown dataset {name!r}; known: {', '.join(sorted(SCHEMAS))}.")
  directory = resolve_data_dir(data_dir)
  filename = SCHEMAS[name][0]
  path = os.path.join(directory, filename)
  if not os.path.isfile(path):
    raise DataError(f"Dataset file {filename!r} for {name!r} not found in data directory "
                    f"{os.path.abspath(directory)!r}. {_HOW_TO}")
  return path


def load(name: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
  """Loads all arrays of dataset `name` into memory.

  Args:
    name: a key of `SCHEMAS`, e.g. "omniglot" or "magic".
    data_dir: overrides $METANAS_DATA_DIR.

  Returns:
    A dict of NumPy arrays, as described in the data directory's README.
  """
  path = dataset_path(name, data_dir)
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise DataError(f"Dataset file {path!r} is corrupt or unreadable ({type(e).__name__}: {e}). "
                    f"Replace it with a fresh copy (check it with `sha256sum -c SHA256SUMS` in its "
                    f"folder). {_HOW_TO}") from e
  missing = [k for k in SCHEMAS[name][1] if k not in arrays]
  if missing:
    raise DataError(f"Dataset file {path!r} lacks arrays {missing}; it is not the expected "
                    f"{name!r} file. Replace it with a fresh copy. {_HOW_TO}")
  return arrays
