"""Kong & Valiant's estimate of linear learnability in the sublinear data regime.

References: W. Kong and G. Valiant, "Estimating Learnability in the Sublinear Data Regime",
NeurIPS 2018 (arXiv 1805.01626), Sec. 2-3; used as the objective of Feature Gradients
(Sheth & Fusi, AISTATS 2020, arXiv 1908.10382, Sec. 3).

For rows x_i ~ (0, Sigma) and y_i = beta^T x_i + noise, let G = triu(X X^T, 1) (strictly upper
triangular). Every term of y^T G^k y is a chain
y_{i0} <x_{i0}, x_{i1}> ... <x_{i(k-1)}, x_{ik}> y_{ik} over k + 1 distinct indices
i0 < ... < ik, whose expectation is beta^T Sigma^(k+1) beta, so

  m_k = y^T G^k y / C(n, k + 1)                                           (KV eq. 3)

is an unbiased estimate of beta^T Sigma^(k+1) beta, k = 1..K. With features scaled so that the
covariance's top eigenvalue is at most 1, a polynomial p(l) = sum_k c_k l^(k+1) close to l on [0, 1]
turns the moments into an estimate of the explained variance beta^T Sigma beta = sum_k c_k m_k
(KV Sec. 3, "polynomial approximation"); the coefficients come from a minimax linear programme.

Products with G are formed by cumulative sums in O(B D) (never the B x B matrix), and each product
carries its own share of the binomial normaliser, so nothing overflows float32 for large B or K.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize
import scipy.sparse.linalg

MAX_ORDER = 12


def triu_matvec(x: jax.Array, u: jax.Array, weights: jax.Array | None = None) -> jax.Array:
  """triu(X diag(w) (X diag(w))^T, 1) @ u in O(B D) time and memory.

  (G u)_i = <x_i w, sum_{j > i} x_j w u_j>: the inner sum is a reversed, exclusive cumulative sum.

  Args:
    x: [B, D] rows of the mini-batch.
    u: [B] vector.
    weights: optional [D] feature weights w (the relaxed subset s of Feature Gradients).

  Returns:
    [B] the product.
  """
  xw = x if weights is None else x * weights[None, :]
  rows = xw * u[:, None]                                      # [B, D]
  suffix = jnp.cumsum(rows[::-1], axis=0)[::-1]               # sum_{j >= i}
  suffix = jnp.concatenate([suffix[1:], jnp.zeros_like(suffix[:1])], axis=0)  # sum_{j > i}
  return jnp.sum(xw * suffix, axis=-1)


def moments(x: jax.Array, y: jax.Array, order: int,
            weights: jax.Array | None = None) -> jax.Array:
  """Normalised moments m_k = y^T G^k y / C(B, k+1), k = 1..order (KV eq. 3).

  The normaliser 1 / C(B, k+1) = (1/B) prod_{t=1..k} (t+1)/(B-t) is applied one factor per product,
  so the running vector G^t y / (...) stays O(1) and float32 never overflows (C(10^4, 13) ~ 1e42).

  Args:
    x: [B, D] mini-batch (standardised, top covariance eigenvalue <= 1).
    y: [B] standardised target.
    order: K >= 1, with B >= K + 1.
    weights: optional [D] feature weights.

  Returns:
    [order] unbiased estimates of beta^T Sigma_w^(k+1) beta, Sigma_w = diag(w) Sigma diag(w).
  """
  b = x.shape[0]
  if not 1 <= order <= MAX_ORDER:
    raise ValueError(f"order must be in 1..{MAX_ORDER}, got {order}.")
  if b < order + 1:
    raise ValueError(f"A mini-batch of {b} rows cannot estimate moments of order {order}: it needs "
                     f"at least order + 1 = {order + 1} rows. Use a larger batch or a lower order.")
  v = y
  out = []
  for k in range(1, order + 1):
    v = triu_matvec(x, v, weights) * ((k + 1) / (b - k))
    out.append(jnp.dot(y, v) / b)
  return jnp.stack(out)


@functools.lru_cache(maxsize=None)
def _minimax_lp(order: int, num_grid: int) -> tuple[tuple[float, ...], float]:
  lam = np.linspace(0.0, 1.0, num_grid)
  powers = lam[:, None] ** np.arange(2, order + 2)[None, :]  # [G, K]
  ones = np.ones((num_grid, 1))
  # Variables (c_1..c_K, t): minimise t s.t. |lam - P c| <= t on the grid.
  a_ub = np.block([[-powers, -ones], [powers, -ones]])
  b_ub = np.concatenate([-lam, lam])
  cost = np.zeros(order + 1)
  cost[-1] = 1.0
  res = scipy.optimize.linprog(cost, A_ub=a_ub, b_ub=b_ub,
                               bounds=[(None, None)] * order + [(0, None)], method="highs")
  if res.status != 0:
    raise RuntimeError(f"Minimax LP for order {order} failed: {res.message}")
  return tuple(float(c) for c in res.x[:order]), float(res.x[-1])


def minimax_coefficients(order: int, num_grid: int = 2001) -> tuple[np.ndarray, float]:
  """Coefficients c_k of p(l) = sum_{k=1..K} c_k l^(k+1) minimising max_{l in [0,1]} |l - p(l)|.

  Solved as a linear programme on a uniform grid (KV Sec. 3). Host-side, cached.

  Args:
    order: K in 1..12.
    num_grid: grid points on [0, 1].

  Returns:
    ([K] coefficients, the minimax error on the grid).
  """
  if not 1 <= order <= MAX_ORDER:
    raise ValueError(f"order must be in 1..{MAX_ORDER}, got {order}.")
  coeffs, err = _minimax_lp(int(order), int(num_grid))
  return np.asarray(coeffs), err


def column_explained_variance(x: jax.Array, y: jax.Array, coeffs: jax.Array,
                              weights: jax.Array | None = None) -> jax.Array:
  """Estimated fraction of each target column's variance a linear model on X diag(w) explains.

  Args:
    x: [B, D] standardised features (top covariance eigenvalue <= 1).
    y: [B] or [B, C] targets with unit variance.
    coeffs: [K] from `minimax_coefficients(K)`.
    weights: optional [D] feature weights in [0, 1].

  Returns:
    [C] estimates sum_k c_k m_k of beta_c^T Sigma beta_c / Var(y_c) (C = 1 for 1-D y).
  """
  order = coeffs.shape[0]
  coeffs = jnp.asarray(coeffs, x.dtype)
  one = lambda col: jnp.dot(coeffs, moments(x, col, order, weights))
  return jax.vmap(one, in_axes=1)(y[:, None] if y.ndim == 1 else y)


def explained_variance(x: jax.Array, y: jax.Array, coeffs: jax.Array,
                       weights: jax.Array | None = None) -> jax.Array:
  """Scalar mean of `column_explained_variance` over the columns (one-vs-rest classes averaged)."""
  return jnp.mean(column_explained_variance(x, y, coeffs, weights))


def linear_classification_error(ev: jax.Array, leak: float = 0.01) -> jax.Array:
  """Error of the best linear classifier of a binary (one-vs-rest) target from its explained
  variance: (1 - sqrt(EV)) / 2 on [0, 1], the binary-label form of the learnability objective in
  the authors' released Feature Gradients code.

  The estimate of EV is unbiased but noisy and can fall outside [0, 1] (below 0 for a small
  mini-batch, above 1 for a large subset); there the error is flat, so a slope `leak` towards the
  interval (|EV - clip(EV)| * leak) keeps a gradient, and sqrt is floored at 1e-6 so its
  derivative stays finite at 0.

  Args:
    ev: [...] explained-variance estimates.
    leak: slope outside [0, 1].

  Returns:
    [...] errors in [0, 0.5] on [0, 1] (plus the leak term outside).
  """
  clipped = jnp.clip(ev, 0.0, 1.0)
  return 0.5 * (1.0 - jnp.sqrt(jnp.maximum(clipped, 1e-6))) + leak * jnp.abs(ev - clipped)


def top_eigenvalue(x: np.ndarray) -> float:
  """Largest eigenvalue of the sample covariance X^T X / N of centred [N, D] data (Lanczos)."""
  n, d = x.shape
  if min(n, d) <= 256:
    gram = x.T @ x if d <= n else x @ x.T
    return float(np.linalg.eigvalsh(gram.astype(np.float64))[-1] / n)
  if d <= n:
    op = scipy.sparse.linalg.LinearOperator((d, d), matvec=lambda v: x.T @ (x @ v), dtype=x.dtype)
  else:
    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=lambda v: x @ (x.T @ v), dtype=x.dtype)
  val = scipy.sparse.linalg.eigsh(op, k=1, which="LA", tol=1e-6,
                                  v0=np.ones(op.shape[0], x.dtype), return_eigenvectors=False)
  return float(val[0] / n)


def prepare_features(x) -> tuple[np.ndarray, dict[str, np.ndarray | float]]:
  """Standardises columns and scales so the sample covariance's top eigenvalue is 1 (host).

  Args:
    x: [N, D] array-like.

  Returns:
    ([N, D] float32 features, {"mean": [D], "scale": [D]}) with x_out = (x - mean) / scale.

  Raises:
    ValueError: N < 2, NaN/inf entries or constant columns (the message names them and the fix).
  """
  x = np.asarray(x, dtype=np.float64)
  if x.ndim != 2:
    raise ValueError(f"X must be a 2-D [num_samples, num_features] array, got shape {x.shape}.")
  n, _ = x.shape
  if n < 2:
    raise ValueError(f"Need at least 2 samples to estimate learnability, got n_samples={n}.")
  bad = np.flatnonzero(~np.all(np.isfinite(x), axis=0))
  if bad.size:
    raise ValueError(f"X has NaN or infinite values in {bad.size} column(s), e.g. "
                     f"{bad[:5].tolist()}. Impute them first (e.g. "
                     "sklearn.impute.SimpleImputer in a Pipeline).")
  mean = x.mean(0)
  std = x.std(0)
  const = np.flatnonzero(std <= 1e-12 * np.maximum(1.0, np.abs(mean)))
  if const.size:
    raise ValueError(f"X has {const.size} constant column(s), e.g. {const[:5].tolist()}; they "
                     "carry no information and cannot be standardised. Drop them first (e.g. "
                     "sklearn.feature_selection.VarianceThreshold before this step).")
  z = ((x - mean) / std).astype(np.float32)
  lam = top_eigenvalue(z)
  scale = std * np.sqrt(lam)
  return (z / np.float32(np.sqrt(lam))).astype(np.float32), {"mean": mean, "scale": scale}


def prepare_targets(y, task: str) -> np.ndarray:
  """Unit-variance targets: [N, 1] for regression / binary labels, [N, C] one-vs-rest otherwise.

  Args:
    y: [N] targets (numbers for "regression", any labels for "classification").
    task: "regression" or "classification".

  Raises:
    ValueError: N < 2, NaN targets, a constant target or a single class.
  """
  y = np.asarray(y)
  if y.ndim != 1:
    raise ValueError(f"y must be 1-D [num_samples], got shape {y.shape}.")
  if y.shape[0] < 2:
    raise ValueError("Need at least 2 samples to estimate learnability, got "
                     f"n_samples={y.shape[0]}.")
  if task == "classification":
    classes = np.unique(y)
    if classes.size < 2:
      raise ValueError(f"y has a single class ({classes.tolist()}); feature selection for "
                       "classification needs at least two classes.")
    cols = classes[1:] if classes.size == 2 else classes
    t = np.stack([(y == c).astype(np.float64) for c in cols], axis=1)
  elif task == "regression":
    t = y.astype(np.float64)[:, None]
    if not np.all(np.isfinite(t)):
      raise ValueError("y has NaN or infinite values; drop or impute those samples first.")
    if t.std() == 0:
      raise ValueError("y is constant; there is no variance to explain.")
  else:
    raise ValueError(f"task must be 'regression' or 'classification', got {task!r}.")
  t = (t - t.mean(0)) / t.std(0)
  return t.astype(np.float32)
