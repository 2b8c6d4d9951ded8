"""Bayesian optimisation on a new dataset over the learnt pipeline latents (Fusi et al., Sec. 3.2).

A new dataset is a new column of the matrix: with the GP-LVM's latents X and kernel fixed, its
entries are a GP over X. After each evaluation (a lookup in the held-out column) the posterior is
updated and the next pipeline maximises expected improvement (EI) among those not yet evaluated.
The first evaluations come from a warm start (meta-feature nearest neighbours or a portfolio).
Option: Thompson sampling instead of EI (`acquisition_fn="thompson"`): the unevaluated pipeline
that is best in one joint draw from the same predictive.

Performances are errors, so lower is better and EI is for minimisation. Observations of the new
column are standardised with their own running mean/std (the training columns were standardised
the same way), which the zero-mean GP needs.

All shapes are static: observations live in a buffer of T slots with a validity mask, so one
`lax.scan` runs the whole search and `lax.map` runs it for many test datasets. The cost per step
is O(N T Q + T^3), so it also scales to the paper's 42k pipelines.

Column refit (`column_noise` given): the training fit explains its own columns almost exactly
(on OBOE the learnt white-noise variance is ~2e-4 of a standardised column), but a new column's
entries deviate far more from what the latents predict. With the latents and the RBF kernel fixed,
the new column is modelled as  y = sqrt(a) (f + eps),  f ~ GP(0, K),  eps ~ N(0, g I), and after
each evaluation its scale a (closed form) and nugget g (a grid) are set by maximising the column's
marginal likelihood (type-II ML on the column's own observations only). EI is then taken on the
predictive of the *lookup* y at an unevaluated pipeline, variance a (var_f + g): an evaluation is
a deterministic table lookup, and eps is that pipeline's real, reproducible deviation on this
dataset, not measurement noise to be averaged away.
"""

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

from metanas.automl import pmf

_JITTER = 1e-6


def gp_posterior(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array,
                 obs_mask: jax.Array, noise: jax.Array | None = None) -> tuple[jax.Array,
                                                                                jax.Array]:
  """Posterior of the noise-free column function at all pipelines given some observations.

  Args:
    params: learnt GP-LVM parameters (latents [N, Q] and kernel).
    obs_idx: [T] indices of observed pipelines (any value where obs_mask is 0).
    obs_y: [T] observed (standardised) values.
    obs_mask: [T] 1 = slot holds an observation.
    noise: optional white-noise variance sigma^2 to use instead of the learnt one.

  Returns:
    (mean [N], variance [N]) of f(x_n) | observations, the standard GP predictive equations
    mean = K_*o (K_oo + sigma^2 I)^-1 y_o,  var = k(x, x) - K_*o (K_oo + sigma^2 I)^-1 K_o*.
  """
  mean, v = _conditioned(params, obs_idx, obs_y, obs_mask, noise)
  prior_var = jnp.exp(2.0 * params["log_signal"])
  return mean, jnp.maximum(prior_var - jnp.sum(v * v, axis=0), _JITTER)


def _conditioned(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array, obs_mask: jax.Array,
                 noise: jax.Array | None) -> tuple[jax.Array, jax.Array]:
  """(posterior mean [N], V [T, N]) with V = L^-1 K_o*, L L^T = K_oo + sigma^2 I: the posterior
  covariance is K_** - V^T V. Empty slots (obs_mask 0) decouple from everything."""
  latents = params["latents"]
  x_obs = latents[obs_idx]
  if noise is None:
    noise = pmf.noise_variance(params)
  cov_oo = pmf.rbf_ard(params, x_obs, x_obs) + noise * jnp.eye(x_obs.shape[0])
  outer = obs_mask[:, None] * obs_mask[None, :]
  cov_oo = outer * cov_oo + jnp.diag(1.0 - obs_mask)  # Empty slots decouple.
  cross = pmf.rbf_ard(params, latents, x_obs) * obs_mask[None, :]  # [N, T]
  chol = jnp.linalg.cholesky(cov_oo)
  mean = cross @ jax.scipy.linalg.cho_solve((chol, True), obs_mask * obs_y)
  return mean, jax.scipy.linalg.solve_triangular(chol, cross.T, lower=True)


