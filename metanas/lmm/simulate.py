"""Simulated GWAS phenotypes on real genotypes (Fusi et al. 2014, Sec. 3.1).

z = sum_c beta_c g_c + u + e, with g_c standardised causal SNPs, u ~ N(0, sigma_u^2 K) a polygenic
effect drawn with the real kinship, e ~ N(0, sigma_e^2 I); z is standardised and then distorted by a
monotone non-linear transform y = t(z) (`transforms.SIM_TRANSFORMS`).
"""

from typing import NamedTuple

import numpy as np

from metanas.lmm import lmm


class SimPhenotype(NamedTuple):
  """One simulated replicate.

  Attributes:
    z: [N] latent Gaussian phenotype, standardised.
    causal: [num_causal] indices of the causal SNPs.
    h2_total: variance fraction of causal SNPs + polygenic effect (the truth for h2).
    h2_causal: variance fraction of the causal SNPs.
  """
  z: np.ndarray
  causal: np.ndarray
  h2_total: float
  h2_causal: float


def family_genotypes(rng: np.random.Generator, n: int, m: int, num_families: int = 12) -> np.ndarray:
  """[n, m] genotypes in {0, 1, 2} with family structure, for tests and toy examples.

  Each individual copies the genotypes of one of `num_families` random founders and perturbs every
  SNP by -1, 0 or +1 (clipped), so individuals of one family are strongly related.
  """
  founders = rng.integers(0, 3, size=(num_families, m))
  family = rng.integers(0, num_families, n)
  return np.clip(founders[family] + rng.integers(-1, 2, size=(n, m)), 0, 2)


def simulate(rng: np.random.Generator, z_snps: np.ndarray, eig: lmm.Eigen, candidates: np.ndarray,
             num_causal: int, h2_causal: float, h2_poly: float,
             poly_snps: np.ndarray | None = None) -> SimPhenotype:
  """Draws one phenotype replicate.

  Args:
    rng: NumPy generator.
    z_snps: [N, M] standardised genotypes.
    eig: eigendecomposition of the kinship built from `z_snps`.
    candidates: [C] SNP indices allowed as causal (e.g. common, polymorphic).
    num_causal: number of causal SNPs.
    h2_causal: total variance explained by the causal SNPs.
    h2_poly: variance explained by the polygenic effect.
    poly_snps: optional [M_eff] SNP indices that carry the polygenic effect; then
      u = Z[:, poly_snps] b with b ~ N(0, I), i.e. u ~ N(0, M_eff K_eff) (scaled below), so the
      other SNPs are exactly null. Default: u ~ N(0, K) from `eig` (every SNP has a tiny effect).

  Returns:
    `SimPhenotype`.
  """
  if h2_causal + h2_poly >= 1 or min(h2_causal, h2_poly) < 0:
    raise ValueError(f"Need 0 <= h2_causal, h2_poly and h2_causal + h2_poly < 1; got {h2_causal}, "
                     f"{h2_poly}.")
  n = z_snps.shape[0]
  causal = np.sort(rng.choice(candidates, size=num_causal, replace=False))
  fixed = z_snps[:, causal] @ rng.normal(size=num_causal)
  if poly_snps is None:
    poly = eig.U @ (np.sqrt(eig.s) * rng.normal(size=n))
  else:
    poly = z_snps[:, poly_snps] @ rng.normal(size=len(poly_snps))
  noise = rng.normal(size=n)
  scale = lambda v, var: v / (np.std(v) + 1e-12) * np.sqrt(var)
  z = scale(fixed, h2_causal) + scale(poly, h2_poly) + scale(noise, 1.0 - h2_causal - h2_poly)
  z = (z - z.mean()) / z.std()
  return SimPhenotype(z=z, causal=causal, h2_total=h2_causal + h2_poly, h2_causal=h2_causal)
