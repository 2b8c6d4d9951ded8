"""Task weights for alpha-MAML from a kernel MMD bound (Cai et al. 2020, arXiv 2003.09465).

The target risk is bounded by the alpha-weighted source risk plus the MMD between the target
distribution and the alpha-mixture of source distributions plus a complexity term. With an RKHS
the empirical objective is a convex quadratic program on the probability simplex (paper Sec. 4):

  min_alpha  alpha^T K alpha - 2 alpha^T kappa + lam * sum_i alpha_i^2 / n_i
  K_ij    = mean k(a, b) over a in S_i, b in S_j       (source-source kernel means)
  kappa_i = mean k(a, b) over a in S_i, b in S_T       (source-target kernel means)

`alpha^T K alpha - 2 alpha^T kappa + k_TT` is the squared (V-statistic) MMD between the mixture
and the target. The kernel acts on joint samples z = (x, y): when all tasks share the input
distribution, x alone carries no information about which task is which. Samples are
standardised per coordinate and the RBF bandwidth is set by the median heuristic, both from the
source pool (the target has too few samples to set a scale reliably).

The bandwidth (a multiple of the median heuristic) and lambda are free constants of the bound;
`select_by_source_cv` chooses both from the sources alone by leave-one-source-out
cross-validation. `kernel_means(..., unbiased=True)` gives the U-statistic K.

Source sets may have different sizes: they are stored padded, `z [num_sources, n_max, d]` with
a validity mask `[num_sources, n_max]`.
"""

import jax
import jax.numpy as jnp
import numpy as np

_EPS = 1e-12


def _check_finite(name: str, value) -> None:
  value = np.asarray(value)
  if not np.all(np.isfinite(value)):
    raise ValueError(f"{name} contains NaN or Inf; clean or drop those samples before computing "
                     "alpha-MAML task weights.")


