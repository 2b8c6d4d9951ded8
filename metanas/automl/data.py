"""The pipelines x datasets error matrix, from the OBOE npz or the paper's released CSV format.

Both loaders return an `AutoMLData` with errors oriented [pipelines, datasets] (the paper's Y is
N pipelines x D datasets), NaN = not observed, and per-dataset meta-features for warm starts.

Paper format (github.com/rsheth80/pmf-automl, for users with the 42k x 553 files), in one folder:
  all_normalized_accuracy_with_pipelineID.csv  header ",<dataset id>,..."; one row per pipeline,
      first field the pipeline id, then balanced accuracies (empty or "nan" = missing).
  ids_train.csv, ids_test.csv   one OpenML dataset id per line (an optional header line is skipped).
  data_feats_featurized.csv     header line; one row per dataset: id, then numeric meta-features.
Accuracies are turned into errors (1 - accuracy) so everything downstream minimises.
"""

import dataclasses
import os

import numpy as np

from metanas.data import npz

PAPER_FILES = {
    "matrix": "all_normalized_accuracy_with_pipelineID.csv",
    "train_ids": "ids_train.csv",
    "test_ids": "ids_test.csv",
    "features": "data_feats_featurized.csv",
}


@dataclasses.dataclass(frozen=True)
class AutoMLData:
  """errors [N, D] (NaN = missing); features [D, F]; dataset_ids [D]; pipeline_names [N];
  train/test: dataset column indices given by the source (None = split at random)."""
  errors: np.ndarray
  features: np.ndarray
  dataset_ids: np.ndarray
  pipeline_names: np.ndarray
  train: np.ndarray | None = None
  test: np.ndarray | None = None


def load_oboe(data_dir: str | None = None) -> AutoMLData:
  """OBOE: 219 pipelines x 418 OpenML datasets, balanced error, fully observed.

  Meta-features are the only ones the file holds: log #rows, log #features, log(#rows/#features).
  """
  arrays = npz.load("oboe", data_dir)
  size = arrays["dataset_size"].astype(np.float64)
  features = np.stack([np.log(size[:, 0]), np.log(size[:, 1]), np.log(size[:, 0] / size[:, 1])],
                      axis=1)
  return AutoMLData(errors=arrays["error"].T.astype(np.float64), features=features,
                    dataset_ids=arrays["dataset_id"].astype(np.int64),
                    pipeline_names=arrays["model"])


def _read_ids(path: str) -> np.ndarray:
  ids = []
  with open(path) as f:
    for line in f:
      field = line.strip().split(",")[-1].strip()
      if field:
        try:
          ids.append(int(float(field)))
        except ValueError:
          if ids:  # Only the first line may be a header.
            raise ValueError(f"{path}: non-numeric dataset id {field!r}.") from None
  return np.asarray(ids, np.int64)


def _index_of(ids: np.ndarray, wanted: np.ndarray, what: str, path: str) -> np.ndarray:
  lookup = {int(v): i for i, v in enumerate(ids)}
  missing = [int(v) for v in wanted if int(v) not in lookup]
  if missing:
    raise ValueError(f"{len(missing)} dataset id(s) of {what} (e.g. {missing[:5]}) are not in "
                     f"{path}; the files do not belong together.")
  return np.asarray([lookup[int(v)] for v in wanted], np.int64)


def load_paper_format(folder: str) -> AutoMLData:
  """Reads the paper's released files (see the module docstring) from `folder`."""
  paths = {k: os.path.join(folder, v) for k, v in PAPER_FILES.items()}
  absent = [p for p in paths.values() if not os.path.isfile(p)]
  if absent:
    raise npz.DataError(f"Paper-format AutoML data incomplete: missing {absent}. Set "
                        "--config.data.paper_dir to the folder with the unzipped files of "
                        "github.com/rsheth80/pmf-automl.")
  with open(paths["matrix"]) as f:
    header = f.readline().strip().split(",")
  dataset_ids = np.asarray([int(float(h)) for h in header[1:]], np.int64)
  table = np.genfromtxt(paths["matrix"], delimiter=",", skip_header=1, dtype=np.float64,
                        missing_values=("", "nan", "NaN"), filling_values=np.nan)
  table = np.atleast_2d(table)
  if table.shape[1] != dataset_ids.size + 1:
    raise ValueError(f"{paths['matrix']}: rows have {table.shape[1]} fields but the header names "
                     f"{dataset_ids.size} datasets plus the pipeline id column.")
  accuracy = table[:, 1:]
  feats = np.genfromtxt(paths["features"], delimiter=",", skip_header=1, dtype=np.float64)
  feats = np.atleast_2d(feats)
  feat_rows = _index_of(feats[:, 0].astype(np.int64), dataset_ids, "the matrix",
                        paths["features"])
  train_ids, test_ids = _read_ids(paths["train_ids"]), _read_ids(paths["test_ids"])
  return AutoMLData(errors=1.0 - accuracy, features=feats[feat_rows, 1:],
                    dataset_ids=dataset_ids,
                    pipeline_names=table[:, 0].astype(np.int64).astype(str),
                    train=_index_of(dataset_ids, train_ids, "ids_train.csv", paths["matrix"]),
                    test=_index_of(dataset_ids, test_ids, "ids_test.csv", paths["matrix"]))


def split(data: AutoMLData, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Train/test dataset indices: the source's own split if it has one, else a seeded shuffle."""
  if data.train is not None and data.test is not None:
    return data.train, data.test
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}.")
  d = data.errors.shape[1]
  perm = np.random.default_rng(seed).permutation(d)
  num_test = max(1, int(round(test_fraction * d)))
  return np.sort(perm[num_test:]), np.sort(perm[:num_test])


def sparsify(mask: np.ndarray, keep: float, rng: np.random.Generator) -> np.ndarray:
  """Keeps a random `keep` fraction of the observed entries of mask [N, D] (at least 2 per column).

  Returns:
    [N, D] float mask, a subset of `mask`.
  """
  if not 0.0 < keep <= 1.0:
    raise ValueError(f"Sparsity keep fraction must be in (0, 1]; got {keep}.")
  mask = np.asarray(mask, np.float32)
  if keep == 1.0:
    return mask.copy()
  out = (mask > 0) & (rng.random(mask.shape) < keep)
  for d in range(mask.shape[1]):  # A column needs 2 entries for a mean and a spread.
    have = int(out[:, d].sum())
    if have < 2:
      extra = rng.permutation(np.flatnonzero((mask[:, d] > 0) & ~out[:, d]))[:2 - have]
      out[extra, d] = True
  return out.astype(np.float32)
