"""Influence-guided data subsampling (Raj, Musco, Mackey & Fusi 2020, arXiv 2010.10218).

For a model fit on a small uniform pilot sample (theta_0, curvature H of the pilot objective), the
influence of a point z on the parameters is  I(z) = -H^{-1} grad loss(z; theta_0)  (Koh & Liang
2017, Eq. 2). The paper samples each point with probability proportional to the size of its
influence in the Hessian metric,

  s(z) = ||I(z)||_H = sqrt(g_z^T H^{-1} g_z),                                 (paper Eq. 4)

mixed with uniform for robustness,  p_i = (1 - alpha) s_i / sum_j s_j + alpha / N  (Eq. 5),
draws m points i.i.d. from p, and refits with inverse-probability weights w_j = 1/(m N p_j)
(Eq. 6), an unbiased estimate of the full-data risk. A greedy variant adds, round by round, the
points whose first-order influence most reduces the validation loss,
  d L_val / d eps_i = -grad L_val^T H^{-1} g_i,                               (Koh & Liang Eq. 3)
with an epsilon-greedy guard (each slot is a uniform draw with probability epsilon).

Numerics: per-example gradients by `vmap(grad)`, Hessian- and Gauss-Newton-vector products by
forward-over-reverse differentiation, conjugate gradients for H^{-1} v, and Cholesky solves of the
dense curvature for small models. Baselines: uniform subsampling and (statistical) leverage-score
sampling. The numerical functions are pure and jittable; `subsample_fit` is the host-side driver
that draws the samples (NumPy generator) and runs the jitted, vmapped stages (`fit_batch`,
influence probabilities, greedy gains) for a batch of (L2 strength, seed) pairs, compiling each
stage once per shape through a `StageRunner` that also times compile and run separately.
"""

import dataclasses
import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jax.flatten_util import ravel_pytree
from jax.scipy.linalg import solve_triangular

from metanas.selection import influence_models as im

METHODS = ("uniform", "leverage", "influence", "greedy")
SOLVERS = ("exact", "cg")
CURVATURES = ("hessian", "gauss_newton")
SAMPLINGS = ("iid", "pps")
REFIT_FROM = ("pilot", "init")

# ---------------------------------------------------------------------------------------------
# Per-example gradients and curvature.


