"""One phenotype through one method: transform (raw, rank-INT, Box-Cox, warped), fit, scan.

Shared by the simulation and the real-data experiments so that every method sees the same kinship
eigendecomposition, rotated covariates and rotated genotypes.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import config_dict

from metanas.lmm import gwas
from metanas.lmm import lmm
from metanas.lmm import loco as loco_lib
from metanas.lmm import transforms
from metanas.lmm import warped
from metanas.lmm import warping

METHODS = ("raw", "rank_int", "box_cox", "warped")


class Analysis(NamedTuple):
  """Result of `analyse`.

  Attributes:
    pheno: [N] phenotype the LMM was fitted on (after the method's transform).
    null: REML/ML null model on `pheno` with the full kinship (h2, delta).
    scan: per-SNP `gwas.ScanResult`.
    pvals: [M] p-values of the configured test.
    warp_fit: the `warped.WarpedFit` for method "warped", else None.
  """
  pheno: np.ndarray
  null: lmm.NullModel
  scan: gwas.ScanResult
  pvals: np.ndarray
  warp_fit: warped.WarpedFit | None


def transform(method: str, y: np.ndarray, x: np.ndarray, eig: lmm.Eigen,
              warp_config: config_dict.ConfigDict, seed: int = 0):
  """Applies `method` to y ([N]); returns (phenotype [N], WarpedFit or None)."""
  if method == "raw":
    return np.asarray(y, np.float64), None
  if method == "rank_int":
    return transforms.rank_inverse_normal(y), None
  if method == "box_cox":
    return transforms.box_cox(y)[0], None
  if method == "warped":
    fit = warped.fit(y, x, eig, num_terms=warp_config.num_terms,
                     num_restarts=warp_config.num_restarts, seed=seed, reml=warp_config.reml,
                     max_iter=warp_config.max_iter)
    with jax.enable_x64(True):
      z = np.asarray(warping.apply(fit.warp, jnp.asarray(y, jnp.float64)))
    return z, fit
  raise ValueError(f"Unknown method {method!r}; choose from {METHODS} (or 'oracle' in "
                   "simulations).")


def analyse(pheno: np.ndarray, eig: lmm.Eigen, xr: np.ndarray, gr: np.ndarray,
            gwas_config: config_dict.ConfigDict, polymorphic: np.ndarray | None = None,
            warp_fit: warped.WarpedFit | None = None,
            loco: list[loco_lib.LocoPart] | None = None) -> Analysis:
  """Fits the null LMM (REML) on `pheno` and scans every SNP at its variance ratio.

  With `loco` (from `loco.prepare`) the scan is leave-one-chromosome-out: each chromosome's SNPs
  are tested against the kinship of the other chromosomes, with the null model refitted on that
  kinship. h2 (`null`) is always the full-kinship estimate.

  Args:
    pheno: [N] phenotype (already transformed).
    eig: kinship eigendecomposition of the N individuals.
    xr: [N, p] rotated covariates.
    gr: [N, M] rotated genotypes (unused, may be None, with `loco`).
    gwas_config: `test` ("lrt" or "wald"), `chunk`, `reml`.
    polymorphic: [M] mask of testable SNPs.
    warp_fit: carried into the result.
    loco: optional per-chromosome LOCO kinships for the scan.
  """
  if gwas_config.test not in ("lrt", "wald"):
    raise ValueError(f"gwas.test must be 'lrt' or 'wald', got {gwas_config.test!r}.")
  (yr,) = lmm.rotate(eig, pheno)
  null = lmm.fit_null(yr, xr, eig.s, reml=gwas_config.reml)
  if loco is None:
    res = gwas.scan(null.log_delta, yr, xr, eig.s, gr, chunk=gwas_config.chunk,
                    polymorphic=polymorphic)
  else:
    res, _ = loco_lib.scan(pheno, loco, gwas_config, polymorphic)
  pvals = res.pval_lrt if gwas_config.test == "lrt" else res.pval_wald
  return Analysis(pheno=pheno, null=null, scan=res, pvals=pvals, warp_fit=warp_fit)
