"""Linear mixed model likelihood in the eigenbasis of the kinship (FaST-LMM; Lippert et al. 2011).

Model (Fusi et al. 2014, Eq. 1): y ~ N(X beta, sigma_g^2 K + sigma_e^2 I)
  = N(X beta, sigma_g^2 (K + delta I)),
delta = sigma_e^2 / sigma_g^2. With K = U diag(s) U^T (one O(N^3) eigendecomposition) and rotated
data y~ = U^T y, X~ = U^T X the covariance is diagonal, diag(s + delta), so every likelihood
evaluation costs O(N p^2). beta and sigma_g^2 are profiled out in closed form, leaving a
one-dimensional search over log delta (grid + Brent), for ML or REML.

All arrays are float64: public functions run under `jax.enable_x64` (the `x64` decorator) without
changing the global JAX configuration.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

LOG_DELTA_BOUNDS = (-10.0, 10.0)


def x64(fn):
  """Runs `fn` with 64-bit JAX arrays enabled (restored afterwards)."""

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)

  return wrapped


class Eigen(NamedTuple):
  """K = U diag(s) U^T.

  Attributes:
    s: [N] eigenvalues (clipped at 0).
    U: [N, N] orthonormal eigenvectors (columns).
  """
  s: np.ndarray
  U: np.ndarray


class NullModel(NamedTuple):
  """A fitted LMM without the tested SNP (all arrays float64).

  Attributes:
    log_delta: [] log(sigma_e^2 / sigma_g^2).
    beta: [p] fixed effects.
    sigma_g2: [] genetic variance (per unit of K).
    sigma_e2: [] residual variance.
    log_lik: [] maximised ML or REML log-likelihood.
    h2: [] heritability sigma_g^2 k / (sigma_g^2 k + sigma_e^2), k = mean(diag K).
    reml: whether the REML criterion was used.
  """
  log_delta: float
  beta: np.ndarray
  sigma_g2: float
  sigma_e2: float
  log_lik: float
  h2: float
  reml: bool


def eigendecompose(kinship: np.ndarray) -> Eigen:
  """Eigendecomposition of a symmetric PSD kinship [N, N] in float64 (LAPACK, on the host)."""
  kinship = np.asarray(kinship, np.float64)
  if kinship.ndim != 2 or kinship.shape[0] != kinship.shape[1]:
    raise ValueError(f"kinship must be a square [N, N] matrix, got shape {kinship.shape}.")
  if not np.all(np.isfinite(kinship)):
    raise ValueError("kinship contains NaN/inf; rebuild it from genotypes without missing values.")
  s, u = np.linalg.eigh(0.5 * (kinship + kinship.T))
  return Eigen(s=np.clip(s, 0.0, None), U=u)


_matmul = jax.jit(jnp.matmul)


@x64
def rotate(eig: Eigen, *arrays: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, ...]:
  """U^T a for each array a ([N] or [N, M]); wide arrays go through in column chunks of `chunk`.

  Returns:
    The rotated arrays, float64 NumPy, same shapes as the inputs.
  """
  ut = jnp.asarray(eig.U.T)
  matmul = _matmul
  out = []
  for a in arrays:
    a = np.asarray(a, np.float64)
    if a.shape[0] != ut.shape[0]:
      raise ValueError(f"Array with {a.shape[0]} rows does not match the kinship's {ut.shape[0]} "
                       "individuals; subset the kinship and the data to the same individuals.")
    if a.ndim == 1:
      out.append(np.asarray(matmul(ut, a)))
      continue
    cols = [np.asarray(matmul(ut, jnp.asarray(a[:, i:i + chunk])))
            for i in range(0, a.shape[1], chunk)]
    out.append(np.concatenate(cols, axis=1) if cols else np.zeros_like(a))
  return tuple(out)


def profile(log_delta: jax.Array, yr: jax.Array, xr: jax.Array, s: jax.Array,
            reml: bool) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Profiled log-likelihood at a given delta (Lippert et al. 2011, Eqs. 2-3 of the supplement).

  Args:
    log_delta: [] log(sigma_e^2 / sigma_g^2).
    yr: [N] rotated phenotype U^T y.
    xr: [N, p] rotated covariates U^T X.
    s: [N] kinship eigenvalues.
    reml: REML (restricted) instead of ML likelihood.

  Returns:
    (log_lik [], beta [p], sigma_g2 []) at the optimum over beta and sigma_g^2.
  """
  n, p = xr.shape
  w = 1.0 / (s + jnp.exp(log_delta))
  xtwx = (xr * w[:, None]).T @ xr
  xtwy = (xr * w[:, None]).T @ yr
  chol = jnp.linalg.cholesky(xtwx)
  beta = jax.scipy.linalg.cho_solve((chol, True), xtwy)
  resid = yr - xr @ beta
  rss = jnp.sum(w * resid * resid)
  logdet_v = -jnp.sum(jnp.log(w))  # log|K + delta I|
  if reml:
    dof = n - p
    sigma_g2 = rss / dof
    logdet_xtwx = 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
    logdet_xtx = jnp.linalg.slogdet(xr.T @ xr)[1]
    ll = -0.5 * (dof * jnp.log(2.0 * jnp.pi * sigma_g2) + logdet_v + logdet_xtwx - logdet_xtx + dof)
  else:
    sigma_g2 = rss / n
    ll = -0.5 * (n * jnp.log(2.0 * jnp.pi * sigma_g2) + logdet_v + n)
  return ll, beta, sigma_g2