def per_example_grads(loss_fn: Callable, params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Flattened per-example gradients [n, P] of `loss_fn(params, x_i, y_i)` by `vmap(grad)`."""
  grads = jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))(params, x, y)
  return jax.vmap(lambda g: ravel_pytree(g)[0])(grads)


def hvp(fun: Callable[[jax.Array], jax.Array], theta: jax.Array, v: jax.Array) -> jax.Array:
  """Hessian-vector product  (d^2 fun / d theta^2) v  by forward-over-reverse (no P x P matrix)."""
  return jax.jvp(jax.grad(fun), (theta,), (v,))[1]


def _logit_hessian_vp(f: jax.Array, u: jax.Array) -> jax.Array:
  """(d^2 loss / d f^2) u per example for cross-entropy; f, u: [n, k]."""
  if f.shape[-1] == 1:
    s = jax.nn.sigmoid(f)
    return s * (1 - s) * u
  p = jax.nn.softmax(f, axis=-1)
  return p * u - p * jnp.sum(p * u, axis=-1, keepdims=True)


def gnvp(logit_fn: Callable[[jax.Array], jax.Array], w: jax.Array, l2: jax.Array,
         theta: jax.Array, v: jax.Array) -> jax.Array:
  """Generalised Gauss-Newton-vector product (J^T diag(w) A J + l2 I) v; PSD, equals the Hessian
  for linear models. `logit_fn(theta)` -> logits [n, k]; `w` example weights [n]."""
  f, jv = jax.jvp(logit_fn, (theta,), (v,))
  _, vjp = jax.vjp(logit_fn, theta)
  return vjp(w[:, None] * _logit_hessian_vp(f, jv))[0] + l2 * v


def dense_gauss_newton(example_logit_fn: Callable[[jax.Array, jax.Array], jax.Array],
                       x: jax.Array, w: jax.Array, l2: jax.Array, theta: jax.Array) -> jax.Array:
  """Dense GGN [P, P] = sum_i w_i J_i^T A_i J_i + l2 I, with J_i = d logits(x_i) / d theta.

  `example_logit_fn(theta, x_i)` -> logits [k] of one row; its Jacobians are taken per example with
  `vmap(jacrev)` (O(n k P), unlike the O(n^2 k P) Jacobian of the batched logits).
  """
  f = jax.vmap(example_logit_fn, in_axes=(None, 0))(theta, x)  # [n, k]
  jac = jax.vmap(jax.jacrev(example_logit_fn), in_axes=(None, 0))(theta, x)  # [n, k, P]
  a_jac = jax.vmap(jax.vmap(lambda u, fi: _logit_hessian_vp(fi[None], u[None])[0],
                            in_axes=(1, None), out_axes=1))(jac, f)  # A_i J_i, [n, k, P]
  return jnp.einsum("n,nkp,nkq->pq", w, jac, a_jac) + l2 * jnp.eye(theta.shape[0])


def conjugate_gradient(matvec: Callable[[jax.Array], jax.Array], b: jax.Array, max_iters: int = 100,
                       tol: float = 1e-6) -> jax.Array:
  """Solves A x = b for symmetric positive definite A given only `matvec` (Hestenes-Stiefel CG).

  Stops after `max_iters` or when ||r|| <= tol ||b||. Jittable and vmappable.
  """
  b_norm = jnp.linalg.norm(b)

  def cond(state):
    _, r, _, rs, k = state
    return (k < max_iters) & (jnp.sqrt(rs) > tol * b_norm)

  def body(state):
    x, r, d, rs, k = state
    ad = matvec(d)
    alpha = rs / jnp.maximum(d @ ad, 1e-30)
    x = x + alpha * d
    r = r - alpha * ad
    rs_new = r @ r
    d = r + (rs_new / jnp.maximum(rs, 1e-30)) * d
    return x, r, d, rs_new, k + 1

  x0 = jnp.zeros_like(b)
  x, *_ = jax.lax.while_loop(cond, body, (x0, b, b, b @ b, 0))
  return x


def cholesky_solve(h: jax.Array, b: jax.Array) -> jax.Array:
  """Exact H^{-1} b for SPD `h` [P, P] and `b` [P] or [P, r]."""
  c = jnp.linalg.cholesky(h)
  return solve_triangular(c.T, solve_triangular(c, b, lower=True), lower=False)


def influence_on_params(h: jax.Array, grads: jax.Array) -> jax.Array:
  """I(z_i) = -H^{-1} g_i for grads [n, P] -> [n, P]: the first-order parameter change from
  upweighting z_i by eps in the training objective is eps * I(z_i) (Koh & Liang Eq. 2)."""
  return -cholesky_solve(h, grads.T).T


def hessian_norm_scores(h: jax.Array, grads: jax.Array) -> jax.Array:
  """s_i = sqrt(g_i^T H^{-1} g_i) = ||I(z_i)||_H for grads [n, P] (paper Eq. 4), via Cholesky."""
  z = solve_triangular(jnp.linalg.cholesky(h), grads.T, lower=True)
  return jnp.sqrt(jnp.sum(z * z, axis=0))


def hessian_norm_scores_cg(matvec: Callable, grads: jax.Array, max_iters: int = 100,
                           tol: float = 1e-6) -> jax.Array:
  """Matrix-free version of `hessian_norm_scores`: one CG solve per row of `grads` [n, P]."""
  sol = jax.vmap(lambda g: conjugate_gradient(matvec, g, max_iters, tol))(grads)
  return jnp.sqrt(jnp.maximum(jnp.sum(sol * grads, axis=1), 0.0))


# ---------------------------------------------------------------------------------------------
# Sampling probabilities and weights.


def mix_with_uniform(scores: jax.Array, alpha: float) -> jax.Array:
  """p_i = (1 - alpha) s_i / sum s + alpha / N (paper Eq. 5); uniform if all scores vanish.

  Non-finite scores (e.g. from a failed factorisation) count as zero, so the draw degrades towards
  uniform rather than producing NaN probabilities.

  Args:
    scores: nonnegative scores [N].
    alpha: weight of the uniform component in [0, 1]; alpha > 0 bounds every inverse weight
      1/(N p_i) by 1/alpha.

  Returns:
    Probabilities [N] summing to one.
  """
  if not 0.0 <= alpha <= 1.0:
    raise ValueError(f"mix (alpha) must be in [0, 1], got {alpha}; 0 = pure score sampling, "
                     "1 = uniform.")
  n = scores.shape[0]
  scores = jnp.where(jnp.isfinite(scores), jnp.maximum(scores, 0.0), 0.0)
  total = jnp.sum(scores)
  normed = jnp.where(total > 0, scores / jnp.where(total > 0, total, 1.0), 1.0 / n)
  return (1.0 - alpha) * normed + alpha / n


def ipw_weights(probs: jax.Array, idx: jax.Array) -> jax.Array:
  """Horvitz-Thompson weights w_j = 1/(m N p_{idx_j}) for m i.i.d. draws `idx` from `probs` [N].

  sum_j w_j loss_{idx_j} is then an unbiased estimate of the full-data mean loss (paper Eq. 6);
  with uniform probs every weight is 1/m, i.e. the plain mean over the sample.
  """
  n, m = probs.shape[0], idx.shape[0]
  return 1.0 / (m * n * probs[idx])


def mixture_weights(probs: np.ndarray, idx: np.ndarray, pilot_size: int) -> np.ndarray:
  """IPW weights when the first `pilot_size` of the m rows are a uniform pilot that is kept.

  The m rows are then draws from two designs: pilot_size uniform draws and m - pilot_size draws
  from `probs`. Weighting every row by the pooled ("balance heuristic") density
    q_i = (pilot_size / m) / N + ((m - pilot_size) / m) p_i,   w_j = 1 / (m N q_{idx_j}),
  keeps sum_j w_j loss_{idx_j} unbiased for the full-data mean loss (multiple importance sampling,
  treating the pilot's draws without replacement as i.i.d., a negligible difference for m << N),
  and bounds every weight by m / pilot_size times the uniform weight 1/m.

  Args:
    probs: sampling probabilities [B, N] (rows sum to one).
    idx: rows [B, m]; the first `pilot_size` columns are the pilot.
    pilot_size: number of pilot rows (0 < pilot_size < m).

  Returns:
    Weights [B, m] float32.
  """
  probs = np.asarray(probs, np.float64)
  n, m = probs.shape[1], idx.shape[1]
  if not 0 < pilot_size < m:
    raise ValueError(f"mixture_weights needs 0 < pilot_size < m, got {pilot_size} and m={m}.")
  q = (pilot_size / m) / n + ((m - pilot_size) / m) * probs
  return (1.0 / (m * n * np.take_along_axis(q, idx, axis=1))).astype(np.float32)


def capped_inclusion(probs: np.ndarray, k: int) -> np.ndarray:
  """Inclusion probabilities pi_i = min(1, c p_i) with c chosen so that sum_i pi_i = k (host NumPy).

  The standard "take-all" capping of probability-proportional-to-size sampling without
  replacement: rows whose share would exceed one are included with certainty and the rest of the
  budget is spread over the others in proportion to `probs` (iterated until no new row caps).

  Args:
    probs: nonnegative sampling weights [n] (need not sum to one; at least k of them positive).
    k: sample size, 0 <= k <= n.

  Returns:
    pi [n] in [0, 1] with sum k.
  """
  p = np.maximum(np.asarray(probs, np.float64), 0.0)
  n = p.shape[0]
  if not 0 <= k <= n:
    raise ValueError(f"Sample size k={k} must be in [0, {n}] (the number of candidate rows).")
  if np.count_nonzero(p) < k:
    raise ValueError(f"Only {np.count_nonzero(p)} rows have positive probability but k={k} are "
                     "needed; mix the scores with uniform (mix > 0).")
  pi = np.zeros(n)
  capped = np.zeros(n, bool)
  for _ in range(n + 1):
    rest = k - capped.sum()
    free = ~capped
    total = p[free].sum()
    pi[free] = rest * p[free] / total if total > 0 else 0.0
    pi[capped] = 1.0
    over = free & (pi > 1.0)
    if not over.any():
      break
    capped |= over
  return np.clip(pi, 0.0, 1.0)


def systematic_pps(rng: np.random.Generator, pi: np.ndarray) -> np.ndarray:
  """Exactly k = round(sum pi) distinct rows, row i included with probability pi_i [n] (NumPy).

  Systematic sampling on a random order (Madow 1949): lay the rows' pi_i end to end on [0, k) in
  a random permutation and take the rows that contain the points u, u + 1, ..., u + k - 1 with
  u ~ U[0, 1). Each interval has length pi_i <= 1, so it holds at most one point (no duplicates)
  and holds one with probability exactly pi_i; rows with pi_i = 1 are always taken.
  """
  pi = np.asarray(pi, np.float64)
  k = int(round(pi.sum()))
  order = rng.permutation(pi.shape[0])
  cum = np.cumsum(pi[order])
  cum *= k / cum[-1]  # Removes float drift so the last point u + k - 1 < cum[-1].
  points = rng.uniform() + np.arange(k)
  pos = np.minimum(np.searchsorted(cum, points, side="right"), pi.shape[0] - 1)
  return order[pos].astype(np.int32)


def pps_with_pilot(rng: np.random.Generator, probs: np.ndarray, pilot: np.ndarray,
                   m: int) -> tuple[np.ndarray, np.ndarray]:
  """Keeps a uniform pilot and adds m - n0 distinct rows by PPS sampling without replacement.

  The new rows are drawn from the rows outside the pilot with inclusion probabilities
  pi = capped_inclusion(probs, m - n0) (systematic PPS), so all m rows are distinct: no label is
  spent twice (i.i.d. draws from uneven probabilities repeat rows; e.g. 15% of 2000 draws on the
  heavy-tailed design). Horvitz-Thompson weights use each row's inclusion probability in the
  union of the two designs, q_i = n0/N + (1 - n0/N) pi_i (the pilot is a simple random sample,
  inclusion n0/N), w_i = 1 / (N q_i): sum_i w_i loss_i is unbiased for the full-data mean loss up
  to the dependence of pi on the pilot (ignored, as in `mixture_weights`); with uniform probs every
  weight is 1/m; every weight is at most 1/n0 = (m/n0) x uniform.

  Args:
    rng: host generator.
    probs: sampling probabilities [B, N] (e.g. mixed influence scores).
    pilot: pilot rows [B, n0] (distinct within a row).
    m: total rows (pilot included), n0 < m <= N.

  Returns:
    idx [B, m] int32 (the pilot first), w [B, m] float32.
  """
  probs = np.asarray(probs, np.float64)
  b, n = probs.shape
  n0 = pilot.shape[1]
  if not 0 < n0 < m <= n:
    raise ValueError(f"pps_with_pilot needs 0 < pilot size < m <= N, got {n0}, {m}, {n}.")
  idx = np.zeros((b, m), np.int32)
  w = np.zeros((b, m), np.float32)
  for j in range(b):
    rest = np.setdiff1d(np.arange(n), pilot[j])
    pi = np.zeros(n)
    pi[rest] = capped_inclusion(probs[j, rest], m - n0)
    # Pilot rows get the pi they would have had outside the pilot (same constant c), for q.
    free = rest[(pi[rest] < 1) & (probs[j, rest] > 0)]
    scale = np.median(pi[free] / probs[j, free]) if free.size else 0.0
    pi[pilot[j]] = np.minimum(1.0, scale * probs[j, pilot[j]])
    new = rest[systematic_pps(rng, pi[rest])]
    idx[j] = np.concatenate([pilot[j], new])
    q = n0 / n + (1.0 - n0 / n) * pi[idx[j]]
    w[j] = 1.0 / (n * q)
  return idx, w


def score_unevenness(scores: np.ndarray, mix: float = 0.3) -> dict[str, float]:
  """How uneven nonnegative sampling scores [N] are (host NumPy).

  Returns:
    top1 / top10: share of the total score held by the top 1% / 10% of rows (0.01 / 0.1 if even);
    max_over_mean: largest score over the mean;
    ess: effective sample size per draw of the IPW estimate, 1 / sum_i 1 / (N^2 p_i), for
      p = mix_with_uniform(scores, mix) (1 if uniform, smaller the more the weights vary);
    var_ratio: (mean s)^2 / mean(s^2), the smallest possible ratio of the first-order parameter
      variance E||theta_sub - theta_full||_H^2 under sampling p ~ s to that under uniform sampling
      (p ~ s is the minimiser for Hessian-metric scores s; 1 if even). 1 - var_ratio is the most
      that influence sampling can save, before pilot error and mixing with uniform.
  """
  s = np.sort(np.maximum(np.asarray(scores, np.float64), 0.0))[::-1]
  n, total = s.shape[0], s.sum()
  if total <= 0:
    return dict(top1=0.01, top10=0.1, max_over_mean=1.0, ess=1.0, var_ratio=1.0)
  p = (1.0 - mix) * s / total + mix / n
  return dict(top1=float(s[:max(1, n // 100)].sum() / total),
              top10=float(s[:max(1, n // 10)].sum() / total),
              max_over_mean=float(s[0] / s.mean()), ess=float(1.0 / np.sum(1.0 / (n * n * p))),
              var_ratio=float(s.mean() ** 2 / np.mean(s * s)))


def leverage_scores(x: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
  """Statistical leverage h_ii of [x, 1] (host NumPy): diag of X (X^T X + r I)^{-1} X^T.

  The small ridge (relative to the mean eigenvalue) keeps rank-deficient designs (one-hot columns)
  well defined; the leverages sum to about the rank.
  """
  xb = np.concatenate([np.asarray(x, np.float64), np.ones((x.shape[0], 1))], axis=1)
  gram = xb.T @ xb
  gram += ridge * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
  z = scipy.linalg.solve_triangular(np.linalg.cholesky(gram), xb.T, lower=True)
  return np.sum(z * z, axis=0)


# ---------------------------------------------------------------------------------------------
# Subsample-and-refit pipelines, batched over B (candidate L2, seed) pairs.


@dataclasses.dataclass(frozen=True)
class SubsampleConfig:
  """How one candidate's subsample is drawn (all fields static under jit).

  Attributes:
    method: one of METHODS.
    m: subsample size of the final fit.
    pilot_size: uniform pilot sample size (influence / greedy), drawn besides the m points for
      "influence" and as the first points of the m for "greedy".
    mix: uniform mixing weight alpha in Eq. 5 (influence, leverage).
    solver: "exact" (dense curvature + Cholesky) or "cg" (matrix-free CG) for the influence scores.
    curvature: "hessian" or "gauss_newton" (PSD; equal to the Hessian for linear models).
    damping: added to the curvature diagonal (beyond l2) before solving.
    cg_iters, cg_tol: CG settings (scores with solver="cg", and the greedy s_test solve).
    greedy_rounds: rounds of the greedy variant.
    epsilon: probability that a greedy slot takes a uniform random point instead.
    chunk: pool rows per block when computing scores (bounds the [chunk, P] gradient memory).
    reuse_pilot: influence only. False: the pilot points are extra labels and the final fit uses m
      fresh draws from the scores (the first implementation). True: the pilot counts against the
      budget m (same number of labelled points as uniform) and is kept in the final fit, with
      m - pilot_size draws from the scores and `mixture_weights`.
    self_normalize: divide the IPW weights (influence, leverage) by their sum (Hajek estimator).
      Horvitz-Thompson weights sum to 1 only on average, so the data term's total weight, and with
      it the effective L2 strength l2 / sum(w), would vary from draw to draw; normalising fixes the
      regularisation to that of the uniform fit and lowers the variance (slightly biased, O(1/m)).
    sampling: influence with reuse_pilot only. "iid": m - pilot_size draws with replacement from
      the scores (`mixture_weights`); "pps": m - pilot_size distinct non-pilot rows by systematic
      PPS sampling without replacement with capped inclusion probabilities (`pps_with_pilot`).
    refit_from: influence only. "pilot": the final fit starts at the pilot fit (the first
      implementation); "init": from the same start as every other fit (`params0`), so that an MLP
      candidate trained for a fixed number of Adam steps is the same training procedure on the
      subsample as on the full data (a warm start gives it extra steps and changes its ranking).
  """
  method: str = "influence"
  m: int = 500
  pilot_size: int = 125
  mix: float = 0.3
  solver: str = "exact"
  curvature: str = "hessian"
  damping: float = 1e-6
  cg_iters: int = 100
  cg_tol: float = 1e-6
  greedy_rounds: int = 4
  epsilon: float = 0.2
  chunk: int = 2048
  reuse_pilot: bool = False
  self_normalize: bool = False
  sampling: str = "iid"
  refit_from: str = "pilot"

  def __post_init__(self):
    if self.sampling not in SAMPLINGS:
      raise ValueError(f"Unknown sampling {self.sampling!r}; choose one of {SAMPLINGS}.")
    if self.refit_from not in REFIT_FROM:
      raise ValueError(f"Unknown refit_from {self.refit_from!r}; choose one of {REFIT_FROM}.")
    if self.sampling == "pps" and not self.reuse_pilot:
      raise ValueError("sampling='pps' needs reuse_pilot=True (the pilot rows are excluded from "
                       "the PPS draw and kept).")
    if self.method not in METHODS:
      raise ValueError(f"Unknown subsampling method {self.method!r}; choose one of {METHODS}.")
    if self.solver not in SOLVERS:
      raise ValueError(f"Unknown solver {self.solver!r}; choose one of {SOLVERS}.")
    if self.curvature not in CURVATURES:
      raise ValueError(f"Unknown curvature {self.curvature!r}; choose one of {CURVATURES}.")
    if self.m < 1 or self.pilot_size < 1:
      raise ValueError(f"m={self.m} and pilot_size={self.pilot_size} must be positive.")
    if self.method == "greedy" and self.pilot_size + self.greedy_rounds > self.m:
      raise ValueError(f"Greedy needs pilot_size + greedy_rounds <= m (got {self.pilot_size} + "
                       f"{self.greedy_rounds} > {self.m}); lower pilot_size.")
    if not 0.0 <= self.epsilon <= 1.0:
      raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}.")
    if self.method == "influence" and self.reuse_pilot and self.pilot_size >= self.m:
      raise ValueError(f"reuse_pilot needs pilot_size < m (got {self.pilot_size} >= {self.m}); "
                       "lower the pilot fraction.")


@dataclasses.dataclass(frozen=True)
class Problem:
  """Static description of a candidate's training problem (hashable, for jit)."""
  structure: im.Structure
  fit: im.FitConfig = im.FitConfig()


def _flat_problem(problem: Problem, params0, x, y, w, l2):
  """(objective of flat theta, logits of flat theta, unravel) for one weighted training set."""
  _, unravel = ravel_pytree(params0)
  obj = lambda v: im.objective(problem.structure, unravel(v), x, y, w, l2)
  logit_fn = lambda v: im.logits(problem.structure, unravel(v), x)
  return obj, logit_fn, unravel


def curvature_matvec(problem: Problem, cfg: SubsampleConfig, params, x, y, w, l2):
  """v -> (H + damping I) v for the weighted objective at `params` (matrix-free)."""
  theta, _ = ravel_pytree(params)
  obj, logit_fn, _ = _flat_problem(problem, params, x, y, w, l2)
  if cfg.curvature == "hessian":
    return lambda v: hvp(obj, theta, v) + cfg.damping * v
  return lambda v: gnvp(logit_fn, w, l2, theta, v) + cfg.damping * v


def curvature_matrix(problem: Problem, cfg: SubsampleConfig, params, x, y, w, l2) -> jax.Array:
  """Dense H + damping I [P, P] of the weighted objective at `params`."""
  theta, _ = ravel_pytree(params)
  obj, _, unravel = _flat_problem(problem, params, x, y, w, l2)
  if cfg.curvature == "hessian":
    h = jax.hessian(obj)(theta)
  else:
    row_logits = lambda v, xi: im.logits(problem.structure, unravel(v), xi[None])[0]
    h = dense_gauss_newton(row_logits, x, w, l2, theta)
  return h + cfg.damping * jnp.eye(theta.shape[0])


def _pool_map(fn: Callable[[jax.Array, jax.Array], jax.Array], x, y, chunk: int) -> jax.Array:
  """Applies fn(x_block, y_block) -> [block] over the pool in blocks (padding the last one)."""
  n = x.shape[0]
  chunk = min(chunk, n)
  nb = -(-n // chunk)
  pad = nb * chunk - n
  xp = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)]).reshape(nb, chunk, -1)
  yp = jnp.concatenate([y, jnp.zeros((pad,), y.dtype)]).reshape(nb, chunk)
  return jax.lax.map(lambda b: fn(*b), (xp, yp)).reshape(-1)[:n]