def standardise(source_z: jax.Array, source_mask: jax.Array, target_z: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
  """Centres and scales every coordinate by the mean and std of the valid source samples.

  A coordinate with zero spread (e.g. identical sources) is only centred, never divided by 0.

  Args:
    source_z: [num_sources, n_max, d] joint samples.
    source_mask: [num_sources, n_max], 1 for a real sample.
    target_z: [n_target, d].

  Returns:
    (source_z, target_z) standardised, same shapes.
  """
  m = source_mask[..., None].astype(source_z.dtype)
  count = jnp.maximum(jnp.sum(m), 1.0)
  mean = jnp.sum(source_z * m, axis=(0, 1)) / count
  var = jnp.sum(jnp.square(source_z - mean) * m, axis=(0, 1)) / count
  std = jnp.sqrt(var)
  scale = jnp.where(std > 1e-8, std, 1.0)
  return (source_z - mean) / scale, (target_z - mean) / scale


def pairwise_sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  """Squared Euclidean distances, [n, d] x [m, d] -> [n, m] (clipped at 0 against round-off)."""
  d2 = (jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T)
  return jnp.maximum(d2, 0.0)


def median_bandwidth(z: jax.Array, mask: jax.Array) -> jax.Array:
  """Median heuristic: sigma^2 = median of squared distances between distinct valid samples.

  Falls back to 1 when that median is 0 (all samples identical, or a single sample).

  Args:
    z: [n, d] samples; mask: [n] validity.

  Returns:
    Scalar sigma^2 for k(a, b) = exp(-|a - b|^2 / (2 sigma^2)).
  """
  n = z.shape[0]
  d2 = pairwise_sq_dists(z, z)
  valid = (mask[:, None] * mask[None, :] > 0) & ~jnp.eye(n, dtype=bool)
  # Median over the valid pairs: push invalid entries to +inf and take the middle valid one.
  flat = jnp.sort(jnp.where(valid, d2, jnp.inf).ravel())
  num = jnp.sum(valid)
  lo = flat[jnp.maximum((num - 1) // 2, 0)]
  hi = flat[jnp.maximum(num // 2, 0)]
  med = jnp.where(num > 0, 0.5 * (lo + hi), 0.0)
  return jnp.where(med > 1e-12, med, 1.0)


def rbf(d2: jax.Array, sigma2: jax.Array) -> jax.Array:
  """RBF kernel from squared distances: exp(-d2 / (2 sigma^2))."""
  return jnp.exp(-d2 / (2.0 * sigma2))


def kernel_means(source_z: jax.Array, source_mask: jax.Array, target_z: jax.Array,
                 sigma2: jax.Array, unbiased: bool = False
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The QP's kernel means (already-standardised samples).

  Args:
    source_z: [N, n_max, d]; source_mask: [N, n_max]; target_z: [n_T, d]; sigma2: scalar.
    unbiased: drop the self-pairs a = b from K_ii (U-statistic, normaliser n_i (n_i - 1)), so
      alpha^T K alpha is unbiased for the population value at fixed alpha. The default keeps
      them (V-statistic): K_ii^V = K_ii^U + (1 - K_ii^U) / n_i, i.e. the V-statistic adds the
      expected squared error of each source's empirical mean embedding, a built-in ridge.
      A source with one sample keeps its V-statistic entry (no pair to average).

  Returns:
    K [N, N] with K_ij = mean_{a in S_i, b in S_j} k(a, b),
    kappa [N] with kappa_i = mean_{a in S_i, b in S_T} k(a, b),
    k_tt scalar = mean_{a, b in S_T} k(a, b) (V-statistic).
  """
  num_sources, n_max, d = source_z.shape
  flat = source_z.reshape(num_sources * n_max, d)
  w = source_mask.astype(source_z.dtype)
  w = w / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1.0)  # [N, n_max], rows sum to 1.
  # Block averages via the [N, N*n_max] averaging matrix: keeps memory O((N n_max)^2).
  avg = (jnp.eye(num_sources, dtype=w.dtype)[:, :, None] * w[None]).reshape(num_sources, -1)
  gram = rbf(pairwise_sq_dists(flat, flat), sigma2)
  big_k = avg @ gram @ avg.T
  if unbiased:  # k(a, a) = 1 for the RBF, so the self-pairs sum to n_i in block i.
    n = jnp.sum(source_mask.astype(source_z.dtype), axis=1)
    diag_u = (n * n * jnp.diag(big_k) - n) / jnp.maximum(n * (n - 1.0), 1.0)
    big_k = jnp.where(jnp.eye(num_sources, dtype=bool) & (n[:, None] > 1.5), jnp.diag(diag_u),
                      big_k)
  cross = rbf(pairwise_sq_dists(flat, target_z), sigma2)  # [N*n_max, n_T]
  kappa = (avg @ cross).mean(axis=1)
  k_tt = rbf(pairwise_sq_dists(target_z, target_z), sigma2).mean()
  return big_k, kappa, k_tt


def mmd_sq(alpha: jax.Array, big_k: jax.Array, kappa: jax.Array, k_tt: jax.Array) -> jax.Array:
  """Squared MMD between the alpha-mixture of sources and the target (V-statistic)."""
  return alpha @ big_k @ alpha - 2.0 * alpha @ kappa + k_tt


def project_simplex(v: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """Exact Euclidean projection onto {a >= 0, sum a = 1, a_i = 0 where mask_i = 0}.

  Sorting algorithm (Held, Wolfe & Crowder 1974; Duchi et al. 2008): with u the valid entries
  sorted in decreasing order, rho = max{j : u_j - (sum_{r<=j} u_r - 1) / j > 0},
  tau = (sum_{r<=rho} u_r - 1) / rho, and a = max(v - tau, 0).

  Args:
    v: [N]. mask: optional [N] (bool or 0/1); at least one entry must be valid.

  Returns:
    [N] point on the (masked) simplex.
  """
  n = v.shape[0]
  mask = jnp.ones((n,), bool) if mask is None else mask.astype(bool)
  # Invalid entries sort last and never enter the threshold.
  key = jnp.where(mask, v, -jnp.inf)
  order = jnp.argsort(-key)
  u = jnp.where(mask[order], v[order], 0.0)
  valid_sorted = mask[order]
  css = jnp.cumsum(u)
  j = jnp.arange(1, n + 1, dtype=v.dtype)
  cond = valid_sorted & (u - (css - 1.0) / j > 0)
  rho = jnp.max(jnp.where(cond, jnp.arange(n), 0))
  tau = (css[rho] - 1.0) / (rho + 1.0)
  return jnp.where(mask, jnp.maximum(v - tau, 0.0), 0.0)


def qp_objective(alpha: jax.Array, big_k: jax.Array, kappa: jax.Array, lam: float,
                 n_samples: jax.Array) -> jax.Array:
  """alpha^T K alpha - 2 alpha^T kappa + lam * sum_i alpha_i^2 / n_i (paper's weighted bound)."""
  return alpha @ big_k @ alpha - 2.0 * alpha @ kappa + lam * jnp.sum(jnp.square(alpha) / n_samples)


def solve_simplex_qp(big_k: jax.Array, kappa: jax.Array, lam: float, n_samples: jax.Array,
                     mask: jax.Array | None = None, num_iters: int = 3000) -> jax.Array:
  """Minimises `qp_objective` over the (masked) simplex by accelerated projected gradient.

  FISTA with step 1/L, L = 2 * lambda_max(K + lam diag(1/n)), each iterate exactly projected
  (`project_simplex`); starts from uniform weights on the valid sources. The objective is
  convex (K is a Gram matrix of kernel mean embeddings), so this converges to the optimum.

  Args:
    big_k: [N, N]; kappa: [N]; lam: complexity weight >= 0; n_samples: [N] set sizes;
    mask: optional [N] of sources allowed non-zero weight.

  Returns:
    alpha [N] on the simplex.
  """
  n = kappa.shape[0]
  mask = jnp.ones((n,), bool) if mask is None else mask.astype(bool)
  q = 0.5 * (big_k + big_k.T) + lam * jnp.diag(1.0 / n_samples)
  lip = 2.0 * jnp.maximum(jnp.linalg.eigvalsh(q)[-1], _EPS)
  grad = lambda a: 2.0 * (q @ a - kappa)
  x0 = jnp.where(mask, 1.0, 0.0) / jnp.sum(mask)

  def body(_, carry):
    x, y, t = carry
    x_new = project_simplex(y - grad(y) / lip, mask)
    t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t * t))
    y_new = x_new + ((t - 1.0) / t_new) * (x_new - x)
    return x_new, y_new, t_new

  x, _, _ = jax.lax.fori_loop(0, num_iters, body, (x0, x0, jnp.asarray(1.0, kappa.dtype)))
  return x


def _validate(source_x, source_y, source_mask, target_x, target_y, lam, allowed):
  """Checks shapes and values of `task_weights` inputs; raises ValueError saying how to fix."""
  if source_x.ndim != 3 or source_y.ndim != 3 or source_x.shape[:2] != source_y.shape[:2]:
    raise ValueError(f"Source samples must be [num_sources, n, d]; got x {source_x.shape} and y "
                     f"{source_y.shape}. Add a trailing feature axis to 1-d y.")
  if (target_x.ndim != 3 or target_y.ndim != 3 or target_x.shape[:2] != target_y.shape[:2]):
    raise ValueError(f"Target samples must be [n_T, d] (or [num_targets, n_T, d]) with matching "
                     f"n_T; got x {target_x.shape[1:]} and y {target_y.shape[1:]}.")
  if target_x.shape[1] < 1:
    raise ValueError("The target task has no labelled samples; alpha-MAML needs at least one "
                     "(x, y) pair from the target to weight the sources.")
  if target_x.shape[2] != source_x.shape[2] or target_y.shape[2] != source_y.shape[2]:
    raise ValueError(f"Target feature sizes (x {target_x.shape[2]}, y {target_y.shape[2]}) differ "
                     f"from the sources' (x {source_x.shape[2]}, y {source_y.shape[2]}).")
  if source_mask.shape != source_x.shape[:2]:
    raise ValueError(f"source_mask shape {source_mask.shape} must be {source_x.shape[:2]}.")
  n_samples = source_mask.sum(axis=1)
  if np.any(n_samples < 1):
    raise ValueError(f"Source task(s) {np.flatnonzero(n_samples < 1).tolist()} have no samples; "
                     "drop them before computing task weights.")
  if not lam >= 0:
    raise ValueError(f"lam={lam} must be >= 0 (it weighs the complexity term).")
  if not np.all(allowed.any(axis=-1)):
    raise ValueError("No source task is allowed to receive weight for some target; check the "
                     "`allowed` mask.")
  for name, arr in (("source_x", source_x), ("source_y", source_y), ("target_x", target_x),
                    ("target_y", target_y)):
    _check_finite(name, arr)


def task_weights(source_x: np.ndarray, source_y: np.ndarray, source_mask: np.ndarray,
                 target_x: np.ndarray, target_y: np.ndarray, lam: float,
                 allowed: np.ndarray | None = None, y_scale: float = 1.0,
                 bandwidth_scale: float = 1.0, num_iters: int = 3000,
                 max_median_points: int = 1000, unbiased: bool = False
                 ) -> dict[str, np.ndarray]:
  """alpha for one or many targets: standardise z = (x, y), median-heuristic RBF, kernel means, QP.

  Several targets (leading axis on target_x/target_y/allowed) share the source Gram matrix:
  the per-target work is vmapped, so XLA computes the source-only parts once.

  Args:
    source_x: [N, n_max, dx]; source_y: [N, n_max, dy]; source_mask: [N, n_max].
    target_x: [n_T, dx] or [num_targets, n_T, dx]; target_y: same with dy (n_T >= 1).
    lam: complexity weight (larger -> weights closer to proportional to n_i).
    allowed: optional [N] or [num_targets, N] bool, sources that may get weight (e.g. to leave
      out the target's own task).
    y_scale: multiplies the standardised y coordinates (1 = plain standardisation).
    bandwidth_scale: multiplies the median-heuristic sigma^2 (1 = the plain heuristic).
    num_iters: projected-gradient iterations of the QP solver.
    max_median_points: the median heuristic uses at most this many (evenly spaced) source samples.
    unbiased: U-statistic K (see `kernel_means`); the QP can then be non-convex for small lam
      (K^U + lam diag(1/n) need not be positive semi-definite) and the solver returns a
      stationary point.

  Returns:
    dict with alpha [(num_targets,) N], K [N, N], kappa [(num_targets,) N], k_tt, mmd_sq (at
    alpha) [(num_targets,)], sigma2 (scalar).
  """
  source_x, source_y = np.asarray(source_x, np.float32), np.asarray(source_y, np.float32)
  target_x, target_y = np.asarray(target_x, np.float32), np.asarray(target_y, np.float32)
  source_mask = np.asarray(source_mask, np.float32)
  single = target_x.ndim == 2
  if single:
    target_x, target_y = target_x[None], target_y[None]
  num_targets = target_x.shape[0]
  n = source_x.shape[0] if source_x.ndim == 3 else 0
  allowed = np.ones((n,), bool) if allowed is None else np.asarray(allowed, bool)
  allowed = np.broadcast_to(allowed, (num_targets, n)) if allowed.ndim == 1 else allowed
  if allowed.shape != (num_targets, n):
    raise ValueError(f"allowed has shape {allowed.shape}; expected [{n}] or [{num_targets}, {n}].")
  _validate(source_x, source_y, source_mask, target_x, target_y, lam, allowed)
  if not bandwidth_scale > 0:
    raise ValueError(f"bandwidth_scale={bandwidth_scale} must be > 0.")
  # The median heuristic on an evenly spaced subset of the valid source samples: O(m^2) instead
  # of O((N n)^2) memory and a sort of m^2 values.
  valid = np.flatnonzero(source_mask.reshape(-1) > 0)
  subset = valid[np.linspace(0, len(valid) - 1, min(len(valid), max_median_points)).astype(int)]
  out = _task_weights_jit(source_x, source_y, source_mask, target_x, target_y,
                          jnp.float32(lam), allowed, jnp.float32(y_scale),
                          jnp.float32(bandwidth_scale), jnp.asarray(subset), num_iters,
                          bool(unbiased))
  out = {k: np.asarray(v) for k, v in out.items()}
  if single:
    out = {k: (v[0] if k in ("alpha", "kappa", "k_tt", "mmd_sq") else v) for k, v in out.items()}
  return out


def _task_weights_impl(source_x, source_y, source_mask, target_x, target_y, lam, allowed,
                       y_scale, bandwidth_scale, median_subset, num_iters, unbiased):
  """Jitted body of `task_weights`; targets batched on the leading axis."""
  dx = source_x.shape[-1]
  sz = jnp.concatenate([source_x, source_y], -1)
  tz = jnp.concatenate([target_x, target_y], -1)  # [T, n_T, d]
  sz, tz = standardise(sz, source_mask, tz)
  scale = jnp.concatenate([jnp.ones((dx,)), jnp.full((sz.shape[-1] - dx,), y_scale)])
  sz, tz = sz * scale, tz * scale
  flat = sz.reshape(sz.shape[0] * sz.shape[1], -1)[median_subset]
  sigma2 = bandwidth_scale * median_bandwidth(flat, jnp.ones(flat.shape[:1]))
  n_samples = jnp.sum(source_mask, axis=1)

  def one(t_z, allow):
    big_k, kappa, k_tt = kernel_means(sz, source_mask, t_z, sigma2, unbiased)
    alpha = solve_simplex_qp(big_k, kappa, lam, n_samples, allow, num_iters)
    return dict(alpha=alpha, kappa=kappa, k_tt=k_tt, mmd_sq=mmd_sq(alpha, big_k, kappa, k_tt))

  out = jax.vmap(one)(tz, allowed)
  out["K"] = kernel_means(sz, source_mask, tz[0], sigma2, unbiased)[0]
  out["sigma2"] = sigma2
  return out


_task_weights_jit = jax.jit(_task_weights_impl, static_argnums=(10, 11))


def _krr_source_predictions(source_x: np.ndarray, source_y: np.ndarray, source_mask: np.ndarray,
                            x_scales=(0.03, 0.1, 0.3, 1.0), ridges=(1e-3, 1e-2, 1e-1)
                            ) -> np.ndarray:
  """Each source's own regression function, evaluated at every source input.

  Per source i, RBF kernel ridge regression of y on x (x standardised over the source pool).
  The x-bandwidth (a multiple of the median squared distance) and the ridge are shared by all
  sources and chosen by the pooled closed-form leave-one-out error, r / (1 - diag(H)).

  Returns:
    F [N, N, n_max, dy] with F[i, j, a] = f_i(x_{j, a}) (padding rows hold garbage).
  """
  num, n_max, dx = source_x.shape
  m = source_mask > 0
  flat = source_x[m].astype(np.float64)
  mu, sd = flat.mean(0), flat.std(0)
  sd = np.where(sd > 1e-8, sd, 1.0)
  xs = (source_x.astype(np.float64) - mu) / sd
  sub = flat[np.linspace(0, len(flat) - 1, min(len(flat), 500)).astype(int)]
  sub = (sub - mu) / sd
  d2 = np.sum((sub[:, None] - sub[None]) ** 2, -1)
  med = np.median(d2[~np.eye(len(sub), dtype=bool)]) if len(sub) > 1 else 1.0
  med = med if med > 1e-12 else 1.0
  sq = lambda a, b: np.sum((a[:, None] - b[None]) ** 2, -1)
  best, best_loo = None, np.inf
  for s in x_scales:
    for rho in ridges:
      loo = 0.0
      for i in range(num):
        xi, yi = xs[i, m[i]], source_y[i, m[i]].astype(np.float64)
        k = np.exp(-sq(xi, xi) / (2 * s * med))
        h = k @ np.linalg.inv(k + rho * len(xi) * np.eye(len(xi)))
        resid = (yi - h @ yi) / np.maximum(1.0 - np.diag(h), 1e-6)[:, None]
        loo += np.sum(resid ** 2)
      if loo < best_loo:
        best, best_loo = (s, rho), loo
  s, rho = best
  allx = xs.reshape(num * n_max, dx)
  out = np.zeros((num, num * n_max, source_y.shape[-1]))
  for i in range(num):
    xi, yi = xs[i, m[i]], source_y[i, m[i]].astype(np.float64)
    k = np.exp(-sq(xi, xi) / (2 * s * med))
    coef = np.linalg.solve(k + rho * len(xi) * np.eye(len(xi)), yi)
    out[i] = np.exp(-sq(allx, xi) / (2 * s * med)) @ coef
  return out.reshape(num, num, n_max, -1)


def select_by_source_cv(source_x: np.ndarray, source_y: np.ndarray, source_mask: np.ndarray,
                        k_shot: int, bandwidth_scales=(0.03, 0.1, 0.3, 1.0),
                        lams=(0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1e4), num_splits: int = 4,
                        seed: int = 0, **weight_kwargs) -> dict:
  """Chooses the kernel bandwidth and lambda by leave-one-source-out cross-validation.

  The paper's QP leaves two constants free: the RBF bandwidth and lambda. Both are chosen here
  from the source tasks alone (no target query data): each source j in turn plays the target,
  with `k_shot` random samples as its labelled set and the rest held out; alpha is computed over
  the other sources for every (bandwidth, lambda) on the grid, and scored by the held-out MSE of
  the alpha-weighted mixture of the sources' own regression functions, sum_i alpha_i f_i(x)
  (`_krr_source_predictions`). That mixture is what an alpha-weighted meta-learner predicts
  before adaptation when its inner step is small. Among the settings whose mean held-out MSE is
  within one standard error (paired over pseudo-targets) of the best, the one whose weights are
  closest to uniform (largest mean 1 / sum alpha^2) is taken: differences the held-out data
  cannot resolve do not justify discarding sources (the one-standard-error rule).

  Args:
    source_x, source_y, source_mask: as in `task_weights`.
    k_shot: labelled samples of a (pseudo-)target.
    bandwidth_scales, lams: the grid (multiples of the median-heuristic sigma^2; lambda values).
    num_splits: random support/held-out splits per source.
    seed: NumPy seed of the splits.
    **weight_kwargs: passed to `task_weights` (y_scale, num_iters, unbiased, ...).

  Returns:
    dict with bandwidth_scale, lam (the choice), cv_mse / cv_se / effective_sources
    [len(bandwidth_scales), len(lams)] and the best (lowest-MSE) setting.
  """
  source_x, source_y = np.asarray(source_x, np.float32), np.asarray(source_y, np.float32)
  source_mask = np.asarray(source_mask, np.float32)
  num = source_x.shape[0]
  sizes = source_mask.sum(1).astype(int)
  eligible = [j for j in range(num) if sizes[j] > k_shot]
  if num < 2 or not eligible:
    raise ValueError(f"Source cross-validation needs >= 2 sources and one with more than "
                     f"k_shot={k_shot} samples; set alpha.select='fixed' instead.")
  rng = np.random.default_rng(seed)
  pj, sup, held = [], [], []
  for _ in range(num_splits):
    for j in eligible:
      perm = rng.permutation(np.flatnonzero(source_mask[j] > 0))
      h = np.zeros(source_mask.shape[1], np.float32)
      h[perm[k_shot:]] = 1.0
      pj.append(j), sup.append(perm[:k_shot]), held.append(h)
  pj, sup, held = np.asarray(pj), np.stack(sup), np.stack(held)
  tx, ty = source_x[pj[:, None], sup], source_y[pj[:, None], sup]  # [P, k, d]
  allowed = np.ones((len(pj), num), bool)
  allowed[np.arange(len(pj)), pj] = False
  f = _krr_source_predictions(source_x, source_y, source_mask)[:, pj]  # [N, P, n_max, dy]
  y_held = source_y[pj]
  mse = np.zeros((len(bandwidth_scales), len(lams), len(pj)))
  neff = np.zeros((len(bandwidth_scales), len(lams)))
  for a, bw in enumerate(bandwidth_scales):
    for b, lam in enumerate(lams):
      alpha = task_weights(source_x, source_y, source_mask, tx, ty, lam, allowed=allowed,
                           bandwidth_scale=bw, **weight_kwargs)["alpha"]
      pred = np.einsum("pi,ipmd->pmd", alpha, f)
      err = np.sum((pred - y_held) ** 2, -1)
      mse[a, b] = np.sum(err * held, 1) / held.sum(1)
      neff[a, b] = np.mean(1.0 / np.sum(alpha ** 2, 1))
  mean = mse.mean(-1)
  ia, ib = np.unravel_index(np.argmin(mean), mean.shape)
  diff = mse - mse[ia, ib][None, None]
  se = diff.std(-1, ddof=1) / np.sqrt(len(pj)) if len(pj) > 1 else np.zeros_like(mean)
  ok = mean <= mean[ia, ib] + se
  score = np.where(ok, neff, -np.inf)
  ca, cb = np.unravel_index(np.argmax(score), score.shape)
  return dict(bandwidth_scale=float(bandwidth_scales[ca]), lam=float(lams[cb]), cv_mse=mean,
              cv_se=se, effective_sources=neff, best_bandwidth_scale=float(bandwidth_scales[ia]),
              best_lam=float(lams[ib]))
