"""Leave-one-chromosome-out (LOCO) kinships for the GWAS scan (Lippert et al. 2011; Yang et al. 2014).

A kinship built from all SNPs contains the tested SNP and the SNPs in LD with it, so a causal SNP is
partly absorbed by the random effect ("proximal contamination"): the null model over-attributes
variance to K and the scan is deflated. With LOCO the SNPs of chromosome c are scanned against

  K_{-c} = Z_{-c} Z_{-c}^T / M_{-c},

the kinship of the polymorphic standardised SNPs of all other chromosomes, with its own
eigendecomposition. Per chromosome the null model (variance ratio delta) is refitted by REML on the
same phenotype (`scan`), so each chromosome's test uses the variance ratio of its own kinship. The
eigendecompositions and rotated genotypes do not depend on the phenotype and are computed once
(`prepare`), at the cost of one O(N^3) eigendecomposition per chromosome.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from metanas.lmm import gwas
from metanas.lmm import lmm


class LocoPart(NamedTuple):
  """One chromosome of a LOCO scan.

  Attributes:
    chrom: chromosome name.
    snps: [M_c] indices of its SNPs in the full genotype matrix.
    eig: eigendecomposition of K_{-c} ([N, N]).
    xr: [N, p] covariates rotated by the eigenvectors of K_{-c}.
    gr: [N, M_c] its SNPs rotated by the eigenvectors of K_{-c} (float64 device array).
  """
  chrom: str
  snps: np.ndarray
  eig: lmm.Eigen
  xr: np.ndarray
  gr: object


def loco_kinship(z_snps: np.ndarray, polymorphic: np.ndarray, chrom: np.ndarray,
                 leave_out: str, gram: np.ndarray | None = None) -> np.ndarray:
  """K_{-c}: the kinship of the polymorphic SNPs not on chromosome `leave_out`.

  Args:
    z_snps: [N, M] standardised genotypes (`kinship.standardise`; monomorphic columns are 0).
    polymorphic: [M] mask of polymorphic SNPs.
    chrom: [M] chromosome of each SNP.
    leave_out: the chromosome to leave out.
    gram: optional precomputed Z Z^T over all SNPs ([N, N]); then only chromosome c's block is
      computed and subtracted.

  Returns:
    [N, N] float64 kinship (mean diagonal 1).
  """
  chrom = np.asarray(chrom)
  on = chrom == leave_out
  count = int(np.sum(polymorphic & ~on))
  if count == 0:
    raise ValueError(f"No polymorphic SNP outside chromosome {leave_out!r}; LOCO needs SNPs on at "
                     "least two chromosomes (set gwas.loco=False).")
  zc = z_snps[:, on]
  if gram is None:
    rest = z_snps[:, ~on]
    return (rest @ rest.T) / count
  return (gram - zc @ zc.T) / count


@lmm.x64
def prepare(genotypes: np.ndarray, z_snps: np.ndarray, polymorphic: np.ndarray,
            chrom: np.ndarray, x: np.ndarray) -> list[LocoPart]:
  """Eigendecomposition of every K_{-c} and the rotated covariates and SNPs of chromosome c.

  Args:
    genotypes: [N, M] genotypes as scanned (the scan's fixed effect).
    z_snps: [N, M] standardised genotypes for the kinships.
    polymorphic: [M] mask.
    chrom: [M] chromosome names.
    x: [N, p] covariates, including the intercept.

  Returns:
    One `LocoPart` per chromosome, in sorted chromosome order.
  """
  chrom = np.asarray(chrom)
  gram = z_snps @ z_snps.T
  parts = []
  for c in np.unique(chrom):
    snps = np.where(chrom == c)[0]
    eig = lmm.eigendecompose(loco_kinship(z_snps, polymorphic, chrom, c, gram))
    gr, xr = lmm.rotate(eig, genotypes[:, snps], x)
    parts.append(LocoPart(chrom=str(c), snps=snps, eig=eig, xr=xr, gr=jnp.asarray(gr)))
  return parts


@lmm.x64
def scan(pheno: np.ndarray, parts: list[LocoPart], gwas_config: config_dict.ConfigDict,
         polymorphic: np.ndarray | None = None) -> tuple[gwas.ScanResult, dict]:
  """LOCO scan: per chromosome, a null model on K_{-c} and the FaST-LMM scan of its SNPs.

  Args:
    pheno: [N] phenotype (already transformed).
    parts: output of `prepare` (each of the M SNPs in exactly one part).
    gwas_config: `reml`, `chunk` (see `pipeline.analyse`).
    polymorphic: optional [M] mask of testable SNPs.

  Returns:
    (`gwas.ScanResult` over all M SNPs, {chromosome: null model fitted on K_{-c}}).
  """
  num_snps = sum(p.snps.size for p in parts)
  fields = {f: np.full(num_snps, np.nan) for f in gwas.ScanResult._fields}
  fields["valid"] = np.zeros(num_snps, bool)
  nulls = {}
  for part in parts:
    (yr,) = lmm.rotate(part.eig, pheno)
    null = lmm.fit_null(yr, part.xr, part.eig.s, reml=gwas_config.reml)
    poly = None if polymorphic is None else np.asarray(polymorphic)[part.snps]
    res = gwas.scan(null.log_delta, yr, part.xr, part.eig.s, part.gr, chunk=gwas_config.chunk,
                    polymorphic=poly)
    for f in gwas.ScanResult._fields:
      fields[f][part.snps] = getattr(res, f)
    nulls[part.chrom] = null
  return gwas.ScanResult(**fields), nulls