def influence_probs(problem: Problem, cfg: SubsampleConfig, params, x_pilot, y_pilot, w_pilot, l2,
                    x_pool, y_pool) -> jax.Array:
  """Sampling probabilities [N] from Hessian-metric influence norms at a pilot fit (Eqs. 4-5).

  Args:
    problem, cfg: static settings (cfg.solver, curvature, damping, CG, chunk, mix are used).
    params: the pilot fit.
    x_pilot, y_pilot, w_pilot: pilot rows [n0, D], [n0] and weights [n0] (zero weights pad).
    l2: L2 strength of the candidate.
    x_pool, y_pool: the pool [N, D], [N].
  """
  loss_fn = lambda p, xi, yi: im.example_loss(problem.structure, p, xi, yi)
  if cfg.solver == "exact":
    h = curvature_matrix(problem, cfg, params, x_pilot, y_pilot, w_pilot, l2)
    chol = jnp.linalg.cholesky(h)

    def block(xb, yb):
      z = solve_triangular(chol, per_example_grads(loss_fn, params, xb, yb).T, lower=True)
      return jnp.sqrt(jnp.sum(z * z, axis=0))
  else:
    matvec = curvature_matvec(problem, cfg, params, x_pilot, y_pilot, w_pilot, l2)

    def block(xb, yb):
      return hessian_norm_scores_cg(matvec, per_example_grads(loss_fn, params, xb, yb),
                                    cfg.cg_iters, cfg.cg_tol)
  return mix_with_uniform(_pool_map(block, x_pool, y_pool, cfg.chunk), cfg.mix)


