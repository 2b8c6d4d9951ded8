"""Bayesian optimisation on a new dataset over the learnt pipeline latents (Fusi et al., Sec. 3.2).

A new dataset is a new column of the matrix: with the GP-LVM's latents X and kernel fixed, its
entries are a GP over X. After each evaluation (a lookup in the held-out column) the posterior is
updated and the next pipeline maximises expected improvement (EI) among those not yet evaluated.
The first evaluations come from a warm start (meta-feature nearest neighbours or a portfolio).

Performances are errors, so lower is better and EI is for minimisation. Observations of the new
column are standardised with their own running mean/std (the training columns were standardised
the same way), which the zero-mean GP needs.

All shapes are static: observations live in a buffer of T slots with a validity mask, so one
`lax.scan` runs the whole search and `lax.map` runs it for many test datasets. The cost per step
is O(N T Q + T^3), so it also scales to the paper's 42k pipelines.
"""

import functools

import jax
import jax.numpy as jnp
from jax.scipy import stats

from metanas.automl import pmf

_JITTER = 1e-6


def gp_posterior(params: pmf.Params, obs_idx: jax.Array, obs_y: jax.Array,
                 obs_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Posterior of the noise-free column function at all pipelines given some observations.

  Args:
    params: learnt GP-LVM parameters (latents [N, Q] and kernel).
    obs_idx: [T] indices of observed pipelines (any value where obs_mask is 0).
    obs_y: [T] observed (standardised) values.
    obs_mask: [T] 1 = slot holds an observation.

  Returns:
    (mean [N], variance [N]) of f(x_n) | observations, the standard GP predictive equations
    mean = K_*o (K_oo + sigma^2 I)^-1 y_o,  var = k(x, x) - K_*o (K_oo + sigma^2 I)^-1 K_o*.
  """
  latents = params["latents"]
  x_obs = latents[obs_idx]
  cov_oo = pmf.covariance(params, x_obs)
  outer = obs_mask[:, None] * obs_mask[None, :]
  cov_oo = outer * cov_oo + jnp.diag(1.0 - obs_mask)  # Empty slots decouple.
  cross = pmf.rbf_ard(params, latents, x_obs) * obs_mask[None, :]  # [N, T]
  chol = jnp.linalg.cholesky(cov_oo)
  alpha = jax.scipy.linalg.cho_solve((chol, True), obs_mask * obs_y)
  mean = cross @ alpha
  v = jax.scipy.linalg.solve_triangular(chol, cross.T, lower=True)  # [T, N]
  prior_var = jnp.exp(2.0 * params["log_signal"])
  var = jnp.maximum(prior_var - jnp.sum(v * v, axis=0), _JITTER)
  return mean, var


def expected_improvement(mean: jax.Array, std: jax.Array, best: jax.Array,
                         xi: float = 0.0) -> jax.Array:
  """EI for minimisation: E[max(best - xi - f, 0)] with f ~ N(mean, std^2).

  Closed form (Jones et al. 1998): (best - xi - mean) Phi(z) + std phi(z), z = (best - xi - mean)
  / std.
  """
  gap = best - xi - mean
  z = gap / std
  return gap * stats.norm.cdf(z) + std * stats.norm.pdf(z)


def _standardise(obs_y: jax.Array, obs_mask: jax.Array) -> jax.Array:
  count = jnp.sum(obs_mask)
  mean = jnp.sum(obs_mask * obs_y) / jnp.maximum(count, 1.0)
  var = jnp.sum(obs_mask * (obs_y - mean) ** 2) / jnp.maximum(count, 1.0)
  std = jnp.where(count >= 2, jnp.sqrt(var), 1.0)
  return obs_mask * (obs_y - mean) / jnp.maximum(std, 1e-6)


def bo_search(params: pmf.Params, y: jax.Array, available: jax.Array, warm_start: jax.Array,
              num_warm: jax.Array, num_evals: int, xi: float = 0.0) -> tuple[jax.Array,
                                                                              jax.Array]:
  """Warm start, then EI-driven BO on one new dataset, evaluating one pipeline per iteration.

  Args:
    params: learnt GP-LVM parameters with latents [N, Q].
    y: [N] the held-out column (errors; values at unavailable pipelines are ignored).
    available: [N] bool, pipelines that may be evaluated (observed in the held-out column).
    warm_start: [W] distinct available pipeline indices evaluated first, in order.
    num_warm: scalar int <= W, how many of `warm_start` to use (must be >= 1).
    num_evals: T, total evaluations including the warm start (at most #available).
    xi: EI exploration margin in standardised units.

  Returns:
    (chosen [T] pipeline indices in evaluation order, best_so_far [T] lowest error found).
    A pipeline is never evaluated twice: EI is -inf on evaluated and unavailable pipelines.
  """
  n = y.shape[0]
  w = warm_start.shape[0]

  def body(carry, t):
    obs_idx, obs_y, obs_mask, evaluated = carry
    z = _standardise(obs_y, obs_mask)
    mean, var = gp_posterior(params, obs_idx, z, obs_mask)
    best = jnp.min(jnp.where(obs_mask > 0, z, jnp.inf))
    ei = expected_improvement(mean, jnp.sqrt(var), best, xi)
    ei = jnp.where(evaluated | ~available, -jnp.inf, ei)
    pick = jnp.where(t < num_warm, warm_start[jnp.minimum(t, w - 1)], jnp.argmax(ei))
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


@functools.partial(jax.jit, static_argnames=("num_evals",))
def bo_search_batch(params: pmf.Params, y: jax.Array, available: jax.Array,
                    warm_start: jax.Array, num_warm: jax.Array, num_evals: int,
                    xi: float = 0.0) -> tuple[jax.Array, jax.Array]:
  """`bo_search` mapped over test datasets.

  Uses `lax.map` rather than `vmap`: batched triangular solves with matrix right-hand sides are
  very slow on XLA:CPU, unbatched ones are fast, and the datasets are independent anyway.

  Args:
    params: learnt parameters (shared).
    y: [D_test, N] held-out columns (one row per test dataset); available: [D_test, N] bool.
    warm_start: [D_test, W] warm-start indices; num_warm: [D_test] ints.
    num_evals: T.
    xi: EI margin.

  Returns:
    (chosen [D_test, T], best_so_far [D_test, T]).
  """
  one = lambda a: bo_search(params, *a, num_evals=num_evals, xi=xi)
  return jax.lax.map(one, (y, available, warm_start, num_warm))


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
