"""Warped LMM: joint maximum likelihood of the warping and the LMM (Fusi et al. 2014).

  log p(y) = log N(f(y); X beta, sigma_g^2 (K + delta I)) + sum_n log f'(y_n)     (Eq. 3)

with f the monotone tanh warping of `warping.py`. beta and sigma_g^2 are profiled out in closed form
(`lmm.profile`), so the optimiser (L-BFGS-B on JAX gradients) sees only the 3 * num_terms + 1
warping parameters and log delta. Each evaluation rotates f(y) once (U^T f(y): O(N^2)) and is
otherwise O(N p^2); the O(N^3) eigendecomposition is done once. Random restarts guard against
local optima.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from metanas.lmm import lmm
from metanas.lmm import warping

# Bounds of the unconstrained parameters (the warping acts on the standardised phenotype).
_BOUNDS = {"log_a": (-8.0, 3.0), "log_b": (-4.0, 3.0), "c": (-4.0, 4.0), "log_d": (-8.0, 3.0)}


class WarpedFit(NamedTuple):
  """Result of `fit`.

  Attributes:
    warp: the learnt `warping.WarpParams`.
    log_delta: [] jointly fitted log(sigma_e^2 / sigma_g^2).
    log_lik: [] maximised warped log-likelihood (Eq. 3, original scale of y).
    restart_log_liks: [num_restarts] final log-likelihood of every restart.
  """
  warp: warping.WarpParams
  log_delta: float
  log_lik: float
  restart_log_liks: np.ndarray


def log_likelihood(warp: warping.WarpParams, log_delta: jax.Array, y: jax.Array, ut: jax.Array,
                   xr: jax.Array, s: jax.Array, reml: bool = False) -> jax.Array:
  """Warped LMM log-likelihood (Eq. 3), beta and sigma_g^2 profiled.

  Args:
    warp: warping parameters.
    log_delta: [] log variance ratio.
    y: [N] phenotype on the original scale.
    ut: [N, N] U^T, the transposed kinship eigenvectors.
    xr: [N, p] rotated covariates U^T X.
    s: [N] kinship eigenvalues.
    reml: restricted likelihood of the warped phenotype instead of ML.

  Returns:
    [] log p(y).
  """
  zr = ut @ warping.apply(warp, y)
  ll, _, _ = lmm.profile(log_delta, zr, xr, s, reml)
  return ll + warping.log_jacobian(warp, y)


def _pack(raw: dict, log_delta) -> np.ndarray:
  """Flat optimiser vector [log_a (T), log_b (T), c (T), log_d, log_delta]."""
  return np.concatenate([np.ravel(raw["log_a"]), np.ravel(raw["log_b"]), np.ravel(raw["c"]),
                         np.ravel(raw["log_d"]), np.ravel(log_delta)]).astype(np.float64)


def _unpack(flat: jax.Array, num_terms: int) -> tuple[dict, jax.Array]:
  t = num_terms
  raw = {"log_a": flat[:t], "log_b": flat[t:2 * t], "c": flat[2 * t:3 * t], "log_d": flat[3 * t]}
  return raw, flat[3 * t + 1]


def _objective(flat, y, ut, xr, s, loc, scale, num_terms, reml):
  """Mean negative warped log-likelihood of the flat parameter vector (module level: jit once)."""
  raw, log_delta = _unpack(flat, num_terms)
  warp = warping.constrain(raw, loc, scale)
  return -log_likelihood(warp, log_delta, y, ut, xr, s, reml) / y.shape[0]


_value_and_grad = jax.jit(jax.value_and_grad(_objective), static_argnames=("num_terms", "reml"))


def _initial_raw(rng: np.random.Generator, num_terms: int, identity_like: bool) -> dict:
  if identity_like:
    return {"log_a": np.full(num_terms, -3.0), "log_b": np.zeros(num_terms),
            "c": np.linspace(-1.0, 1.0, num_terms), "log_d": np.zeros(())}
  return {"log_a": rng.normal(-0.5, 1.0, num_terms), "log_b": rng.normal(0.0, 0.7, num_terms),
          "c": rng.uniform(-2.0, 2.0, num_terms), "log_d": np.asarray(rng.normal(-1.0, 1.0))}


@lmm.x64
def fit(y: np.ndarray, x: np.ndarray, eig: lmm.Eigen, num_terms: int = 3, num_restarts: int = 5,
        seed: int = 0, reml: bool = False, max_iter: int = 500) -> WarpedFit:
  """Learns the warping and the LMM variance ratio jointly by maximum likelihood.

  Args:
    y: [N] phenotype (no NaN; see `gwas.drop_missing`).
    x: [N, p] covariates including the intercept.
    eig: eigendecomposition of the [N, N] kinship of the same individuals.
    num_terms: tanh terms of the warping (paper default 3).
    num_restarts: random restarts (the first starts near the identity warping).
    seed: seed of the restarts' initial values.
    reml: maximise the REML instead of the ML criterion.
    max_iter: L-BFGS-B iterations per restart.

  Returns:
    The best `WarpedFit` over restarts.
  """
  y = np.asarray(y, np.float64)
  x = np.asarray(x, np.float64)
  if not np.all(np.isfinite(y)):
    raise ValueError(f"y has {int((~np.isfinite(y)).sum())} NaN/inf values; drop those individuals "
                     "first (gwas.drop_missing).")
  if x.shape[0] != y.shape[0] or eig.U.shape[0] != y.shape[0]:
    raise ValueError(f"y [{y.shape[0]}], covariates {x.shape} and kinship {eig.U.shape} must cover "
                     "the same individuals.")
  if num_restarts < 1:
    raise ValueError(f"num_restarts must be >= 1, got {num_restarts}.")
  loc, scale = float(np.mean(y)), float(np.std(y))
  if scale == 0:
    raise ValueError("y is constant; a warping (and an LMM) needs a varying phenotype.")
  ut = jnp.asarray(eig.U.T)
  xr = ut @ jnp.asarray(x)
  s = jnp.asarray(eig.s)
  yj = jnp.asarray(y)

  rng = np.random.default_rng(seed)
  null0 = lmm.fit_null(np.asarray(ut @ ((yj - loc) / scale)), np.asarray(xr), eig.s, reml=reml)
  lower = _pack({k: np.full(num_terms if k != "log_d" else (), b[0]) for k, b in _BOUNDS.items()},
                lmm.LOG_DELTA_BOUNDS[0])
  upper = _pack({k: np.full(num_terms if k != "log_d" else (), b[1]) for k, b in _BOUNDS.items()},
                lmm.LOG_DELTA_BOUNDS[1])
  bounds = list(zip(lower, upper))
  data = (yj, ut, xr, s, jnp.asarray(loc), jnp.asarray(scale))

  def fun(v):
    val, grad = _value_and_grad(jnp.asarray(v), *data, num_terms=num_terms, reml=reml)
    val = float(val)
    if not np.isfinite(val):
      return 1e10, np.zeros_like(v)
    return val, np.asarray(grad, np.float64)

  best, lls = None, []
  for r in range(num_restarts):
    v0 = np.clip(_pack(_initial_raw(rng, num_terms, r == 0), null0.log_delta), lower, upper)
    res = scipy.optimize.minimize(fun, v0, jac=True, method="L-BFGS-B", bounds=bounds,
                                  options={"maxiter": max_iter})
    ll = -float(res.fun) * y.shape[0]
    lls.append(ll)
    if best is None or ll > best[0]:
      best = (ll, res.x)
  raw, log_delta = _unpack(jnp.asarray(best[1]), num_terms)
  warp = jax.tree.map(np.asarray, warping.constrain(raw, loc, scale))
  return WarpedFit(warp=warping.WarpParams(*warp), log_delta=float(log_delta),
                   log_lik=float(best[0]), restart_log_liks=np.asarray(lls))


@lmm.x64
def predictive_log_density(warp: warping.WarpParams, y: np.ndarray, mean_z: np.ndarray,
                           var_z: np.ndarray) -> np.ndarray:
  """Marginal predictive log density of original-scale y: log N(f(y); mean, var) + log f'(y). [T]"""
  z = warping.apply(warp, jnp.asarray(y))
  lp = jax.scipy.stats.norm.logpdf(z, jnp.asarray(mean_z), jnp.sqrt(jnp.asarray(var_z)))
  return np.asarray(lp + jnp.log(warping.derivative(warp, jnp.asarray(y))))


@functools.partial(jax.jit, static_argnames="num_points")
def _gh_mean(warp, mean_z, var_z, num_points):
  nodes, weights = np.polynomial.hermite_e.hermegauss(num_points)
  zs = mean_z[:, None] + jnp.sqrt(var_z)[:, None] * nodes
  return warping.inverse(warp, zs) @ (weights / weights.sum())


@lmm.x64
def predict_original_scale(warp: warping.WarpParams, mean_z: np.ndarray, var_z: np.ndarray,
                           num_points: int = 20) -> tuple[np.ndarray, np.ndarray]:
  """Median f^{-1}(mean) and mean E[f^{-1}(z)] (Gauss-Hermite) of the original-scale prediction.

  Args:
    warp: the warping.
    mean_z: [T] predictive means on the warped scale.
    var_z: [T] predictive variances on the warped scale.
    num_points: Gauss-Hermite nodes.

  Returns:
    (median [T], mean [T]) on the original scale.
  """
  median = np.asarray(warping.inverse(warp, jnp.asarray(mean_z)))
  mean = np.asarray(_gh_mean(warp, jnp.asarray(mean_z), jnp.asarray(var_z), num_points))
  return median, mean