def greedy_gain(problem: Problem, cfg: SubsampleConfig, params, x_sel, y_sel, w_sel, l2, x_pool,
                y_pool, x_val, y_val) -> jax.Array:
  """First-order drop of the validation loss from upweighting each pool point, [N].

  gain_i = grad L_val^T H^{-1} g_i (Koh & Liang Eq. 3 with the sign flipped), with H the curvature
  of the current weighted objective on the selected rows and s = H^{-1} grad L_val solved by CG.
  """
  s = problem.structure
  val_grad = ravel_pytree(jax.grad(lambda p: im.mean_loss(s, p, x_val, y_val))(params))[0]
  matvec = curvature_matvec(problem, cfg, params, x_sel, y_sel, w_sel, l2)
  s_test = conjugate_gradient(matvec, val_grad, cfg.cg_iters, cfg.cg_tol)
  loss_fn = lambda p, xi, yi: im.example_loss(s, p, xi, yi)
  return _pool_map(lambda xb, yb: per_example_grads(loss_fn, params, xb, yb) @ s_test,
                   x_pool, y_pool, cfg.chunk)


def greedy_pick(rng: np.random.Generator, gain: np.ndarray, chosen: np.ndarray, k: int,
                epsilon: float) -> np.ndarray:
  """k new distinct unselected points: each slot is, with probability epsilon, a uniform draw
  from the unselected points, otherwise the next-best by `gain` (host NumPy)."""
  free = np.flatnonzero(~chosen)
  if k > free.size:
    raise ValueError(f"Greedy needs {k} more points but only {free.size} are unselected.")
  order = free[np.argsort(-gain[free], kind="stable")]
  n_rand = int(rng.binomial(k, epsilon))
  best = order[:k - n_rand]
  rest = np.setdiff1d(free, best)
  return np.concatenate([best, rng.choice(rest, n_rand, replace=False)]).astype(np.int32)