@functools.partial(jax.jit, static_argnames="reml")
def _grid_log_lik(grid, yr, xr, s, reml):
  return jax.vmap(lambda ld: profile(ld, yr, xr, s, reml)[0])(grid)


@functools.partial(jax.jit, static_argnames="reml")
def _log_lik(log_delta, yr, xr, s, reml):
  return profile(log_delta, yr, xr, s, reml)


@x64
def fit_null(yr: np.ndarray, xr: np.ndarray, s: np.ndarray, reml: bool = True,
             num_grid: int = 100) -> NullModel:
  """Maximises the profiled likelihood over log delta: a grid, then bounded Brent around its best.

  Args:
    yr: [N] rotated phenotype.
    xr: [N, p] rotated covariates (include the intercept).
    s: [N] kinship eigenvalues.
    reml: REML (default, unbiased h2) or ML.
    num_grid: grid points over `LOG_DELTA_BOUNDS`.

  Returns:
    The fitted `NullModel`.
  """
  yr, xr, s = (jnp.asarray(a, jnp.float64) for a in (yr, xr, s))
  if not bool(jnp.all(jnp.isfinite(yr))):
    raise ValueError("The phenotype contains NaN/inf; drop missing individuals first "
                     "(see metanas.lmm.gwas.drop_missing).")
  grid = jnp.linspace(*LOG_DELTA_BOUNDS, num_grid)
  lls = np.asarray(_grid_log_lik(grid, yr, xr, s, reml))
  i = int(np.nanargmax(lls))
  lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, num_grid - 1)])
  res = scipy.optimize.minimize_scalar(lambda ld: -float(_log_lik(ld, yr, xr, s, reml)[0]),
                                       bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-6})
  log_delta = float(res.x) if -res.fun >= lls[i] else float(grid[i])
  ll, beta, sigma_g2 = _log_lik(log_delta, yr, xr, s, reml)
  sigma_g2 = float(sigma_g2)
  sigma_e2 = sigma_g2 * float(np.exp(log_delta))
  return NullModel(log_delta=log_delta, beta=np.asarray(beta), sigma_g2=sigma_g2,
                   sigma_e2=sigma_e2, log_lik=float(ll),
                   h2=heritability(sigma_g2, sigma_e2, float(np.mean(s))), reml=reml)


def heritability(sigma_g2: float, sigma_e2: float, mean_diag_k: float = 1.0) -> float:
  """Narrow-sense h2 = sigma_g^2 k / (sigma_g^2 k + sigma_e^2), k = mean(diag K) = mean(s)."""
  g = sigma_g2 * mean_diag_k
  return float(g / (g + sigma_e2))


@x64
def predict(eig: Eigen, null: NullModel, y: np.ndarray, x: np.ndarray, k_cross: np.ndarray,
            x_test: np.ndarray, k_test_diag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Best linear unbiased prediction (BLUP) of test phenotypes, mean and variance.

  mean* = X* beta + K*^T (K + delta I)^{-1} (y - X beta),
  var*  = sigma_g^2 (diag K** + delta - diag(K*^T (K + delta I)^{-1} K*)).

  Args:
    eig: eigendecomposition of the training kinship [N, N].
    null: fitted null model on the training data.
    y: [N] training phenotypes (on the scale the LMM was fitted, e.g. warped).
    x: [N, p] training covariates.
    k_cross: [N, T] kinship between training and test individuals.
    x_test: [T, p] test covariates.
    k_test_diag: [T] diagonal of the test kinship.

  Returns:
    (mean [T], var [T]) of the predictive Gaussian.
  """
  delta = np.exp(null.log_delta)
  w = 1.0 / (eig.s + delta)
  resid = eig.U.T @ (np.asarray(y, np.float64) - x @ null.beta)
  kr = eig.U.T @ np.asarray(k_cross, np.float64)  # [N, T]
  mean = x_test @ null.beta + kr.T @ (w * resid)
  var = null.sigma_g2 * (k_test_diag + delta - np.sum(kr * kr * w[:, None], axis=0))
  return mean, np.maximum(var, 1e-12)
