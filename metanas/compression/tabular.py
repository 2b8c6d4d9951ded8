"""Tabular datasets for teacher-student compression: MAGIC and Adult in one encoded feature space.

Every row is encoded as `[numeric (standardised) | one-hot block 1 | ... | one-hot block C]`. The
teacher, the students, the GAN, MUNGE and the Gaussian mixture all work in this space; synthetic
rows are mapped back onto valid rows (one hot per categorical block) by `project`.
"""

import dataclasses

import numpy as np
from sklearn import preprocessing

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


class QuantileCodec:
  """Gaussianises the numeric columns by their empirical quantiles (a rank / copula transform).

  A generator trained in this space only has to produce roughly Gaussian numeric columns; `decode`
  maps its outputs back through the empirical quantile function, so spikes (Adult's capital-gain is
  0 in 92 % of rows), integer-valued columns and heavy tails come back on the training values,
  as in the mode-specific / quantile normalisation of tabular GANs (CTGAN, Xu et al. 2019).
  Categorical blocks pass through unchanged. Host-side NumPy (scikit-learn).
  """

  def __init__(self, x: np.ndarray, spec: TabularSpec, n_quantiles: int = 1000):
    """Fits the quantiles of the numeric columns of `x` ([n, spec.dim] encoded rows)."""
    self.spec = spec
    self._qt = None
    if spec.num_numeric:
      self._qt = preprocessing.QuantileTransformer(
          n_quantiles=int(min(n_quantiles, len(x))), output_distribution="normal",
          subsample=len(x) + 1, random_state=0).fit(np.asarray(x[:, :spec.num_numeric], np.float64))

  def _apply(self, x: np.ndarray, fn) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != self.spec.dim:
      raise ValueError(f"Expected rows of width {self.spec.dim} for this dataset, got {x.shape}.")
    out = x.copy()
    if self._qt is not None:
      d = self.spec.num_numeric
      out[:, :d] = fn(x[:, :d].astype(np.float64)).astype(np.float32)
    return out

  def encode(self, x: np.ndarray) -> np.ndarray:
    """[n, dim] encoded rows -> [n, dim] rows with N(0, 1)-distributed numeric columns."""
    return self._apply(x, self._qt.transform if self._qt is not None else None)

  def decode(self, x: np.ndarray) -> np.ndarray:
    """Inverse of `encode`: numeric columns back onto the training quantiles."""
    return self._apply(x, self._qt.inverse_transform if self._qt is not None else None)


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
  mean, std = train.mean(axis=0), train.std(axis=0)
  std = np.where(std > 0, std, 1.0)
  return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _subsample(rng: np.random.Generator, n_total: int, n: int | None) -> np.ndarray:
  if n is None or n <= 0 or n >= n_total:
    return rng.permutation(n_total)
  return rng.choice(n_total, size=n, replace=False)


def _held_out(rng: np.random.Generator, n_total: int, used: np.ndarray, n: int | None) -> np.ndarray:
  """Up to n (None/0 = all) of the indices in [0, n_total) not in `used`, seeded."""
  rest = np.setdiff1d(np.arange(n_total), used)
  if not len(rest):
    raise ValueError("A validation split needs training rows left over: set n_train below the "
                     f"{n_total} rows of the training split.")
  return rest[_subsample(rng, len(rest), n)]


def load(name: str, data_dir: str | None = None, n_train: int | None = None,
         n_test: int | None = None, seed: int = 0, test_fraction: float = 1 / 3,
         validation: bool = False) -> TabularData:
  """Loads and encodes "magic" or "adult".

  MAGIC has no canonical split: a seeded random `test_fraction` of the rows is the test set. Adult
  uses its canonical split. Numeric columns are standardised with training statistics; Adult's
  categoricals become one-hot blocks. `n_train` / `n_test` subsample (seeded) after splitting.
  With `validation=True` the evaluation rows (returned as `x_test`, `y_test`) are instead `n_test`
  rows of the training split disjoint from the training rows, and the test split is never read;
  settings are selected this way. The training rows are the same as with `validation=False`.

  Args:
    name: "magic" or "adult".
    data_dir: overrides $METANAS_DATA_DIR.
    n_train, n_test: optional subsample sizes (None = all rows).
    seed: the split / subsample seed.
    test_fraction: MAGIC's test share.
    validation: evaluate on held-out training rows instead of the test split.

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
    tr_idx = _subsample(rng, len(tr), n_train)
    te = (tr[_held_out(rng, len(tr), tr_idx, n_test)] if validation else
          te[_subsample(rng, len(te), n_test)])
    tr = tr[tr_idx]
    x_tr, x_te = _standardise(x[tr], x[te])
    return TabularData(name, TabularSpec(x.shape[1]), x_tr, y[tr], x_te, y[te])
  if name == "adult":
    arrays = npz.load("adult", data_dir)
    offsets = arrays["cat_vocab_offsets"]
    sizes = tuple(int(b - a) for a, b in zip(offsets[:-1], offsets[1:]))
    parts = {}
    train_idx = _subsample(rng, len(arrays["y_train"]), n_train)
    for split, n in (("train", n_train), ("test", n_test)):
      idx = train_idx if split == "train" else (
          _held_out(rng, len(arrays["y_train"]), train_idx, n) if validation else
          _subsample(rng, len(arrays["y_test"]), n))
      source = "train" if validation else split   # Validation rows come from the train split.
      num = arrays[f"X_num_{source}"][idx].astype(np.float64)
      num[:, _ADULT_LOG_COLUMNS] = np.log1p(np.maximum(num[:, _ADULT_LOG_COLUMNS], 0))
      cat = arrays[f"X_cat_{source}"][idx].astype(np.int64)
      parts[split] = (num, cat, arrays[f"y_{source}"][idx].astype(np.int32))
    num_tr, num_te = _standardise(parts["train"][0], parts["test"][0])
    enc = []
    for num, (_, cat, _) in ((num_tr, parts["train"]), (num_te, parts["test"])):
      enc.append(np.concatenate([num] + [one_hot(cat[:, j], s) for j, s in enumerate(sizes)],
                                axis=1))
    return TabularData(name, TabularSpec(num_tr.shape[1], sizes), enc[0], parts["train"][2],
                       enc[1], parts["test"][2])
  raise ValueError(f"Unknown tabular dataset {name!r}; choose 'magic' or 'adult'.")