def expected_improvement(mean: jax.Array, std: jax.Array, best: jax.Array,
                         xi: float = 0.0) -> jax.Array:
  """EI for minimisation: E[max(best - xi - f, 0)] with f ~ N(mean, std^2).

  Closed form (Jones et al. 1998): (best - xi - mean) Phi(z) + std phi(z), z = (best - xi - mean)
  / std.
  """
  gap = best - xi - mean
  z = gap / std
  return gap * stats.norm.cdf(z) + std * stats.norm.pdf(z)


def _scaled_lengthscales(params: pmf.Params, factor: jax.Array) -> pmf.Params:
  """`params` with every ARD lengthscale multiplied by `factor` (a scalar)."""
  return {**params, "log_lengthscale": params["log_lengthscale"] + jnp.log(factor)}


def column_fit(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array, obs_mask: jax.Array,
               noise_grid: jax.Array, lengthscale_grid: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Type-II ML scale, nugget and lengthscale factor of a new column (latents fixed).

  Model: obs_y = sqrt(a) (f + eps), f ~ GP(0, K_rbf(c l)), eps ~ N(0, g I), where c multiplies
  all learnt ARD lengthscales l (c = 1: the training kernel). For each (g, c) on the grid the
  scale is profiled out in closed form, a_hat = y^T (K_c + g I)^-1 y / n, leaving the profile
  log-likelihood -0.5 (n log a_hat + log det(K_c + g I)) + const; the best grid point is returned.

  Args:
    params: learnt GP-LVM parameters (only the latents and the RBF part are used).
    obs_idx: [T] observed pipeline indices; obs_y: [T] values; obs_mask: [T] 1 = slot used.
    noise_grid: [G] candidate nugget variances g (in units of a).
    lengthscale_grid: optional [C] candidate lengthscale factors c (None = c = 1 only).

  Returns:
    (a, g, c): the maximum-likelihood scale, nugget and lengthscale factor (scalars).
  """
  if lengthscale_grid is None:
    lengthscale_grid = jnp.ones((1,), noise_grid.dtype)
  x_obs = params["latents"][obs_idx]
  outer = obs_mask[:, None] * obs_mask[None, :]
  y = obs_mask * obs_y
  n = jnp.maximum(jnp.sum(obs_mask), 1.0)
  gs, cs = (a.ravel() for a in jnp.meshgrid(noise_grid, lengthscale_grid, indexing="ij"))

  def profile(gc):
    g, c = gc
    k = pmf.rbf_ard(_scaled_lengthscales(params, c), x_obs, x_obs)
    cov = outer * (k + g * jnp.eye(k.shape[0])) + jnp.diag(1.0 - obs_mask)
    chol = jnp.linalg.cholesky(cov)
    half = jax.scipy.linalg.solve_triangular(chol, y, lower=True)
    scale = jnp.maximum(half @ half / n, 1e-12)
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))  # Empty slots add log 1 = 0.
    return -0.5 * (n * jnp.log(scale) + log_det), scale

  # lax.map, not vmap: batched triangular solves are slow on XLA:CPU (see bo_search_batch).
  ll, scales = jax.lax.map(profile, (gs, cs))
  best = jnp.argmax(ll)
  return scales[best], gs[best], cs[best]


def column_noise_fit(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array,
                     obs_mask: jax.Array, noise_grid: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`column_fit` with the training lengthscales: the ML (scale a, nugget g) of a new column."""
  scale, nugget, _ = column_fit(params, obs_idx, obs_y, obs_mask, noise_grid)
  return scale, nugget


def column_posterior(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array,
                     obs_mask: jax.Array, noise_grid: jax.Array,
                     lengthscale_grid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Predictive mean and variance of the *lookups* y at all pipelines after a column refit.

  Args:
    params: learnt GP-LVM parameters.
    obs_idx, obs_y, obs_mask: [T] observation buffer (as in `gp_posterior`).
    noise_grid: [G] candidate nuggets; lengthscale_grid: optional [C] lengthscale factors
      (see `column_fit`).

  Returns:
    (mean [N], variance [N]) of y_n = sqrt(a) (f_n + eps_n) given the observations, with the
    column's ML scale a, nugget g and lengthscale factor c: mean = k_*^T (K + g I)^-1 y,
    variance = a (var_f + g).
  """
  scale, nugget, factor = column_fit(params, obs_idx, obs_y, obs_mask, noise_grid,
                                     lengthscale_grid)
  # The scale a cancels in the mean and multiplies every variance.
  mean, var_f = gp_posterior(_scaled_lengthscales(params, factor), obs_idx, obs_y, obs_mask,
                             nugget)
  return mean, scale * (var_f + nugget)


def _standardise(obs_y: jax.Array, obs_mask: jax.Array) -> jax.Array:
  count = jnp.sum(obs_mask)
  mean = jnp.sum(obs_mask * obs_y) / jnp.maximum(count, 1.0)
  var = jnp.sum(obs_mask * (obs_y - mean) ** 2) / jnp.maximum(count, 1.0)
  std = jnp.where(count >= 2, jnp.sqrt(var), 1.0)
  return obs_mask * (obs_y - mean) / jnp.maximum(std, 1e-6)


def member_posteriors(params: pmf.Params, obs_idx: jax.Array, z: jax.Array, obs_mask: jax.Array,
                      column_noise: jax.Array | None = None,
                      lengthscale_grid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """GP posterior (mean, variance) at every pipeline: [N] each for one fit, [E, N] for an ensemble
  (`pmf.fit_ensemble`), one per member; with `column_noise` each member refits the column's scale
  and nugget on its own latents (`column_posterior`), else `gp_posterior`."""
  def posterior(p):
    if column_noise is None:
      return gp_posterior(p, obs_idx, z, obs_mask)
    return column_posterior(p, obs_idx, z, obs_mask, column_noise, lengthscale_grid)

  if not pmf.is_ensemble(params):
    return posterior(params)
  # lax.map over members, not vmap: batched triangular solves are slow on XLA:CPU.
  return jax.lax.map(posterior, params)


def _mixture(means: jax.Array, variances: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and variance of the equal-weight mixture of [E, N] Gaussians."""
  mean = jnp.mean(means, axis=0)
  return mean, jnp.maximum(jnp.mean(variances + means ** 2, axis=0) - mean ** 2, _JITTER)


def predictive(params: pmf.Params, obs_idx: jax.Array, z: jax.Array, obs_mask: jax.Array,
               column_noise: jax.Array | None = None,
               lengthscale_grid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Predictive (mean [N], variance [N]): one fit's posterior, or an ensemble's mixture."""
  means, variances = member_posteriors(params, obs_idx, z, obs_mask, column_noise,
                                       lengthscale_grid)
  return _mixture(means, variances) if pmf.is_ensemble(params) else (means, variances)


def acquisition(params: pmf.Params, obs_idx: jax.Array, z: jax.Array, obs_mask: jax.Array,
                best: jax.Array, xi: float = 0.0, column_noise: jax.Array | None = None,
                lengthscale_grid: jax.Array | None = None) -> tuple[jax.Array, jax.Array,
                                                                    jax.Array]:
  """Predictive mean, variance and EI at every pipeline, for one fit or an ensemble of fits.

  Args:
    params: one fit (latents [N, Q]) or E fits stacked on a leading axis (latents [E, N, Q],
      `pmf.fit_ensemble`).
    obs_idx, z, obs_mask: [T] observation buffer with standardised values (as in `gp_posterior`).
    best: incumbent (lowest observed z).
    xi, column_noise, lengthscale_grid: as in `bo_search`; with `column_noise` every member
      refits the column's scale and nugget on its own latents.

  Returns:
    (mean [N], variance [N], ei [N]). For an ensemble the predictive is the equal-weight mixture
    of the members' Gaussians, whose EI is exactly the mean of the members' EIs (EI is an
    expectation under the predictive and the incumbent is the same for every member); mean and
    variance are the mixture's (used by the `explore_below` fallback).
  """
  means, variances = member_posteriors(params, obs_idx, z, obs_mask, column_noise,
                                       lengthscale_grid)
  ei = expected_improvement(means, jnp.sqrt(variances), best, xi)
  if not pmf.is_ensemble(params):
    return means, variances, ei
  return (*_mixture(means, variances), jnp.mean(ei, axis=0))


def joint_posterior(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array,
                    obs_mask: jax.Array, noise: jax.Array | None = None
                    ) -> tuple[jax.Array, jax.Array]:
  """`gp_posterior` with the full posterior covariance of f at all pipelines.

  Returns:
    (mean [N], covariance [N, N]) = (K_*o A^-1 y_o, K_** - K_*o A^-1 K_o*), A = K_oo + sigma^2 I.
    O(N^2 T + N^3) memory/time in the caller's sampling: meant for matrices with a few thousand
    pipelines at most (OBOE: 219), not the paper's 42k.
  """
  mean, v = _conditioned(params, obs_idx, obs_y, obs_mask, noise)
  latents = params["latents"]
  return mean, pmf.rbf_ard(params, latents, latents) - v.T @ v


def thompson_sample(key: jax.Array, params: pmf.Params, obs_idx: jax.Array, z: jax.Array,
                    obs_mask: jax.Array, column_noise: jax.Array | None = None,
                    lengthscale_grid: jax.Array | None = None) -> jax.Array:
  """One joint draw of the column at all pipelines from the predictive that EI uses.

  Without `column_noise`: a draw of the noise-free f | observations (training kernel). With it:
  a draw of the lookups y = sqrt(a) (f + eps) after the column refit (`column_posterior`'s model:
  f from the refitted GP, plus an independent N(0, g) deviation per pipeline, all scaled by a).
  For an ensemble (latents [E, N, Q]) a member is drawn uniformly first, i.e. a draw from the
  equal-weight mixture that `acquisition` uses.

  Returns:
    [N] sampled standardised values (lower = better).
  """
  k_member, k_draw, k_eps = jax.random.split(key, 3)
  if pmf.is_ensemble(params):
    m = jax.random.randint(k_member, (), 0, params["latents"].shape[0])
    params = jax.tree.map(lambda a: a[m], params)
  n = params["latents"].shape[0]
  if column_noise is None:
    mean, cov = joint_posterior(params, obs_idx, z, obs_mask)
    scale, nugget = jnp.ones(()), jnp.zeros(())
  else:
    scale, nugget, factor = column_fit(params, obs_idx, z, obs_mask, column_noise,
                                       lengthscale_grid)
    mean, cov = joint_posterior(_scaled_lengthscales(params, factor), obs_idx, z, obs_mask,
                                nugget)
  # Jitter relative to the prior variance: the posterior covariance is rank-deficient at the
  # observed pipelines (and numerically slightly indefinite in float32).
  jitter = 1e-5 * jnp.exp(2.0 * params["log_signal"]) + _JITTER
  chol = jnp.linalg.cholesky(cov + jitter * jnp.eye(n))
  # Mean plus sqrt(a) (posterior deviation of f + the pipeline's own deviation eps).
  dev = chol @ jax.random.normal(k_draw, (n,), mean.dtype)
  eps = jnp.sqrt(nugget) * jax.random.normal(k_eps, (n,), mean.dtype)
  return mean + jnp.sqrt(scale) * (dev + eps)


FALLBACKS = ("variance", "mean")
ACQUISITIONS = ("ei", "thompson")


def bo_search(params: pmf.Params, y: jax.Array, available: jax.Array, warm_start: jax.Array,
              num_warm: jax.Array, num_evals: int, xi: float = 0.0,
              column_noise: jax.Array | None = None, lengthscale_grid: jax.Array | None = None,
              explore_below: float = 0.0, fallback: str = "variance",
              acquisition_fn: str = "ei", key: jax.Array | None = None
              ) -> tuple[jax.Array, jax.Array]:
  """Warm start, then EI-driven BO on one new dataset, evaluating one pipeline per iteration.

  Args:
    params: learnt GP-LVM parameters with latents [N, Q], or an ensemble of fits stacked on a
      leading axis (latents [E, N, Q]; EI is then that of the members' mixture, see
      `acquisition`).
    y: [N] the held-out column (errors; values at unavailable pipelines are ignored).
    available: [N] bool, pipelines that may be evaluated (observed in the held-out column).
    warm_start: [W] distinct available pipeline indices evaluated first, in order.
    num_warm: scalar int <= W, how many of `warm_start` to use (must be >= 1).
    num_evals: T, total evaluations including the warm start (at most #available).
    xi: EI exploration margin in standardised units.
    column_noise: None = the paper's setting (EI on the noise-free f with the training kernel);
      a [G] grid of nuggets = refit the column's scale and nugget by ML after every evaluation
      and take EI on the lookups' predictive (see `column_posterior`).
    lengthscale_grid: optional [C] lengthscale factors also refitted by ML in the column refit
      (only used with `column_noise`).
    explore_below: when the largest EI among the candidates is below this (standardised units
      of the column), EI no longer ranks them usefully (its tail is ~0 everywhere), so pick by
      `fallback` instead; 0 = always EI.
    fallback: "variance" = the candidate with the largest predictive variance (exploration);
      "mean" = the lowest predictive mean (exploitation).
    acquisition_fn: "ei" (the paper) or "thompson": Thompson sampling, i.e. the candidate with
      the lowest value in one joint draw from the same predictive (`thompson_sample`, O(N^3) per
      step); `explore_below` must then be 0.
    key: PRNG key of the Thompson draws (step t uses fold_in(key, t)); unused by EI.

  Returns:
    (chosen [T] pipeline indices in evaluation order, best_so_far [T] lowest error found).
    A pipeline is never evaluated twice: every criterion is -inf on evaluated and unavailable
    pipelines.
  """
  if fallback not in FALLBACKS:
    raise ValueError(f"fallback={fallback!r}; use one of {FALLBACKS}.")
  if acquisition_fn not in ACQUISITIONS:
    raise ValueError(f"acquisition_fn={acquisition_fn!r}; use one of {ACQUISITIONS}.")
  thompson = acquisition_fn == "thompson"
  if thompson and isinstance(explore_below, (int, float)) and explore_below > 0:
    raise ValueError("explore_below is an EI fallback; it must be 0 with Thompson sampling.")
  if thompson and key is None:
    raise ValueError("Thompson sampling needs a PRNG key.")
  n = y.shape[0]
  w = warm_start.shape[0]

  def body(carry, t):
    obs_idx, obs_y, obs_mask, evaluated = carry
    z = _standardise(obs_y, obs_mask)
    best = jnp.min(jnp.where(obs_mask > 0, z, jnp.inf))
    candidate = ~evaluated & available
    if thompson:
      draw = thompson_sample(jax.random.fold_in(key, t), params, obs_idx, z, obs_mask,
                             column_noise, lengthscale_grid)
      bo_pick = jnp.argmin(jnp.where(candidate, draw, jnp.inf))  # explore_below: unused.
    else:
      mean, var, ei = acquisition(params, obs_idx, z, obs_mask, best, xi, column_noise,
                                  lengthscale_grid)
      ei = jnp.where(candidate, ei, -jnp.inf)
      alt = jnp.where(candidate, var if fallback == "variance" else -mean, -jnp.inf)
      bo_pick = jnp.where(jnp.max(ei) < explore_below, jnp.argmax(alt), jnp.argmax(ei))
    pick = jnp.where(t < num_warm, warm_start[jnp.minimum(t, w - 1)], bo_pick)
    obs_idx = obs_idx.at[t].set(pick)
    obs_y = obs_y.at[t].set(y[pick])
    obs_mask = obs_mask.at[t].set(1.0)
    evaluated = evaluated.at[pick].set(True)
    best_y = jnp.min(jnp.where(obs_mask > 0, obs_y, jnp.inf))
    return (obs_idx, obs_y, obs_mask, evaluated), (pick, best_y)

  init = (jnp.zeros((num_evals,), jnp.int32), jnp.zeros((num_evals,), y.dtype),
          jnp.zeros((num_evals,), y.dtype), jnp.zeros((n,), bool))
  _, (chosen, best_so_far) = jax.lax.scan(body, init, jnp.arange(num_evals))
  return chosen, best_so_far


@functools.partial(jax.jit, static_argnames=("num_evals", "fallback", "acquisition_fn"))
def bo_search_batch(params: pmf.Params, y: jax.Array, available: jax.Array,
                    warm_start: jax.Array, num_warm: jax.Array, num_evals: int,
                    xi: float = 0.0, column_noise: jax.Array | None = None,
                    lengthscale_grid: jax.Array | None = None, explore_below: float = 0.0,
                    fallback: str = "variance", acquisition_fn: str = "ei",
                    key: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """`bo_search` mapped over test datasets.

  Uses `lax.map` rather than `vmap`: batched triangular solves with matrix right-hand sides are
  very slow on XLA:CPU, unbatched ones are fast, and the datasets are independent anyway.

  Args:
    params: learnt parameters (shared).
    y: [D_test, N] held-out columns (one row per test dataset); available: [D_test, N] bool.
    warm_start: [D_test, W] warm-start indices; num_warm: [D_test] ints.
    num_evals: T.
    xi, column_noise, lengthscale_grid, explore_below, fallback, acquisition_fn: as in
      `bo_search`.
    key: PRNG key for Thompson sampling (dataset i uses fold_in(key, i)); unused by EI.

  Returns:
    (chosen [D_test, T], best_so_far [D_test, T]).
  """
  if key is None:
    if acquisition_fn == "thompson":
      raise ValueError("Thompson sampling needs a PRNG key.")
    key = jax.random.key(0)  # Unused by EI.
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(y.shape[0]))
  one = lambda a: bo_search(params, *a[:4], num_evals=num_evals, xi=xi,
                            column_noise=column_noise, lengthscale_grid=lengthscale_grid,
                            explore_below=explore_below, fallback=fallback,
                            acquisition_fn=acquisition_fn, key=a[4])
  return jax.lax.map(one, (y, available, warm_start, num_warm, keys))


def repeated_search(search: Callable[[jax.Array | None], jax.Array], acquisition_fn: str,
                    repeats: int, key: jax.Array) -> np.ndarray:
  """best_so_far [R, D, T] of R repeats of `search(key) -> best_so_far [D, T]` (e.g. a partial
  `bo_search_batch`), laid out like the random arms: EI is deterministic, so it runs once and is
  repeated; Thompson sampling runs once per repeat with the keys of `jax.random.split(key, R)`."""
  if acquisition_fn == "ei":
    return np.repeat(np.asarray(search(None), np.float64)[None], repeats, axis=0)
  return np.stack([np.asarray(search(k), np.float64) for k in jax.random.split(key, repeats)])


@jax.jit
def predict_columns(params: pmf.Params, values: jax.Array, mask: jax.Array) -> jax.Array:
  """Posterior mean of every entry of each column given that column's observed entries.

  Args:
    params: learnt parameters with latents [N, Q].
    values: [N, D] standardised values (zero at missing); mask: [N, D] 1 = observed.

  Returns:
    [N, D] predictive means (standardised units). Uses all N rows as the buffer, so O(N^3) per
    column: meant for small matrices and tests.
  """
  n = values.shape[0]
  idx = jnp.arange(n)
  one = lambda yc, mc: gp_posterior(params, idx, yc, mc)[0]
  return jax.vmap(one, in_axes=(1, 1), out_axes=1)(values, mask)
