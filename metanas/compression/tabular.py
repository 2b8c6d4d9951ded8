"""Tabular datasets for teacher-student compression: MAGIC and Adult in one encoded feature space.

Every row is encoded as `[numeric (standardised) | one-hot block 1 | ... | one-hot block C]`. The
teacher, the students, the GAN, MUNGE and the Gaussian mixture all work in this space; synthetic
rows are mapped back onto valid rows (one hot per categorical block) by `project`.
"""

import dataclasses

import numpy as np

from metanas.data import npz

# Adult numeric columns with heavy right tails (fnlwgt, capital-gain, capital-loss) get log1p.
_ADULT_LOG_COLUMNS = (1, 3, 4)


@dataclasses.dataclass(frozen=True)
class TabularSpec:
  """Layout of the encoded features.

  Attributes:
    num_numeric: number of leading standardised numeric columns.
    cat_sizes: sizes of the one-hot blocks that follow, in order.
  """
  num_numeric: int
  cat_sizes: tuple[int, ...] = ()

  @property
  def dim(self) -> int:
    return self.num_numeric + sum(self.cat_sizes)

  def blocks(self) -> list[tuple[int, int]]:
    """[start, stop) column ranges of the one-hot blocks."""
    out, start = [], self.num_numeric
    for size in self.cat_sizes:
      out.append((start, start + size))
      start += size
    return out


@dataclasses.dataclass(frozen=True)
class TabularData:
  """Encoded train/test split. x_*: [n, spec.dim] float32; y_*: [n] int32 in {0, 1}."""
  name: str
  spec: TabularSpec
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def one_hot(codes: np.ndarray, size: int) -> np.ndarray:
  """[n] integer codes -> [n, size] float32 one-hot rows."""
  codes = np.asarray(codes)
  if codes.size and (codes.min() < 0 or codes.max() >= size):
    raise ValueError(f"Category codes must lie in [0, {size}); got range "
                     f"[{codes.min()}, {codes.max()}].")
  return np.eye(size, dtype=np.float32)[codes]


def project(x: np.ndarray, spec: TabularSpec) -> np.ndarray:
  """Maps arbitrary rows onto valid encoded rows: each categorical block becomes one-hot at its argmax.

  Args:
    x: [n, spec.dim] rows (e.g. GAN or Gaussian-mixture samples).
    spec: the feature layout.

  Returns:
    [n, spec.dim] float32, numeric part unchanged.
  """
  x = np.asarray(x, np.float32)
  if x.ndim != 2 or x.shape[1] != spec.dim:
    raise ValueError(f"Expected rows of width {spec.dim} for this dataset, got shape {x.shape}.")
  out = x.copy()
  for start, stop in spec.blocks():
    out[:, start:stop] = one_hot(np.argmax(x[:, start:stop], axis=1), stop - start)
  return out


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
  mean, std = train.mean(axis=0), train.std(axis=0)
  std = np.where(std > 0, std, 1.0)
  return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _subsample(rng: np.random.Generator, n_total: int, n: int | None) -> np.ndarray:
  if n is None or n <= 0 or n >= n_total:
    return rng.permutation(n_total)
  return rng.choice(n_total, size=n, replace=False)


def load(name: str, data_dir: str | None = None, n_train: int | None = None,
         n_test: int | None = None, seed: int = 0, test_fraction: float = 1 / 3) -> TabularData:
  """Loads and encodes "magic" or "adult".

  MAGIC has no canonical split: a seeded random `test_fraction` of the rows is the test set. Adult
  uses its canonical split. Numeric columns are standardised with training statistics; Adult's
  categoricals become one-hot blocks. `n_train` / `n_test` subsample (seeded) after splitting.

  Args:
    name: "magic" or "adult".
    data_dir: overrides $METANAS_DATA_DIR.
    n_train, n_test: optional subsample sizes (None = all rows).
    seed: the split / subsample seed.
    test_fraction: MAGIC's test share.

  Returns:
    A `TabularData`.
  """
  rng = np.random.default_rng(seed)
  if name == "magic":
    arrays = npz.load("magic", data_dir)
    x, y = arrays["X"].astype(np.float64), arrays["y"].astype(np.int32)
    perm = rng.permutation(len(y))
    n_te = int(round(test_fraction * len(y)))
    te, tr = perm[:n_te], perm[n_te:]
    tr, te = tr[_subsample(rng, len(tr), n_train)], te[_subsample(rng, len(te), n_test)]
    x_tr, x_te = _standardise(x[tr], x[te])
    return TabularData(name, TabularSpec(x.shape[1]), x_tr, y[tr], x_te, y[te])
  if name == "adult":
    arrays = npz.load("adult", data_dir)
    offsets = arrays["cat_vocab_offsets"]
    sizes = tuple(int(b - a) for a, b in zip(offsets[:-1], offsets[1:]))
    parts = {}
    for split, n in (("train", n_train), ("test", n_test)):
      idx = _subsample(rng, len(arrays[f"y_{split}"]), n)
      num = arrays[f"X_num_{split}"][idx].astype(np.float64)
      num[:, _ADULT_LOG_COLUMNS] = np.log1p(np.maximum(num[:, _ADULT_LOG_COLUMNS], 0))
      cat = arrays[f"X_cat_{split}"][idx].astype(np.int64)
      parts[split] = (num, cat, arrays[f"y_{split}"][idx].astype(np.int32))
    num_tr, num_te = _standardise(parts["train"][0], parts["test"][0])
    enc = []
    for num, (_, cat, _) in ((num_tr, parts["train"]), (num_te, parts["test"])):
      enc.append(np.concatenate([num] + [one_hot(cat[:, j], s) for j, s in enumerate(sizes)],
                                axis=1))
    return TabularData(name, TabularSpec(num_tr.shape[1], sizes), enc[0], parts["train"][2],
                       enc[1], parts["test"][2])
  raise ValueError(f"Unknown tabular dataset {name!r}; choose 'magic' or 'adult'.")