# Batched (over B) stage functions; statics first. Compiled once per (statics, shapes).


def fit_batch(structure, fcfg, params0, x_pool, y_pool, idx, w, l2):
  """B weighted fits on pool rows: params0 [B, ...], idx [B, n], w [B, n], l2 [B] -> params [B]."""
  f = lambda p, i, wi, l: im.fit(structure, p, x_pool[i], y_pool[i], wi, l, fcfg)
  return jax.vmap(f)(params0, idx, w, l2)


def _probs_stage(problem, cfg, params, x_pool, y_pool, idx, w, l2):
  f = lambda p, i, wi, l: influence_probs(problem, cfg, p, x_pool[i], y_pool[i], wi, l, x_pool,
                                          y_pool)
  return jax.vmap(f)(params, idx, w, l2)


def _gain_stage(problem, cfg, params, x_pool, y_pool, x_val, y_val, idx, w, l2):
  f = lambda p, i, wi, l: greedy_gain(problem, cfg, p, x_pool[i], y_pool[i], wi, l, x_pool, y_pool,
                                      x_val, y_val)
  return jax.vmap(f)(params, idx, w, l2)


class StageRunner:
  """Compiles each stage once per (statics, shapes) and times compile and run separately.

  One runner per experiment (not a global cache), so timings are attributable and nothing outlives
  the run. `compile_seconds` and `run_seconds` accumulate until `reset()`.
  """

  def __init__(self):
    self._compiled = {}
    self.reset()

  def reset(self):
    self.compile_seconds = self.run_seconds = 0.0
    self.stage_seconds = {}

  def __call__(self, fn, statics: tuple, *args):
    sig = tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(args))
    key = (fn.__name__, statics, sig)
    if key not in self._compiled:
      t0 = time.perf_counter()
      self._compiled[key] = jax.jit(functools.partial(fn, *statics)).lower(*args).compile()
      self.compile_seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(self._compiled[key](*args))
    self._add(fn.__name__, time.perf_counter() - t0)
    return out

  def _add(self, name, seconds):
    self.run_seconds += seconds
    self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + seconds

  def host(self, fn, *args):
    """Runs host-side work (sampling) and counts it as run time."""
    t0 = time.perf_counter()
    out = fn(*args)
    self._add("host", time.perf_counter() - t0)
    return out


