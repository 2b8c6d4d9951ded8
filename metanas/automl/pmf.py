"""GP-LVM probabilistic matrix factorisation of a pipelines x datasets matrix (Fusi et al., Sec. 3).

Each pipeline n has a latent vector x_n in R^Q; each dataset's (standardised) column is an
independent draw of a GP over the latents with one shared kernel
  k(x, x') = s^2 exp(-0.5 sum_q (x_q - x'_q)^2 / l_q^2)  +  sigma^2 [x = x']     (RBF-ARD + white),
  y_d ~ N(0, K(X, X) + sigma^2 I)   restricted to the observed rows of column d.
The latents (initialised by PCA of the imputed matrix) and the kernel hyperparameters are learnt by
maximising the marginal likelihood of the observed entries, with minibatches of datasets (columns)
and optax. A standard-normal prior on the latents (the usual GP-LVM MAP objective) keeps them
bounded; its weight is a config value (0 disables it).

Missing entries never enter the likelihood: for a column with observation mask m, the covariance is
replaced by  m m^T * (K + sigma^2 I) + diag(1 - m)  and y by m * y, which factorises into the
observed-rows Gaussian times N(0; 0, 1) terms for the missing rows, whose log-density we remove by
counting only observed rows in the 2*pi constant. This keeps all shapes static (one jit, vmap over
columns) while being exactly the dense log N(y_obs | 0, K_obs + sigma^2 I).

`fit` picks the cheapest exact form: a fully observed matrix shares one Cholesky across the
minibatch; otherwise each column is restricted to R rows gathered from its observed ones, with
R = the largest observed count (exact) or `max_rows` if smaller (a fresh random subset of observed
rows each step, as the paper's code does with N_max; an approximation for the larger columns).
"""

import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = dict[str, jax.Array]  # {"latents": [N, Q], "log_lengthscale": [Q], "log_signal": [],
#                                  "log_noise": []}

_MIN_NOISE = 1e-4  # Variance floor that keeps every masked Cholesky well conditioned.


def prepare_matrix(y: np.ndarray, name: str = "performance matrix") -> tuple[np.ndarray,
                                                                                np.ndarray]:
  """Splits a matrix with NaN for missing entries into (values, mask), checking it is usable.

  Args:
    y: [num_pipelines, num_datasets] performances; NaN marks an unobserved entry.
    name: what `y` is, for error messages.

  Returns:
    values: [N, D] float32 with missing entries set to 0; mask: [N, D] float32, 1 = observed.

  Raises:
    ValueError: `y` is not 2-D, holds infinities, or has a column with no observed entry.
  """
  y = np.asarray(y, dtype=np.float64)
  if y.ndim != 2:
    raise ValueError(f"The {name} must be 2-D [pipelines, datasets]; got shape {y.shape}.")
  if np.isinf(y).any():
    raise ValueError(f"The {name} holds infinite values; mark unobserved entries with NaN instead.")
  mask = ~np.isnan(y)
  empty = np.flatnonzero(~mask.any(axis=0))
  if empty.size:
    raise ValueError(f"The {name} has {empty.size} all-missing dataset column(s) (indices "
                     f"{empty[:10].tolist()}{'...' if empty.size > 10 else ''}); a column with no "
                     "observed pipeline carries no information. Drop those datasets first.")
  return np.where(mask, y, 0.0).astype(np.float32), mask.astype(np.float32)


