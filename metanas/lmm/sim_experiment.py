"""Simulation study (Fusi et al. 2014, Sec. 3.1, Figs. 2-3) on the real mouse genotypes.

Per replicate: causal SNPs + polygenic effect (drawn with the real kinship) + noise give a latent
Gaussian z; each non-linear transform gives an observed y = t(z). Methods: LMM on raw y, on the true
z (oracle), on rank-INT(y), on Box-Cox(y), and the warped LMM. Reported per transform and method:
power to detect the causal SNPs at fixed false-positive rates (empirical thresholds from the null
SNPs, pooled over replicates; null SNPs are those on `sim.null_chromosomes`, which carry no causal
SNP and no polygenic effect, or, when that is empty and the polygenic effect is drawn from the full
kinship, the SNPs unlinked to every causal SNP), lambda_GC of the null SNPs, and h2 against the truth; and paired
comparisons of each method with the raw-y LMM and the oracle on the same causal SNPs (`paired`).
With `gwas.loco` every method's scan uses leave-one-chromosome-out kinships (`loco`); the warping
is fitted once with the full kinship, then its warped phenotype is scanned with LOCO like the others.
"""

import os
import time

import jax.numpy as jnp
import numpy as np
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas.data import npz
from metanas.lmm import gwas
from metanas.lmm import kinship
from metanas.lmm import lmm
from metanas.lmm import loco
from metanas.lmm import paired
from metanas.lmm import pipeline
from metanas.lmm import plots
from metanas.lmm import simulate
from metanas.lmm import transforms


def _subset(arrays: dict, num_individuals: int, num_snps: int, rng: np.random.Generator):
  g = arrays["genotypes"]
  rows = np.arange(g.shape[0])
  if 0 < num_individuals < g.shape[0]:
    rows = np.sort(rng.choice(g.shape[0], num_individuals, replace=False))
  cols = np.arange(g.shape[1])
  if 0 < num_snps < g.shape[1]:
    cols = np.sort(rng.choice(g.shape[1], num_snps, replace=False))
  return g[np.ix_(rows, cols)], arrays["snp_chr"][cols], arrays["snp_mbp"][cols].astype(np.float64)


def null_snp_mask(z_snps: np.ndarray, causal: np.ndarray, chrom: np.ndarray, mbp: np.ndarray,
                  max_r2: float, window_mb: float) -> np.ndarray:
  """SNPs unlinked to every causal SNP: r^2 < max_r2, and not within `window_mb` of it."""
  n = z_snps.shape[0]
  r2 = ((z_snps[:, causal].T @ z_snps) / n) ** 2  # [num_causal, M]
  near = np.zeros(z_snps.shape[1], bool)
  for c in causal:
    near |= (chrom == chrom[c]) & (np.abs(mbp - mbp[c]) <= window_mb)
  return (r2.max(axis=0) < max_r2) & ~near


def detections_at_fpr(null_p: np.ndarray, causal_p: np.ndarray, fpr: float) -> np.ndarray:
  """Causal p-values at or below the `fpr` quantile of the (finite) null p-values (bool, shape of
  `causal_p`; an untestable causal SNP counts as not detected)."""
  null_p = null_p[np.isfinite(null_p)]
  thr = np.quantile(null_p, fpr)
  return np.where(np.isfinite(causal_p), causal_p, 1.0) <= thr


def power_at_fpr(null_p: np.ndarray, causal_p: np.ndarray, fpr: float) -> tuple[float, float]:
  """Share of causal p-values below the `fpr` quantile of the null p-values, and its binomial SE."""
  power = float(np.mean(detections_at_fpr(null_p, causal_p, fpr)))
  return power, float(np.sqrt(power * (1 - power) / np.size(causal_p)))


