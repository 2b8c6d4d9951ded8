"""Speed of the FaST-LMM style scan against dense per-SNP references (host timing, wall clock).

Times (i) our scan on all individuals x SNPs: eigendecomposition, rotation, null fit, scan
(first call incl. compilation, second call cached); (ii) a dense NumPy GLS per SNP at the same
variance ratio (Cholesky of V once, O(N^2) solves per SNP), which must give the same statistics;
(iii) statsmodels' MixedLM (if installed) with the kinship as a variance component (random effects
design L, L L^T = K) refitted per SNP on a subset of individuals. Both references are timed on a
few SNPs and extrapolated linearly to all SNPs.
"""

import time

import numpy as np
import scipy.linalg
from absl import logging
from ml_collections import config_dict

from metanas.lmm import gwas
from metanas.lmm import kinship
from metanas.lmm import lmm


def dense_gls_chi2(y: np.ndarray, x: np.ndarray, kin: np.ndarray, log_delta: float,
                   g: np.ndarray) -> np.ndarray:
  """Per-SNP LRT chi^2 at fixed delta with dense linear algebra (no eigendecomposition).

  Args:
    y: [N] phenotype; x: [N, p] covariates; kin: [N, N] kinship; log_delta: variance ratio;
    g: [N, J] genotypes of the J tested SNPs.

  Returns:
    [J] LRT statistics N log(RSS_0 / RSS_1).
  """
  n = y.shape[0]
  chol = scipy.linalg.cho_factor(kin + np.exp(log_delta) * np.eye(n), lower=True)

  def rss(a):
    vinv_a = scipy.linalg.cho_solve(chol, a)
    beta = np.linalg.solve(a.T @ vinv_a, vinv_a.T @ y)
    r = y - a @ beta
    return r @ scipy.linalg.cho_solve(chol, r)

  rss0 = rss(x)
  return np.array([n * np.log(rss0 / rss(np.column_stack([x, g[:, j]])))
                   for j in range(g.shape[1])])


def _statsmodels_per_snp(y, x, kin, g, max_iter):
  import statsmodels.api as sm  # pylint: disable=g-import-not-at-top
  s, u = np.linalg.eigh(kin)
  design = u * np.sqrt(np.clip(s, 0, None))  # design @ design.T = K.
  groups = np.zeros(y.shape[0])
  fits = []
  t0 = time.time()
  for j in range(g.shape[1]):
    model = sm.MixedLM(y, np.column_stack([x, g[:, j]]), groups, exog_vc={"kinship": {0: design}})
    fits.append(model.fit(reml=True, maxiter=max_iter))
  return (time.time() - t0) / g.shape[1], fits


def benchmark(geno: np.ndarray, k_full: np.ndarray, arrays: dict, cfg: config_dict.ConfigDict,
              gwas_config: config_dict.ConfigDict, rng: np.random.Generator) -> dict:
  """Runs the timings described in the module docstring; returns a flat dict of seconds."""
  names = list(arrays["pheno_names"])
  y = arrays["pheno"][:, names.index(cfg.trait)].astype(np.float64)
  keep, dropped = gwas.drop_missing(y)
  y, g = y[keep], geno[keep]
  kin = k_full[np.ix_(keep, keep)]
  x = np.ones((y.shape[0], 1))
  _, poly = kinship.standardise(g)
  out = {"trait": cfg.trait, "num_individuals": int(y.shape[0]), "num_snps": int(g.shape[1]),
         "num_dropped_missing": dropped}
  t = time.time()
  eig = lmm.eigendecompose(kin)
  out["eigh_sec"] = time.time() - t
  t = time.time()
  gr, yr, xr = lmm.rotate(eig, g, y, x)
  out["rotate_sec"] = time.time() - t
  t = time.time()
  null = lmm.fit_null(yr, xr, eig.s, reml=gwas_config.reml)
  out["null_fit_sec"] = time.time() - t
  for name in ("scan_first_call_sec", "scan_cached_sec"):
    t = time.time()
    res = gwas.scan(null.log_delta, yr, xr, eig.s, gr, chunk=gwas_config.chunk, polymorphic=poly)
    out[name] = time.time() - t
  out["total_sec"] = out["eigh_sec"] + out["rotate_sec"] + out["null_fit_sec"] + out[
      "scan_first_call_sec"]
  # Dense GLS reference at the same delta, on a few polymorphic SNPs.
  snps = rng.choice(np.where(poly)[0], min(cfg.dense_snps, int(poly.sum())), replace=False)
  t = time.time()
  chi2_dense = dense_gls_chi2(y, x, kin, null.log_delta, g[:, snps].astype(np.float64))
  per_snp = (time.time() - t) / len(snps)
  out["dense_gls_sec_per_snp"] = per_snp
  out["dense_gls_extrapolated_sec"] = per_snp * g.shape[1]
  out["dense_vs_scan_max_abs_chi2_diff"] = float(np.max(np.abs(chi2_dense - res.chi2_lrt[snps])))
  # statsmodels MixedLM on a subset of individuals (it refits the variance components per SNP).
  try:
    import statsmodels  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    out["statsmodels"] = "not installed (pip install statsmodels to time it)"
    return out
  sub = np.sort(rng.choice(y.shape[0], min(cfg.statsmodels_individuals, y.shape[0]), replace=False))
  sub_snps = rng.choice(np.where(poly)[0], cfg.statsmodels_snps, replace=False)
  ks = kin[np.ix_(sub, sub)]
  sec, fits = _statsmodels_per_snp(y[sub], x[sub], ks, g[np.ix_(sub, sub_snps)].astype(np.float64),
                                   cfg.statsmodels_max_iter)
  out["statsmodels_individuals"] = int(sub.size)
  out["statsmodels_sec_per_snp"] = sec
  out["statsmodels_extrapolated_sec_all_snps"] = sec * g.shape[1]
  # Our scan on the same subset (incl. its own eigendecomposition), for a like-for-like time.
  t = time.time()
  eig_s = lmm.eigendecompose(ks)
  gr_s, yr_s, xr_s = lmm.rotate(eig_s, g[sub], y[sub], x[sub])
  null_s = lmm.fit_null(yr_s, xr_s, eig_s.s, reml=True)
  gwas.scan(null_s.log_delta, yr_s, xr_s, eig_s.s, gr_s, chunk=gwas_config.chunk, polymorphic=poly)
  out["ours_subset_all_snps_sec"] = time.time() - t
  # Agreement of the REML variance components on the subset's first SNP model (h2 scale).
  fit0 = fits[0]
  kbar = float(np.mean(np.diag(ks)))
  sm_h2 = float(fit0.vcomp[0] * kbar / (fit0.vcomp[0] * kbar + fit0.scale)
                if fit0.vcomp.size else np.nan)
  out["statsmodels_h2_with_snp0"] = sm_h2
  x1 = np.column_stack([x[sub], g[sub][:, sub_snps[0]]])
  (x1r,) = lmm.rotate(eig_s, x1)
  out["ours_h2_with_snp0"] = lmm.fit_null(yr_s, x1r, eig_s.s, reml=True).h2
  logging.info("speed: %s", out)
  return out
