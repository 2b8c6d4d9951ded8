"""Real mouse traits (Fusi et al. 2014, Sec. 3.2): warped vs standard LMM, and the scan's speed.

For each configured trait: individuals with a missing phenotype are dropped (count reported), the
covariates are one-hot encoded, and both the standard LMM (raw y) and the warped LMM are fitted;
reported are h2, the number of genome-wide significant SNPs and loci (Bonferroni, clumped within a
window), optional stepwise loci, lambda_GC, the learnt warping curves and Manhattan plots (PNG).
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas.data import npz
from metanas.lmm import gwas
from metanas.lmm import kinship
from metanas.lmm import lmm
from metanas.lmm import pipeline
from metanas.lmm import plots
from metanas.lmm import speed
from metanas.lmm import warping


def one_hot_covariates(covar_cat: np.ndarray, covar_names: np.ndarray,
                       names: tuple[str, ...]) -> np.ndarray:
  """Intercept plus one-hot columns (first level dropped) of the named categorical covariates.

  Args:
    covar_cat: [N, C] strings.
    covar_names: [C] names of the columns.
    names: which covariates to use.

  Returns:
    [N, 1 + sum(levels - 1)] float64 design matrix.
  """
  cols = [np.ones(covar_cat.shape[0])]
  known = list(covar_names)
  for name in names:
    if name not in known:
      raise ValueError(f"Unknown covariate {name!r}; available: {known}.")
    values = covar_cat[:, known.index(name)]
    for level in np.unique(values)[1:]:
      cols.append((values == level).astype(np.float64))
  x = np.stack(cols, axis=1)
  # Levels absent from a subset would give zero columns; drop them (and exact duplicates).
  keep = np.std(x, axis=0) > 0
  keep[0] = True
  return x[:, keep]


def prepare_trait(arrays: dict, trait: str, covariates: tuple[str, ...]):
  """Phenotype, covariates and the mask of individuals with an observed value.

  Returns:
    (y [n_kept], x [n_kept, p], keep [N] bool, num_dropped).
  """
  names = list(arrays["pheno_names"])
  if trait not in names:
    raise ValueError(f"Unknown trait {trait!r}; mice_gwas traits are: {names}.")
  y_all = arrays["pheno"][:, names.index(trait)].astype(np.float64)
  keep, dropped = gwas.drop_missing(y_all)
  if keep.sum() < 10:
    raise ValueError(f"Trait {trait!r} has only {keep.sum()} observed values; choose another "
                     "trait.")
  x = one_hot_covariates(arrays["covar_cat"][keep], arrays["covar_cat_names"], covariates)
  return y_all[keep], x, keep, dropped


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs the mouse GWAS comparison (+ speed benchmark); writes results.json and figures."""
  mc = config.mice
  t_start = time.time()
  arrays = npz.load("mice_gwas", config.data_dir)
  rng = np.random.default_rng(config.seed)
  n_all, m_all = arrays["genotypes"].shape
  rows = np.arange(n_all)
  if 0 < mc.num_individuals < n_all:
    rows = np.sort(rng.choice(n_all, mc.num_individuals, replace=False))
  cols = np.arange(m_all)
  if 0 < mc.num_snps < m_all:
    cols = np.sort(rng.choice(m_all, mc.num_snps, replace=False))
  arrays = dict(arrays)
  for k in ("pheno", "covar_cat", "sample_id"):
    arrays[k] = arrays[k][rows]
  geno = arrays["genotypes"][np.ix_(rows, cols)]
  chrom, mbp = arrays["snp_chr"][cols], arrays["snp_mbp"][cols].astype(np.float64)
  k_full = kinship.grm(geno)
  _, poly = kinship.standardise(geno)
  n, m = geno.shape
  threshold = mc.alpha / m
  fig_dir = plots.save_dir(workdir)
  results = {"num_individuals": n, "num_snps": m, "bonferroni_threshold": threshold, "traits": {}}
  cache = {}
  curves = []
  for trait in mc.traits:
    t0 = time.time()
    y, x, keep, dropped = prepare_trait(arrays, trait, tuple(mc.covariates))
    logging.info("%s: dropped %d individuals with a missing phenotype, %d left", trait, dropped,
                 keep.sum())
    key = keep.tobytes()
    if key not in cache:
      cache.clear()  # One eigendecomposition + rotated genotypes in memory at a time.
      eig = lmm.eigendecompose(k_full[np.ix_(keep, keep)])
      cache[key] = (eig, jnp.asarray(lmm.rotate(eig, geno[keep])[0]))
    eig, gr = cache[key]
    (xr,) = lmm.rotate(eig, x)
    row = {"num_dropped_missing": dropped, "num_individuals": int(keep.sum()),
           "num_covariate_columns": int(x.shape[1])}
    pvals = {}
    for meth in ("raw", "warped"):
      pheno, fit = pipeline.transform(meth, y, x, eig, config.warp, seed=config.seed)
      res = pipeline.analyse(pheno, eig, xr, gr, config.gwas, poly, fit)
      label = "lmm" if meth == "raw" else "warped_lmm"
      pvals[label] = res.pvals
      loci = gwas.clump_loci(res.pvals, chrom, mbp, threshold, mc.window_mb)
      entry = {"h2": res.null.h2, "log_delta": res.null.log_delta,
               "num_significant_snps": int(np.sum(res.pvals < threshold)),
               "num_loci": len(loci), "lead_snps": [str(arrays["snp_id"][cols][j]) for j in loci],
               "lambda_gc": gwas.genomic_control(res.pvals),
               "num_invalid_snps": int(np.sum(~res.scan.valid))}
      if mc.stepwise_steps > 0:
        (yr,) = lmm.rotate(eig, pheno)
        sel = gwas.stepwise(yr, xr, eig.s, gr, threshold, max_steps=mc.stepwise_steps,
                            reml=config.gwas.reml, test=config.gwas.test, polymorphic=poly,
                            chunk=config.gwas.chunk)
        entry["num_stepwise_loci"] = len(sel)
      if fit is not None:
        entry["warped_log_lik"] = fit.log_lik
        entry["restart_log_liks"] = fit.restart_log_liks
        grid = np.linspace(np.quantile(y, 0.001), np.quantile(y, 0.999), 200)
        with jax.enable_x64(True):
          fz = np.asarray(warping.apply(fit.warp, jnp.asarray(grid)))
        curves.append((trait, grid, fz))
      row[label] = entry
    row["seconds"] = time.time() - t0
    results["traits"][trait] = row
    plots.manhattan(os.path.join(fig_dir, f"manhattan_{trait}.png"), pvals, chrom, mbp, threshold,
                    title=f"{trait} (N={keep.sum()}, {dropped} missing dropped)")
    logging.info("%s done in %.1fs: %s", trait, row["seconds"],
                 {k: (v["h2"], v["num_loci"]) for k, v in row.items() if isinstance(v, dict)})
  if curves:
    plots.warping_curves(os.path.join(fig_dir, "warping_curves.png"), curves)
  if mc.speed.enabled:
    results["speed"] = speed.benchmark(geno, k_full, arrays, mc.speed, config.gwas, rng)
  results["wall_time_sec"] = time.time() - t_start
  metric_writer.write_results(workdir, results)
  return results