def paired_row(causal_a: np.ndarray, causal_b: np.ndarray, null_a: np.ndarray, null_b: np.ndarray,
               fprs, name: str) -> dict:
  """Paired statistics of method a vs b: -log10 p difference and McNemar at each FPR.

  Args:
    causal_a, causal_b: [R, C] causal-SNP p-values of the two methods.
    null_a, null_b: pooled null-SNP p-values (each method's own empirical threshold).
    fprs: false-positive rates.
    name: suffix of the keys ("raw", "oracle").
  """
  diff = paired.log10p_difference(causal_a, causal_b)
  row = {f"dlog10p_vs_{name}_mean": diff.mean, f"dlog10p_vs_{name}_se": diff.se,
         f"dlog10p_vs_{name}_se_pairs": diff.se_pairs}
  for fpr in fprs:
    mc = paired.mcnemar(detections_at_fpr(null_a, causal_a, fpr),
                        detections_at_fpr(null_b, causal_b, fpr))
    row[f"mcnemar_vs_{name}@{fpr:g}"] = mc._asdict()
  return row


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs the simulation study and writes results.json, metrics.jsonl and figures to `workdir`."""
  sc = config.sim
  for name in sc.transforms:
    transforms.get_transform(name)  # Fails early on a typo.
  methods = ("oracle",) + tuple(sc.methods)
  for m in sc.methods:
    if m not in pipeline.METHODS:
      raise ValueError(f"Unknown sim.methods entry {m!r}; choose from {pipeline.METHODS}.")
  t_start = time.time()
  rng = np.random.default_rng(config.seed)
  arrays = npz.load("mice_gwas", config.data_dir)
  geno, chrom, mbp = _subset(arrays, sc.num_individuals, sc.num_snps, rng)
  n, m = geno.shape
  z_snps, poly = kinship.standardise(geno)
  eig = lmm.eigendecompose((z_snps @ z_snps.T) / poly.sum())
  x = np.ones((n, 1))
  if config.gwas.loco:
    parts = loco.prepare(geno, z_snps, poly, chrom, x)
    gr, (xr,) = None, lmm.rotate(eig, x)
  else:
    parts = None
    gr, xr = lmm.rotate(eig, geno, x)
    gr = jnp.asarray(gr)  # Device-resident once; every scan reads it without a copy.
  freq = geno.mean(axis=0) / 2.0
  candidates = poly & (np.minimum(freq, 1 - freq) >= sc.min_maf)
  null_chrom = np.isin(chrom, np.asarray(sc.null_chromosomes, dtype=str))
  if len(sc.null_chromosomes):
    unknown = set(sc.null_chromosomes) - set(np.unique(chrom).tolist())
    if unknown or null_chrom.all():
      raise ValueError(f"sim.null_chromosomes {tuple(sc.null_chromosomes)} must be chromosomes of "
                       f"the data {sorted(set(chrom.tolist()))} and leave at least one with effects.")
    candidates &= ~null_chrom
    poly_snps = np.where(poly & ~null_chrom)[0]
  else:
    poly_snps = None
  candidates = np.where(candidates)[0]
  setup_sec = time.time() - t_start
  logging.info("Simulation on %d individuals x %d SNPs (%d causal candidates, LOCO %s); setup "
               "%.1fs", n, m, candidates.size, bool(config.gwas.loco), setup_sec)

  keys = [(t, meth) for t in sc.transforms for meth in methods]
  null_p = {k: [] for k in keys}
  causal_p = {k: [] for k in keys}
  h2 = {k: [] for k in keys}
  lam = {k: [] for k in keys}
  truth = []
  writer = metric_writer.MetricWriter(workdir, tensorboard=False)
  for rep in range(sc.num_replicates):
    t0 = time.time()
    sim = simulate.simulate(rng, z_snps, eig, candidates, sc.num_causal, sc.h2_causal, sc.h2_poly,
                            poly_snps=poly_snps)
    truth.append(sim.h2_total)
    if poly_snps is None:  # Every SNP carries a polygenic effect: "null" = unlinked to causal SNPs.
      is_null = null_snp_mask(z_snps, sim.causal, chrom, mbp, sc.null_max_r2, sc.null_window_mb)
    else:  # SNPs on chromosomes without any genetic effect.
      is_null = null_chrom & poly
    oracle = pipeline.analyse(sim.z, eig, xr, gr, config.gwas, poly, loco=parts)
    record = {}
    for t in sc.transforms:
      y = transforms.get_transform(t)(sim.z)
      for meth in methods:
        if meth == "oracle":
          res = oracle
        else:
          pheno, fit = pipeline.transform(meth, y, x, eig, config.warp, seed=config.seed + rep)
          res = pipeline.analyse(pheno, eig, xr, gr, config.gwas, poly, fit, loco=parts)
        key = (t, meth)
        null_p[key].append(res.pvals[is_null])
        causal_p[key].append(res.pvals[sim.causal])
        h2[key].append(res.null.h2)
        lam[key].append(gwas.genomic_control(res.pvals[is_null]))
        record[f"h2/{t}/{meth}"] = res.null.h2
        record[f"lambda_gc/{t}/{meth}"] = lam[key][-1]
    record["seconds"] = time.time() - t0
    writer.write(rep, record)
    logging.info("replicate %d/%d done in %.1fs", rep + 1, sc.num_replicates, record["seconds"])
    if rep + 1 < sc.num_replicates:  # Partial results survive an interrupted long run.
      partial = _summarise(keys, null_p, causal_p, h2, lam, truth, sc.fprs)
      partial.update(num_individuals=n, num_snps=m, num_replicates=sc.num_replicates,
                     num_replicates_done=rep + 1, loco=bool(config.gwas.loco), setup_sec=setup_sec,
                     wall_time_sec=time.time() - t_start)
      metric_writer.write_results(workdir, partial)
  writer.close()

  results = _summarise(keys, null_p, causal_p, h2, lam, truth, sc.fprs)
  results.update(num_individuals=n, num_snps=m, num_replicates=sc.num_replicates,
                 num_replicates_done=sc.num_replicates, loco=bool(config.gwas.loco),
                 setup_sec=setup_sec)
  fig_dir = plots.save_dir(workdir)
  plots.qq_plot(os.path.join(fig_dir, "qq_null_snps.png"),
                {t: {meth: np.concatenate(null_p[(t, meth)]) for meth in methods}
                 for t in sc.transforms})
  results["wall_time_sec"] = time.time() - t_start
  metric_writer.write_results(workdir, results)
  return results


def _summarise(keys, null_p, causal_p, h2, lam, truth, fprs) -> dict:
  """Per (transform, method) row of the results table from the per-replicate lists."""
  results = {"h2_truth": float(np.mean(truth)), "fprs": list(fprs), "table": {}}
  for t, meth in keys:
    k = (t, meth)
    nullp, caup = np.concatenate(null_p[k]), np.concatenate(causal_p[k])
    row = {"h2_mean": float(np.mean(h2[k])), "h2_sd": float(np.std(h2[k])),
           "h2_minus_oracle_mean": float(np.mean(np.subtract(h2[k], h2[(t, "oracle")]))),
           "h2_minus_oracle_se": float(np.std(np.subtract(h2[k], h2[(t, "oracle")])) /
                                       np.sqrt(len(h2[k]))),
           "lambda_gc_mean": float(np.mean(lam[k])), "lambda_gc_sd": float(np.std(lam[k])),
           "lambda_gc_pooled": gwas.genomic_control(nullp), "num_null_snps": int(nullp.size)}
    for fpr in fprs:
      row[f"power@{fpr:g}"], row[f"power_se@{fpr:g}"] = power_at_fpr(nullp, caup, fpr)
    for ref in ("raw", "oracle"):
      if (t, ref) in null_p and ref != meth:
        row.update(paired_row(np.stack(causal_p[k]), np.stack(causal_p[(t, ref)]), nullp,
                              np.concatenate(null_p[(t, ref)]), fprs, ref))
    results["table"][f"{t}/{meth}"] = row
  return results