def _draw(rng: np.random.Generator, probs: np.ndarray, m: int):
  """m i.i.d. draws from each row of probs [B, N] -> idx [B, m] int32, IPW weights [B, m]."""
  probs = np.asarray(probs, np.float64)
  idx = np.stack([rng.choice(p.shape[0], m, replace=True, p=p / p.sum()) for p in probs])
  w = 1.0 / (m * probs.shape[1] * np.take_along_axis(probs, idx, axis=1))
  return idx.astype(np.int32), w.astype(np.float32)


def _normalize(w: np.ndarray) -> np.ndarray:
  """Rows of weights [B, m] rescaled to sum to one (self-normalised / Hajek IPW)."""
  return (w / np.sum(w, axis=1, keepdims=True)).astype(np.float32)


def subsample_fit(problem: Problem, cfg: SubsampleConfig, params0, l2, rng: np.random.Generator,
                  x_pool, y_pool, x_val=None, y_val=None, lev_probs=None, runner=None):
  """Draws each candidate's subsample by `cfg.method` and refits on it, for a batch of B fits.

  Args:
    problem: the candidates' shared structure and optimiser settings.
    cfg: subsampling settings.
    params0: starting parameters, leaves with a leading batch axis [B, ...] (zeros / fixed init).
    l2: L2 strengths [B] (e.g. an L2 grid repeated over seeds).
    rng: host generator for the draws (pilot, sample, epsilon-greedy), seeded by the caller.
    x_pool, y_pool: the pool [N, D], [N].
    x_val, y_val: validation rows (greedy only).
    lev_probs: leverage sampling probabilities [N] (leverage only; see `leverage_scores`).
    runner: a StageRunner (to share compilations and read timings); a fresh one if None.

  Returns:
    (params [B, ...], idx [B, m] pool indices of the final fit's rows, w [B, m] their weights).
    With reuse_pilot=False the influence method additionally used `cfg.pilot_size` uniform pilot
    points per fit; with reuse_pilot=True they are the first pilot_size of the m rows.
  """
  runner = runner or StageRunner()
  l2 = jnp.asarray(l2, jnp.float32)
  b, n, m = l2.shape[0], x_pool.shape[0], cfg.m
  if m > n:
    raise ValueError(f"Subsample size m={m} exceeds the pool size {n}; lower m.")
  if cfg.pilot_size > m:
    raise ValueError(f"pilot_size={cfg.pilot_size} exceeds m={m}; lower the pilot size.")
  fit_statics = (problem.structure, problem.fit)

  def fit(p, idx, w):
    return runner(fit_batch, fit_statics, p, x_pool, y_pool, jnp.asarray(idx), jnp.asarray(w), l2)

  if cfg.method == "uniform":
    idx = runner.host(lambda: np.stack([rng.choice(n, m, replace=False) for _ in range(b)]))
    w = np.full((b, m), 1.0 / m, np.float32)
    return fit(params0, idx, w), idx, w
  if cfg.method == "leverage":
    if lev_probs is None:
      raise ValueError("method='leverage' needs lev_probs (leverage_scores + mix_with_uniform).")
    idx, w = runner.host(_draw, rng, np.broadcast_to(np.asarray(lev_probs), (b, n)), m)
    w = _normalize(w) if cfg.self_normalize else w
    return fit(params0, idx, w), idx, w
  # Pilot: the first pilot_size of m slots (the rest zero-weighted, so the fit compiled for m
  # rows serves the pilot too).
  pilot = runner.host(lambda: np.stack([rng.choice(n, cfg.pilot_size, replace=False)
                                        for _ in range(b)]))
  idx = np.zeros((b, m), np.int32)
  idx[:, :cfg.pilot_size] = pilot
  w = np.zeros((b, m), np.float32)
  w[:, :cfg.pilot_size] = 1.0 / cfg.pilot_size
  theta = fit(params0, idx, w)
  if cfg.method == "influence":
    probs = runner(_probs_stage, (problem, cfg), theta, x_pool, y_pool, jnp.asarray(idx),
                   jnp.asarray(w), l2)
    probs = np.asarray(probs)
    if cfg.reuse_pilot and cfg.sampling == "pps":
      idx, w = runner.host(pps_with_pilot, rng, probs, pilot, m)
    elif cfg.reuse_pilot:
      new, _ = runner.host(_draw, rng, probs, m - cfg.pilot_size)
      idx = np.concatenate([pilot, new], axis=1).astype(np.int32)
      w = runner.host(mixture_weights, probs, idx, cfg.pilot_size)
    else:
      idx, w = runner.host(_draw, rng, probs, m)
    w = _normalize(w) if cfg.self_normalize else w
    return fit(theta if cfg.refit_from == "pilot" else params0, idx, w), idx, w
  if x_val is None:
    raise ValueError("method='greedy' needs validation data (x_val, y_val).")
  sizes = np.diff(np.linspace(cfg.pilot_size, m, cfg.greedy_rounds + 1).astype(int))
  chosen = np.zeros((b, n), bool)
  chosen[np.arange(b)[:, None], pilot] = True
  filled = cfg.pilot_size
  for r, k in enumerate(sizes):
    if r > 0:
      theta = fit(theta, idx, w)
    gain = np.asarray(runner(_gain_stage, (problem, cfg), theta, x_pool, y_pool, x_val, y_val,
                             jnp.asarray(idx), jnp.asarray(w), l2))

    def pick(gain=gain, k=int(k), filled=filled):
      for j in range(b):
        new = greedy_pick(rng, gain[j], chosen[j], k, cfg.epsilon)
        idx[j, filled:filled + k] = new
        chosen[j, new] = True
    runner.host(pick)
    filled += int(k)
    w = np.zeros((b, m), np.float32)
    w[:, :filled] = 1.0 / filled
  return fit(theta, idx, w), idx, w