def standardize_columns(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
  """Per-dataset standardisation over observed entries (the zero-mean GP needs centred columns).

  Args:
    values: [N, D] with zeros at missing entries; mask: [N, D] 1 = observed.

  Returns:
    (z [N, D] standardised values, zero where missing; mean [D]; std [D]), std floored at 1e-6
    (a constant column becomes all zeros).
  """
  count = mask.sum(axis=0)
  mean = (values * mask).sum(axis=0) / count
  var = (((values - mean) * mask) ** 2).sum(axis=0) / count
  std = np.maximum(np.sqrt(var), 1e-6)
  z = np.where(mask > 0, (values - mean) / std, 0.0)
  return z.astype(np.float32), mean.astype(np.float32), std.astype(np.float32)


def pca_latents(z: np.ndarray, mask: np.ndarray, num_latent: int) -> np.ndarray:
  """PCA initialisation of the pipeline latents from the mean-imputed matrix (paper Sec. 3).

  Args:
    z: [N, D] standardised values (zero at missing entries); mask: [N, D].
    num_latent: Q, at most min(N, D).

  Returns:
    [N, Q] float32 principal-component scores, scaled so the first component has unit std.
  """
  n, d = z.shape
  if not 1 <= num_latent <= min(n, d):
    raise ValueError(f"num_latent={num_latent} must be in [1, min(num_pipelines, num_datasets)] = "
                     f"[1, {min(n, d)}]; lower config.pmf.num_latent.")
  col_mean = (z * mask).sum(axis=0) / np.maximum(mask.sum(axis=0), 1)
  imputed = np.where(mask > 0, z, col_mean)  # Missing -> the dataset's observed mean.
  centred = imputed - imputed.mean(axis=0)
  u, s, _ = np.linalg.svd(centred, full_matrices=False)
  scores = u[:, :num_latent] * s[:num_latent]
  scale = scores[:, 0].std()
  return (scores / (scale if scale > 0 else 1.0)).astype(np.float32)


def init_params(latents: np.ndarray, lengthscale: float = 1.0, signal: float = 1.0,
                noise: float = 0.1) -> Params:
  """Parameters with log-transformed positive hyperparameters; `latents` is [N, Q]."""
  q = latents.shape[1]
  return {
      "latents": jnp.asarray(latents, jnp.float32),
      "log_lengthscale": jnp.full((q,), np.log(lengthscale), jnp.float32),
      "log_signal": jnp.asarray(np.log(signal), jnp.float32),
      "log_noise": jnp.asarray(np.log(noise), jnp.float32),
  }


def noise_variance(params: Params) -> jax.Array:
  """sigma^2 of the white kernel (floored for a stable Cholesky)."""
  return jnp.exp(params["log_noise"]) + _MIN_NOISE


def rbf_ard(params: Params, x1: jax.Array, x2: jax.Array) -> jax.Array:
  """RBF-ARD kernel s^2 exp(-0.5 ||(x1 - x2) / l||^2) between [A, Q] and [B, Q] -> [A, B]."""
  inv_l = jnp.exp(-params["log_lengthscale"])
  a, b = x1 * inv_l, x2 * inv_l
  sq = (jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * a @ b.T)
  return jnp.exp(2.0 * params["log_signal"]) * jnp.exp(-0.5 * jnp.maximum(sq, 0.0))


def covariance(params: Params, latents: jax.Array) -> jax.Array:
  """K(X, X) + sigma^2 I for [N, Q] latents -> [N, N] (the RBF-ARD + white kernel)."""
  n = latents.shape[0]
  return rbf_ard(params, latents, latents) + noise_variance(params) * jnp.eye(n)


def _quad_and_logdet_bwd(res, g):
  cov_inv, a = res
  g_quad, g_logdet = g
  return (-(a * g_quad) @ a.T + g_logdet * cov_inv, 2.0 * a * g_quad)


def _chol_fwd(cov, y):
  chol = jnp.linalg.cholesky(cov)
  chol_inv = jax.scipy.linalg.solve_triangular(chol, jnp.eye(cov.shape[0], dtype=cov.dtype),
                                               lower=True)
  half = chol_inv @ y
  log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
  return (jnp.sum(half * half, axis=0), log_det), (chol_inv.T @ chol_inv, chol_inv.T @ half)


def _eigh_fwd(cov, y):
  w, v = jnp.linalg.eigh(cov)
  a = v @ ((v.T @ y) / w[:, None])
  return (jnp.sum(y * a, axis=0), jnp.sum(jnp.log(w))), ((v / w) @ v.T, a)


@jax.custom_vjp
def quad_and_logdet(cov: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(y_b^T cov^-1 y_b for each column b, log det cov) for one big cov [N, N] and y [N, B].

  Cholesky-based with a hand-written gradient
    d quad_b / d cov = -a_b a_b^T,  d logdet / d cov = cov^-1,  d quad_b / d y_b = 2 a_b,
  a = cov^-1 y. Autodiff through the Cholesky runs transposed triangular solves with matrix
  right-hand sides, which XLA:CPU executes 5-60x slower than this.
  """
  return _chol_fwd(cov, y)[0]


@jax.custom_vjp
def quad_and_logdet_small(cov: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Same as `quad_and_logdet`, via `eigh`: faster for many small (vmapped) matrices on CPU,
  where batched triangular solves are slow. The hand-written gradient never divides by
  eigenvalue gaps, so the repeated unit eigenvalues of a masked covariance are harmless."""
  return _eigh_fwd(cov, y)[0]


quad_and_logdet.defvjp(_chol_fwd, _quad_and_logdet_bwd)
quad_and_logdet_small.defvjp(_eigh_fwd, _quad_and_logdet_bwd)


def masked_log_marginal(cov: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
  """log N(y_obs | 0, cov_obs) of one column computed with static shapes.

  Args:
    cov: [N, N] covariance of all N rows.
    y: [N] values (anything at missing rows).
    mask: [N] 1 = observed.

  Returns:
    Scalar log-density of the observed rows only (the paper's per-dataset GP likelihood).
  """
  outer = mask[:, None] * mask[None, :]
  cov_m = outer * cov + jnp.diag(1.0 - mask)  # Missing rows decouple as unit-variance zeros.
  quad, log_det = quad_and_logdet_small(cov_m, (mask * y)[:, None])
  return -0.5 * (quad[0] + log_det + jnp.sum(mask) * jnp.log(2.0 * jnp.pi))


def columns_log_marginal(params: Params, y: jax.Array, mask: jax.Array) -> jax.Array:
  """Per-column log marginal likelihoods of full columns [N, B] -> [B] (vmapped over datasets)."""
  cov = covariance(params, params["latents"])
  return jax.vmap(masked_log_marginal, in_axes=(None, 1, 1))(cov, y, mask)


def dense_log_marginal(params: Params, y: jax.Array) -> jax.Array:
  """Log marginal likelihoods of fully observed columns [N, B] -> [B], sharing one factorisation."""
  quad, log_det = quad_and_logdet(covariance(params, params["latents"]), y)
  return -0.5 * (quad + log_det + y.shape[0] * jnp.log(2.0 * jnp.pi))


def subsampled_log_marginal(params: Params, rows: jax.Array, y: jax.Array,
                            mask: jax.Array) -> jax.Array:
  """Per-column log likelihoods on a subset of rows (for matrices with many pipelines).

  Args:
    params: model parameters.
    rows: [B, R] row (pipeline) indices per column.
    y: [B, R] values at those rows; mask: [B, R] 1 = observed.

  Returns:
    [B] log N(y_obs | 0, K_obs + sigma^2 I) over the observed rows among `rows` of each column.
  """
  def one(r, yc, mc):
    return masked_log_marginal(covariance(params, params["latents"][r]), yc, mc)
  return jax.vmap(one)(rows, y, mask)


def sample_observed_rows(rng: jax.Array, mask: jax.Array, num_rows: int) -> jax.Array:
  """Up to `num_rows` distinct observed rows per column, uniformly (Gumbel top-k).

  Args:
    rng: PRNG key.
    mask: [N, B] 1 = observed.
    num_rows: R <= N.

  Returns:
    [B, R] row indices; when a column has fewer than R observed rows the rest are missing rows,
    which the mask then drops from the likelihood.
  """
  scores = jax.random.gumbel(rng, mask.shape) + jnp.where(mask > 0, 0.0, -1e9)
  return jax.lax.top_k(scores.T, num_rows)[1]


def negative_objective(params: Params, y: jax.Array, mask: jax.Array, num_columns: int,
                       prior_weight: float, rows: jax.Array | None = None,
                       dense: bool = False) -> jax.Array:
  """Minibatch estimate of -(sum_d log p(y_d | X) + w log N(X | 0, I)) / (#observed entries).

  Args:
    params: model parameters.
    y: [N, B] a minibatch of standardised columns; mask: [N, B].
    num_columns: D, the total number of training columns (rescales the minibatch sum).
    prior_weight: w, weight of the standard-normal prior on the latents.
    rows: optional [B, R] rows per column (see `sample_observed_rows`); None = all N rows.
    dense: the columns are fully observed (mask ignored): one shared Cholesky, O(N^3 + N^2 B).

  Returns:
    Scalar loss, normalised per observed entry so learning rates transfer between matrix sizes.
  """
  batch = y.shape[1]
  if dense:
    ll = dense_log_marginal(params, y)
    count = jnp.asarray(y.size, jnp.float32)
  elif rows is None:
    ll = columns_log_marginal(params, y, mask)
    count = jnp.sum(mask)
  else:
    y_r = jnp.take_along_axis(y.T, rows, axis=1)
    m_r = jnp.take_along_axis(mask.T, rows, axis=1)
    ll = subsampled_log_marginal(params, rows, y_r, m_r)
    count = jnp.sum(m_r)
  scale = num_columns / batch
  prior = -0.5 * jnp.sum(params["latents"] ** 2)
  return -(ll.sum() * scale + prior_weight * prior) / (count * scale)


@flax.struct.dataclass
class FitState:
  params: Params
  opt_state: optax.OptState
  step: jax.Array


def make_optimizer(learning_rate: float, grad_clip: float = 1.0) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adam(learning_rate))


def train_step(state: FitState, y: jax.Array, mask: jax.Array, rng: jax.Array, *,
               optimizer: optax.GradientTransformation, batch_size: int,
               prior_weight: float, rows_per_column: int) -> tuple[FitState,
                                                                   dict[str, jax.Array]]:
  """One Adam step on a random minibatch of `batch_size` dataset columns of y [N, D].

  rows_per_column: -1 = the matrix is fully observed (shared-Cholesky path); R > 0 = each column's
  likelihood uses R rows drawn from its observed ones (exact when R >= every column's count).
  """
  num_columns = y.shape[1]
  col_rng, row_rng = jax.random.split(jax.random.fold_in(rng, state.step))
  cols = jax.random.choice(col_rng, num_columns, (batch_size,), replace=False)
  y_b, m_b = y[:, cols], mask[:, cols]
  dense = rows_per_column < 0
  rows = None if dense else sample_observed_rows(row_rng, m_b, rows_per_column)
  loss, grads = jax.value_and_grad(negative_objective)(
      state.params, y_b, m_b, num_columns, prior_weight, rows, dense)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {"loss": loss, "noise": noise_variance(params),
             "signal": jnp.exp(2.0 * params["log_signal"])}
  return FitState(params, opt_state, state.step + 1), metrics


def fit(values: np.ndarray, mask: np.ndarray, rng: jax.Array, *, num_latent: int, num_steps: int,
        batch_size: int, learning_rate: float, prior_weight: float = 1.0,
        init_noise: float = 0.1, max_rows: int = 0, log_every: int = 100,
        log_fn: Callable[[int, dict[str, float]], Any] | None = None) -> Params:
  """Learns the GP-LVM on standardised training columns.

  Args:
    values: [N, D] standardised values, zero at missing entries (see `standardize_columns`).
    mask: [N, D] 1 = observed.
    rng: PRNG key for the minibatch draws.
    num_latent: Q.
    num_steps: Adam steps.
    batch_size: datasets per minibatch (capped at D).
    learning_rate: Adam learning rate.
    prior_weight: weight of the N(0, I) prior on the latents.
    init_noise: initial white-noise variance.
    max_rows: 0 = exact likelihood (each column's observed rows only, so a sparse matrix is cheap);
      > 0 caps the observed rows used per column and step at a random subset of this size (for
      matrices with many pipelines such as the paper's 42k x 553; approximate above the cap).
    log_every: call `log_fn(step, metrics)` every this many steps (and at the last step).
    log_fn: optional host-side logger.

  Returns:
    The learnt parameters.
  """
  if num_steps < 0 or batch_size < 1 or learning_rate <= 0:
    raise ValueError(f"Need num_steps >= 0, batch_size >= 1 and learning_rate > 0; got "
                     f"{num_steps}, {batch_size}, {learning_rate}.")
  params = init_params(pca_latents(values, mask, num_latent), noise=init_noise)
  if np.all(mask > 0):
    rows_per_column = -1
  else:
    rows_per_column = int(np.max(np.sum(mask > 0, axis=0)))
    if max_rows > 0:
      rows_per_column = min(rows_per_column, max_rows)
  optimizer = make_optimizer(learning_rate)
  state = FitState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
  step_fn = jax.jit(functools.partial(train_step, optimizer=optimizer,
                                      batch_size=min(batch_size, values.shape[1]),
                                      prior_weight=prior_weight,
                                      rows_per_column=rows_per_column),
                    donate_argnums=0)
  y, m = jnp.asarray(values), jnp.asarray(mask)
  for i in range(num_steps):
    state, metrics = step_fn(state, y, m, rng)
    if log_fn is not None and ((i + 1) % log_every == 0 or i + 1 == num_steps):
      metrics = {k: float(v) for k, v in metrics.items()}
      if not np.isfinite(metrics["loss"]):
        raise FloatingPointError(f"PMF training loss became {metrics['loss']} at step {i + 1}; "
                                 "lower config.pmf.learning_rate.")
      log_fn(i + 1, metrics)
  return state.params


def ensemble_keys(rng: jax.Array, num_fits: int) -> list[jax.Array]:
  """PRNG keys of an ensemble's members: member 0 uses `rng` itself (so one member is exactly
  the single fit), members 1.. the keys of `jax.random.split(rng, num_fits)[1:]`."""
  if num_fits < 1:
    raise ValueError(f"config.pmf.num_fits={num_fits} must be >= 1.")
  return [rng] + list(jax.random.split(rng, num_fits)[1:])


def stack_params(members: list[Params]) -> Params:
  """Stacks the members' parameters along a new leading ensemble axis: latents [E, N, Q]."""
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)


def member(params: Params, index: int) -> Params:
  """Member `index` of stacked ensemble parameters (`params` itself if not stacked)."""
  if not is_ensemble(params):
    return params
  return jax.tree.map(lambda leaf: leaf[index], params)


def is_ensemble(params: Params) -> bool:
  """Whether `params` holds a stack of fits (latents [E, N, Q]) rather than one ([N, Q])."""
  return params["latents"].ndim == 3


def fit_ensemble(values: np.ndarray, mask: np.ndarray, rng: jax.Array, num_fits: int = 1,
                 log_fn: Callable[[int, int, dict[str, float]], Any] | None = None,
                 **fit_kwargs) -> Params:
  """`num_fits` GP-LVM fits of the same matrix that differ only in their PRNG key.

  The PCA initialisation is deterministic, so the members differ through the random minibatches
  of datasets (and, with `max_rows`, the random row subsets) that Adam sees; on OBOE two such fits
  give visibly different BO results (experiments/pmf_automl.md), which an ensemble averages out.

  Args:
    values, mask: as in `fit`.
    rng: PRNG key; member 0 uses it unchanged (see `ensemble_keys`).
    num_fits: E. 1 returns exactly `fit(values, mask, rng, ...)`, unstacked.
    log_fn: optional host-side logger called as log_fn(member, step, metrics).
    **fit_kwargs: the keyword arguments of `fit` (num_latent, num_steps, ...), except log_fn.

  Returns:
    The parameters of one fit (num_fits == 1) or of all fits stacked on a leading axis of size
    E (`stack_params`), which `bayesopt.bo_search` treats as an ensemble.
  """
  members = []
  for e, key in enumerate(ensemble_keys(rng, num_fits)):
    log = None if log_fn is None else functools.partial(log_fn, e)
    members.append(fit(values, mask, key, log_fn=log, **fit_kwargs))
  return members[0] if num_fits == 1 else stack_params(members)
