"""FaST-LMM style GWAS scan: per-SNP fixed effect at a fixed variance ratio (Lippert et al. 2011).

For SNP j with rotated genotype g~ = U^T g and weights w = 1 / (s + delta), the test regresses the
rotated phenotype on [X~, g~] by weighted least squares. With the covariates profiled out by the
Schur complement (all O(N p) per SNP):

  gg = g~'Wg~ - g~'WX~ (X~'WX~)^{-1} X~'Wg~,   gy = g~'Wy~ - g~'WX~ (X~'WX~)^{-1} X~'Wy~,
  beta_j = gy / gg,   RSS_1 = RSS_0 - gy^2 / gg,
  Wald:  chi2 = beta_j^2 gg / (RSS_1 / (N - p - 1)),
  LRT:   chi2 = N log(RSS_0 / RSS_1)   (ML, sigma_g^2 profiled, delta fixed),

both against chi^2_1. The per-SNP function is written for one SNP and `vmap`ped in chunks by
`jax.lax.map(..., batch_size=chunk)`. A SNP whose residual variance gg vanishes (monomorphic, or
collinear with the covariates) gets NaN statistics and `valid = False`.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from metanas.lmm import lmm

# Chi^2_1 median; lambda_GC = median(chi2) / this.
CHI2_1_MEDIAN = 0.454936423119572


class ScanResult(NamedTuple):
  """Per-SNP results, each [M] (NumPy)."""
  beta: np.ndarray
  se: np.ndarray
  chi2_wald: np.ndarray
  chi2_lrt: np.ndarray
  pval_wald: np.ndarray
  pval_lrt: np.ndarray
  valid: np.ndarray


def drop_missing(y: np.ndarray) -> tuple[np.ndarray, int]:
  """Mask of individuals with an observed phenotype, and how many were dropped (NaN/inf)."""
  keep = np.isfinite(np.asarray(y, np.float64))
  return keep, int((~keep).sum())


def chi2_sf(stat: jax.Array) -> jax.Array:
  """Upper tail of chi^2 with 1 degree of freedom (accurate to ~1e-300 in float64)."""
  return jax.scipy.special.gammaincc(0.5, 0.5 * stat)


def _snp_stats(gr, w, xr, yr, xtwx_inv, xtwy, rss0, n, p, tol):
  """Statistics of one SNP. gr: [N] rotated genotype; returns a tuple of scalars."""
  wg = w * gr
  xtwg = xr.T @ wg
  gtwg = gr @ wg
  gg = gtwg - xtwg @ xtwx_inv @ xtwg
  gy = yr @ wg - xtwg @ xtwx_inv @ xtwy
  valid = gg > tol * jnp.maximum(gtwg, 1e-300)
  gg = jnp.where(valid, gg, jnp.nan)
  beta = gy / gg
  rss1 = rss0 - gy * gy / gg
  sigma2 = rss1 / (n - p - 1)
  se = jnp.sqrt(sigma2 / gg)
  chi2_wald = (beta / se) ** 2
  chi2_lrt = n * (jnp.log(rss0) - jnp.log(rss1))
  return beta, se, chi2_wald, chi2_lrt, valid


@functools.partial(jax.jit, static_argnames="chunk")
def _scan(log_delta, yr, xr, s, gr, chunk):
  n, p = xr.shape
  m = gr.shape[1]
  w = 1.0 / (s + jnp.exp(log_delta))
  xtwx_inv = jnp.linalg.inv((xr * w[:, None]).T @ xr)
  xtwy = xr.T @ (w * yr)
  rss0 = yr @ (w * yr) - xtwy @ xtwx_inv @ xtwy
  per_snp = functools.partial(_snp_stats, w=w, xr=xr, yr=yr, xtwx_inv=xtwx_inv, xtwy=xtwy,
                              rss0=rss0, n=n, p=p, tol=1e-8)
  batched = jax.vmap(per_snp, in_axes=1)  # Written for one SNP, vmapped over a chunk of columns.
  num_full = m // chunk
  # Full chunks sliced in place from the [N, M] matrix (no transposed copy), then the remainder.
  outs = jax.lax.map(lambda i: batched(jax.lax.dynamic_slice_in_dim(gr, i * chunk, chunk, axis=1)),
                     jnp.arange(num_full))
  outs = [o.reshape(-1) for o in outs]
  if m > num_full * chunk:
    rest = batched(gr[:, num_full * chunk:])
    outs = [jnp.concatenate([o, r]) for o, r in zip(outs, rest)]
  beta, se, chi2_wald, chi2_lrt, valid = outs
  return beta, se, chi2_wald, chi2_lrt, chi2_sf(chi2_wald), chi2_sf(chi2_lrt), valid


@lmm.x64
def scan(log_delta: float, yr: np.ndarray, xr: np.ndarray, s: np.ndarray, gr: np.ndarray,
         chunk: int = 1024, polymorphic: np.ndarray | None = None) -> ScanResult:
  """Tests every SNP at the fixed variance ratio delta (FaST-LMM).

  Args:
    log_delta: log(sigma_e^2 / sigma_g^2) of the null model (`lmm.fit_null`).
    yr: [N] rotated phenotype.
    xr: [N, p] rotated covariates, including the intercept.
    s: [N] kinship eigenvalues.
    gr: [N, M] rotated genotypes U^T G (pass a float64 jax array to avoid a copy per call).
    chunk: SNPs per vmapped batch (bounds memory to O(N * chunk)).
    polymorphic: optional [M] mask; False forces NaN statistics (e.g. monomorphic SNPs).

  Returns:
    `ScanResult`; invalid SNPs have NaN statistics and p-values.
  """
  yr, xr, s = (np.asarray(a, np.float64) for a in (yr, xr, s))
  gr = jnp.asarray(gr, jnp.float64)  # No copy when already a float64 device array.
  if gr.ndim != 2 or gr.shape[0] != yr.shape[0]:
    raise ValueError(f"Rotated genotypes must be [N={yr.shape[0]}, M], got {gr.shape}.")
  out = _scan(jnp.asarray(log_delta), jnp.asarray(yr), jnp.asarray(xr), jnp.asarray(s), gr,
              chunk=max(1, min(chunk, gr.shape[1])))
  beta, se, cw, cl, pw, pl, valid = (np.asarray(a) for a in out)
  if polymorphic is not None:
    valid = valid & np.asarray(polymorphic, bool)
  nan = lambda a: np.where(valid, a, np.nan)
  return ScanResult(beta=nan(beta), se=nan(se), chi2_wald=nan(cw), chi2_lrt=nan(cl),
                    pval_wald=nan(pw), pval_lrt=nan(pl), valid=valid)


def stepwise(yr: np.ndarray, xr: np.ndarray, s: np.ndarray, gr: np.ndarray, threshold: float,
             max_steps: int = 10, reml: bool = True, test: str = "lrt",
             polymorphic: np.ndarray | None = None, chunk: int = 1024) -> list[int]:
  """Forward selection: add the top SNP as a covariate while its p-value < `threshold`.

  The variance ratio is re-estimated after each added SNP. Returns the selected SNP indices, in
  order.
  """
  selected: list[int] = []
  x = np.asarray(xr, np.float64)
  for _ in range(max_steps):
    null = lmm.fit_null(yr, x, s, reml=reml)
    res = scan(null.log_delta, yr, x, s, gr, chunk=chunk, polymorphic=polymorphic)
    pvals = res.pval_lrt if test == "lrt" else res.pval_wald
    if selected:
      pvals = pvals.copy()
      pvals[selected] = np.nan
    if not np.any(np.isfinite(pvals)):
      break
    j = int(np.nanargmin(pvals))
    if pvals[j] >= threshold:
      break
    selected.append(j)
    x = np.concatenate([x, gr[:, j:j + 1]], axis=1)
  return selected


def genomic_control(pvals: np.ndarray) -> float:
  """lambda_GC = median chi^2_1 quantile of the p-values / 0.4549 (NaNs ignored)."""
  p = np.asarray(pvals, np.float64)
  p = p[np.isfinite(p)]
  if p.size == 0:
    return float("nan")
  return float(np.median(scipy.stats.chi2.isf(p, 1)) / CHI2_1_MEDIAN)


def clump_loci(pvals: np.ndarray, chrom: np.ndarray, mbp: np.ndarray, threshold: float,
               window_mb: float) -> list[int]:
  """Greedy clumping: most significant SNP first; SNPs within `window_mb` on its chromosome join it.

  Returns:
    Index of the lead SNP of each locus with p < threshold, most significant first.
  """
  p = np.asarray(pvals, np.float64)
  order = np.argsort(np.where(np.isfinite(p), p, np.inf))
  taken = np.zeros(p.shape, bool)
  leads = []
  for j in order:
    if not np.isfinite(p[j]) or p[j] >= threshold:
      break
    if taken[j]:
      continue
    leads.append(int(j))
    taken |= (chrom == chrom[j]) & (np.abs(mbp - mbp[j]) <= window_mb)
  return leads
