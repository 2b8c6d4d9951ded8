"""Paired comparisons of two GWAS methods on the same causal SNPs (simulation study).

Every method tests the same causal SNPs in the same replicate, so their differences are paired:
the per-SNP difference in -log10 p, and McNemar's test on detections at a fixed false-positive
rate, remove the replicate-to-replicate and SNP-to-SNP variation that the unpaired binomial SEs of
the power include.
"""

from typing import NamedTuple

import numpy as np
import scipy.stats


def neg_log10(pvals: np.ndarray) -> np.ndarray:
  """-log10 p, with NaN (untestable SNP) as p = 1 and p clipped at 1e-300."""
  p = np.where(np.isfinite(pvals), pvals, 1.0)
  return -np.log10(np.clip(p, 1e-300, 1.0))


class PairedDifference(NamedTuple):
  """Mean of -log10 p_a - (-log10 p_b) over all causal SNPs of all replicates.

  Attributes:
    mean: [] mean paired difference.
    se: [] standard error clustered by replicate: sd of the R replicate means / sqrt(R)
      (the SNPs of one replicate share a phenotype, so they are not independent).
    se_pairs: [] naive SE treating all R * C pairs as independent.
    num_pairs: R * C.
  """
  mean: float
  se: float
  se_pairs: float
  num_pairs: int


def log10p_difference(pvals_a: np.ndarray, pvals_b: np.ndarray) -> PairedDifference:
  """Paired difference of -log10 p between method a and method b.

  Args:
    pvals_a: [R, C] p-values of the C causal SNPs in R replicates, method a.
    pvals_b: [R, C] the same SNPs, method b.

  Returns:
    `PairedDifference` (positive: a gives smaller p-values).
  """
  pvals_a, pvals_b = np.atleast_2d(pvals_a), np.atleast_2d(pvals_b)
  if pvals_a.shape != pvals_b.shape:
    raise ValueError(f"Paired p-values need equal shapes, got {pvals_a.shape} and "
                     f"{pvals_b.shape}.")
  d = neg_log10(pvals_a) - neg_log10(pvals_b)
  r, n = d.shape[0], d.size
  se = float(np.std(d.mean(axis=1), ddof=1) / np.sqrt(r)) if r > 1 else float("nan")
  se_pairs = float(np.std(d, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
  return PairedDifference(mean=float(d.mean()), se=se, se_pairs=se_pairs, num_pairs=int(n))


class McNemar(NamedTuple):
  """McNemar's test on paired detections.

  Attributes:
    gain: SNPs detected by a but not by b.
    loss: SNPs detected by b but not by a.
    power_diff: (gain - loss) / n, the paired difference in power.
    se: its standard error, sqrt(gain + loss - (gain - loss)^2 / n) / n.
    pval: exact two-sided p-value (binomial, gain ~ Bin(gain + loss, 1/2) under H0); 1 if no
      discordant pair.
  """
  gain: int
  loss: int
  power_diff: float
  se: float
  pval: float


def mcnemar(detected_a: np.ndarray, detected_b: np.ndarray) -> McNemar:
  """Exact McNemar test of detections of the same SNPs ([n] bool each) by methods a and b."""
  a, b = np.ravel(np.asarray(detected_a, bool)), np.ravel(np.asarray(detected_b, bool))
  if a.shape != b.shape or a.size == 0:
    raise ValueError(f"Paired detections need equal non-empty shapes, got {a.shape}, {b.shape}.")
  n = a.size
  gain, loss = int(np.sum(a & ~b)), int(np.sum(~a & b))
  disc = gain + loss
  pval = 1.0 if disc == 0 else float(min(1.0, 2.0 * scipy.stats.binom.cdf(min(gain, loss), disc,
                                                                           0.5)))
  se = float(np.sqrt(max(disc - (gain - loss) ** 2 / n, 0.0)) / n)
  return McNemar(gain=gain, loss=loss, power_diff=(gain - loss) / n, se=se, pval=pval)
