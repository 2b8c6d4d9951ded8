"""GP log-likelihood and posterior for a low-rank-plus-noise covariance K = F F^T + s_n I.

GPPVAE (Casale et al. 2018, arXiv 1810.11738, Sec. 3.2) puts an independent GP prior with one shared
kernel on every latent column Z[:, l]. With a kernel of rank R << N, the Woodbury identity

  K^{-1} = (I - F A^{-1} F^T) / s_n,   A = s_n I_R + F^T F            [R, R]

and the matrix determinant lemma

  log|K| = (N - R) log s_n + log|A|

give the log-likelihood, its gradient with respect to Z and the posterior in O(N R^2 + N R L) time
and O(N R) memory; no N x N matrix is ever formed. A is positive definite whenever s_n > 0 (its
smallest eigenvalue is at least s_n), so its Cholesky factor always exists; the kernels in
`metanas.gp.kernels` keep s_n above a floor for that reason.
"""

import math

import jax
import jax.numpy as jnp
from jax.scipy import linalg as jsl


def _chol_inner(features: jax.Array, noise: jax.Array) -> jax.Array:
  """Lower Cholesky factor of A = s_n I_R + F^T F ([N, R] -> [R, R])."""
  r = features.shape[1]
  a = noise * jnp.eye(r, dtype=features.dtype) + features.T @ features
  return jnp.linalg.cholesky(a)


def log_likelihood(features: jax.Array, noise: jax.Array, z: jax.Array) -> jax.Array:
  """sum_l log N(Z[:, l] | 0, F F^T + s_n I) by Woodbury + determinant lemma (paper Eq. 6).

  Args:
    features: F [N, R], the kernel's feature rows (K = F F^T + s_n I).
    noise: s_n > 0, scalar.
    z: [N, L] latent matrix; columns are independent GP draws with the same kernel.

  Returns:
    Scalar log-likelihood summed over the L columns.
  """
  return log_likelihood_from_stats(features.T @ features, features.T @ z, jnp.sum(z * z), noise,
                                   z.shape[0])


def log_likelihood_from_stats(ftf: jax.Array, ftz: jax.Array, zz: jax.Array, noise: jax.Array,
                              n: int) -> jax.Array:
  """`log_likelihood` from its sufficient statistics F^T F [R, R], F^T Z [R, L] and ||Z||^2.

  The data enter only through these sums over rows, so they can be accumulated over minibatches
  (GPPVAE's low-memory backprop, `metanas.gp.gppvae.lowmem_grad`).
  """
  r, num_latent = ftz.shape
  chol = jnp.linalg.cholesky(noise * jnp.eye(r, dtype=ftf.dtype) + ftf)
  w = jsl.solve_triangular(chol, ftz, lower=True)  # [R, L]; ||w||^2 = tr(Z'FA^-1F'Z).
  quad = (zz - jnp.sum(w * w)) / noise
  logdet = (n - r) * jnp.log(noise) + 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))
  return -0.5 * (n * num_latent * math.log(2 * math.pi) + num_latent * logdet + quad)


def solve(features: jax.Array, noise: jax.Array, z: jax.Array) -> jax.Array:
  """K^{-1} Z by Woodbury ([N, R], scalar, [N, L] -> [N, L]); -K^{-1} Z is d loglik / dZ."""
  chol = _chol_inner(features, noise)
  a_inv_ftz = jsl.cho_solve((chol, True), features.T @ z)
  return (z - features @ a_inv_ftz) / noise


def posterior(features: jax.Array, noise: jax.Array, z: jax.Array,
              test_features: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Noise-free GP posterior of the latent function at test inputs (paper Sec. 3.4, prediction).

  With K_*n = F_* F^T: mean = F_* A^{-1} F^T Z and var = diag(F_* F_*^T) - diag(F_* F^T K^{-1}
  F F_*^T) = s_n diag(F_* A^{-1} F_*^T), both O(M R^2).

  Args:
    features: F [N, R] of the training inputs.
    noise: s_n, scalar.
    z: [N, L] training latents (e.g. encoder means).
    test_features: F_* [M, R].

  Returns:
    (mean [M, L], variance [M]; the same for every latent column).
  """
  chol = _chol_inner(features, noise)
  mean = test_features @ jsl.cho_solve((chol, True), features.T @ z)
  half = jsl.solve_triangular(chol, test_features.T, lower=True)  # [R, M]
  return mean, noise * jnp.sum(half * half, axis=0)
