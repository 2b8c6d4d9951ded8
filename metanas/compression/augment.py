"""Non-GAN transfer-set augmentations: MUNGE, a class-conditional Gaussian mixture, noise, mixup.

All run on the host in NumPy / scikit-learn. Synthetic rows need no labels (the teacher labels them);
class-conditional generators return the classes they were drawn from for bookkeeping only.
"""

import numpy as np
from sklearn import mixture
from sklearn import neighbors

from metanas.compression import tabular


def munge(x: np.ndarray, spec: tabular.TabularSpec, multiplier: int, p: float = 0.5,
          s: float = 5.0, seed: int = 0) -> np.ndarray:
  """MUNGE (Bucila, Caruana & Niculescu-Mizil 2006, Alg. 1) in the encoded feature space.

  Each round walks every example e with its nearest neighbour e' (Euclidean in the encoded space).
  With probability p per attribute: a categorical block takes e'’s value (swap); a numeric value is
  redrawn from N(e'_a, (|e_a - e'_a| / s)^2). The modified e is emitted; `multiplier` rounds give
  multiplier * n rows. (The paper also modifies e' in place; here e' is modified when its own turn
  as e comes, which keeps rounds independent.)

  Args:
    x: [n, spec.dim] encoded training rows (n >= 2).
    spec: the feature layout.
    multiplier: number of rounds k.
    p: per-attribute swap probability.
    s: local variance parameter (larger = closer to the neighbour's value).
    seed: random seed.

  Returns:
    [multiplier * n, spec.dim] float32 rows, all valid (one hot per categorical block).
  """
  if len(x) < 2:
    raise ValueError(f"MUNGE needs at least 2 rows to find neighbours, got {len(x)}.")
  if not 0.0 <= p <= 1.0 or s <= 0:
    raise ValueError(f"MUNGE needs 0 <= p <= 1 and s > 0, got p={p}, s={s}.")
  rng = np.random.default_rng(seed)
  nn_index = neighbors.NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x, return_distance=False)
  # The first neighbour is the row itself unless a duplicate came first; take the other one.
  own = nn_index[:, 0] == np.arange(len(x))
  partner = x[np.where(own, nn_index[:, 1], nn_index[:, 0])]
  d = spec.num_numeric
  out = []
  for _ in range(multiplier):
    new = x.copy()
    swap = rng.uniform(size=(len(x), d)) < p
    sd = np.abs(x[:, :d] - partner[:, :d]) / s
    new[:, :d] = np.where(swap, rng.normal(partner[:, :d], sd), x[:, :d])
    for start, stop in spec.blocks():
      take = rng.uniform(size=(len(x), 1)) < p
      new[:, start:stop] = np.where(take, partner[:, start:stop], x[:, start:stop])
    out.append(new)
  return np.concatenate(out, axis=0).astype(np.float32)


def class_gmm(x: np.ndarray, y: np.ndarray, spec: tabular.TabularSpec, n: int,
              num_components: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Samples from a Gaussian mixture fitted per class (classes drawn at their training frequency).

  Full covariances with a small ridge; categorical blocks of the samples are projected to one-hot
  at their argmax (`tabular.project`).

  Args:
    x: [m, spec.dim] encoded rows; y: [m] int labels.
    spec: the feature layout.
    n: number of samples.
    num_components: mixture components per class (capped by the class size).
    seed: random seed.

  Returns:
    (samples [n, spec.dim] float32, their classes [n] int32).
  """
  rng = np.random.default_rng(seed)
  classes, counts = np.unique(y, return_counts=True)
  labels = rng.choice(classes, size=n, p=counts / counts.sum())
  out = np.zeros((n, x.shape[1]), np.float32)
  for c in classes:
    rows = x[y == c]
    k = int(min(num_components, max(1, len(rows) // 10)))
    gmm = mixture.GaussianMixture(k, covariance_type="full", reg_covar=1e-3,
                                  random_state=int(rng.integers(2**31))).fit(rows)
    num = int((labels == c).sum())
    if num:
      samples, _ = gmm.sample(num)
      out[labels == c] = samples[rng.permutation(num)]
  return tabular.project(out, spec), labels.astype(np.int32)


def gaussian_noise(x: np.ndarray, multiplier: int, sigma: float, seed: int = 0,
                   clip: tuple[float, float] | None = None) -> np.ndarray:
  """`multiplier` jittered copies x + N(0, sigma^2): [multiplier * n, ...] (optionally clipped)."""
  rng = np.random.default_rng(seed)
  out = np.concatenate([x + sigma * rng.normal(size=x.shape) for _ in range(multiplier)], axis=0)
  if clip is not None:
    out = np.clip(out, *clip)
  return out.astype(np.float32)


def mixup(x: np.ndarray, multiplier: int, alpha: float = 0.4, seed: int = 0) -> np.ndarray:
  """Mixup inputs (Zhang et al. 2018): lam * x_i + (1 - lam) * x_j, lam ~ Beta(alpha, alpha).

  Returns [multiplier * n, ...] float32; labels come from the teacher, not from mixing.
  """
  rng = np.random.default_rng(seed)
  n = len(x)
  i = rng.integers(0, n, size=multiplier * n)
  j = rng.integers(0, n, size=multiplier * n)
  lam = rng.beta(alpha, alpha, size=(multiplier * n,) + (1,) * (x.ndim - 1))
  return (lam * x[i] + (1 - lam) * x[j]).astype(np.float32)


def prototypes(x: np.ndarray, probs: np.ndarray, per_class: int, n: int) -> np.ndarray:
  """A "prototype" generator: the `per_class` rows the teacher is most sure of, per predicted class.

  Rows of `x` are grouped by the teacher's arg-max class; within each class the `per_class` rows with
  the highest probability of that class are kept, and the kept rows are repeated (in order) to `n`
  rows. It draws only confident, class-typical points: what an Inception-style score rewards, and
  what carries little information about the teacher's decision boundaries.

  Args:
    x: [m, ...] real points; probs: [m, K] the teacher's class probabilities of `x`.
    per_class: rows kept per predicted class (fewer if a class has fewer rows).
    n: number of rows returned.

  Returns:
    [n, ...] float32 rows, each a copy of a row of `x`.
  """
  if per_class < 1 or n < 1:
    raise ValueError(f"per_class and n must be >= 1, got {per_class} and {n}.")
  pred = np.argmax(probs, axis=1)
  keep = []
  for c in np.unique(pred):
    rows = np.flatnonzero(pred == c)
    keep.extend(rows[np.argsort(-probs[rows, c], kind="stable")[:per_class]])
  keep = np.asarray(keep)
  return x[np.resize(keep, n)].astype(np.float32)
