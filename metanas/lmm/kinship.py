"""Genetic relationship matrices from SNP genotypes (Fusi et al. 2014, Sec. 2; Yang et al. 2010)."""

import numpy as np


def standardise(genotypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Centres and scales each SNP to mean 0, variance 1.

  Args:
    genotypes: [N, M] allele counts (0/1/2, or 0/1 for inbred lines), no missing values.

  Returns:
    (z [N, M] float64, polymorphic [M] bool). Monomorphic SNPs (zero variance) are set to 0 in `z`
    and flagged False, so they contribute nothing to a kinship.
  """
  g = np.asarray(genotypes, np.float64)
  if g.ndim != 2:
    raise ValueError(f"genotypes must be [N, M], got shape {g.shape}.")
  if not np.all(np.isfinite(g)):
    raise ValueError("genotypes contain NaN/inf; impute missing calls (e.g. by the SNP mean) "
                     "first.")
  mean = g.mean(axis=0)
  std = g.std(axis=0)
  poly = std > 1e-12
  z = np.where(poly, (g - mean) / np.where(poly, std, 1.0), 0.0)
  return z, poly


def grm(genotypes: np.ndarray) -> np.ndarray:
  """K = Z Z^T / M over the M polymorphic standardised SNPs ([N, M] -> [N, N], mean diag 1)."""
  z, poly = standardise(genotypes)
  if not poly.any():
    raise ValueError("All SNPs are monomorphic; the kinship is undefined. Check the genotype "
                     "matrix.")
  return (z @ z.T) / poly.sum()


def cross_grm(genotypes: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
  """The block K[rows][:, cols] of `grm(genotypes)`, standardising with all individuals."""
  z, poly = standardise(genotypes)
  return (z[rows] @ z[cols].T) / poly.sum()
