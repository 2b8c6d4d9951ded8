"""Tests of the LOCO scan (metanas/lmm/loco.py) and the paired comparisons (metanas/lmm/paired.py)."""

import jax
import numpy as np
import pytest
import scipy.stats
from ml_collections import config_dict

from metanas.lmm import gwas
from metanas.lmm import kinship
from metanas.lmm import lmm
from metanas.lmm import loco
from metanas.lmm import paired
from metanas.lmm import pipeline
from metanas.lmm import report
from metanas.lmm import sim_experiment
from metanas.lmm import simulate


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope="module")
def small():
  """60 related individuals, 90 SNPs on 3 chromosomes (one monomorphic), a covariate, a phenotype."""
  rng = np.random.default_rng(0)
  n, m = 60, 90
  geno = simulate.family_genotypes(rng, n, m)
  geno[:, 40] = 1
  chrom = np.repeat(np.array(["1", "2", "X"]), [35, 25, 30])
  x = np.column_stack([np.ones(n), rng.normal(size=n)])
  y = x @ np.array([1.0, 0.5]) + 0.5 * (geno[:, 3] - 1) + rng.normal(size=n)
  return dict(geno=geno, chrom=chrom, x=x, y=y)


def test_loco_kinship_equals_grm_of_the_remaining_snps(small):
  z, poly = kinship.standardise(small["geno"])
  gram = z @ z.T
  for c in ("1", "2", "X"):
    rest = small["chrom"] != c
    expected = kinship.grm(small["geno"][:, rest])
    np.testing.assert_allclose(loco.loco_kinship(z, poly, small["chrom"], c), expected,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loco.loco_kinship(z, poly, small["chrom"], c, gram), expected,
                               rtol=1e-10, atol=1e-12)
  with pytest.raises(ValueError, match="at least two chromosomes"):
    loco.loco_kinship(z, poly, np.full(z.shape[1], "1"), "1")


def test_loco_scan_equals_dense_reference(small):
  geno, chrom, x, y = small["geno"], small["chrom"], small["x"], small["y"]
  z, poly = kinship.standardise(geno)
  parts = loco.prepare(geno, z, poly, chrom, x)
  assert [p.chrom for p in parts] == ["1", "2", "X"]
  cfg = config_dict.ConfigDict(dict(reml=True, chunk=8, test="lrt"))
  res, nulls = loco.scan(y, parts, cfg, polymorphic=poly)
  assert not res.valid[40] and np.isnan(res.pval_lrt[40])
  n = len(y)
  for c in ("1", "2", "X"):
    kin = kinship.grm(geno[:, chrom != c])
    # Null model refitted on K_{-c}: the same as fitting from scratch on that kinship.
    eig = lmm.eigendecompose(kin)
    yr, xr = lmm.rotate(eig, y, x)
    null = lmm.fit_null(yr, xr, eig.s, reml=True)
    np.testing.assert_allclose(nulls[c].log_delta, null.log_delta, atol=1e-8)
    v = kin + np.exp(null.log_delta) * np.eye(n)
    vi_x = np.linalg.solve(v, x)
    r0 = y - x @ np.linalg.solve(x.T @ vi_x, vi_x.T @ y)
    rss0 = r0 @ np.linalg.solve(v, r0)
    for j in np.where(chrom == c)[0][[0, 3, -1]]:
      a = np.column_stack([x, geno[:, j]])
      vi_a = np.linalg.solve(v, a)
      beta = np.linalg.solve(a.T @ vi_a, vi_a.T @ y)
      r1 = y - a @ beta
      rss1 = r1 @ np.linalg.solve(v, r1)
      np.testing.assert_allclose(res.beta[j], beta[-1], rtol=1e-7)
      np.testing.assert_allclose(res.chi2_lrt[j], n * np.log(rss0 / rss1), rtol=1e-6)
      np.testing.assert_allclose(res.pval_lrt[j],
                                 scipy.stats.chi2.sf(n * np.log(rss0 / rss1), 1), rtol=1e-6)
  # Through the shared pipeline: same p-values, h2 still from the full kinship.
  full = lmm.eigendecompose(kinship.grm(geno))
  (xr_full,) = lmm.rotate(full, x)
  out = pipeline.analyse(y, full, xr_full, None, cfg, poly, loco=parts)
  np.testing.assert_array_equal(out.pvals, res.pval_lrt)
  assert out.null.h2 == lmm.fit_null(lmm.rotate(full, y)[0], xr_full, full.s).h2


def test_paired_log10p_difference_tiny_example():
  pa = np.array([[1e-3, 1e-2], [1e-4, 1.0]])
  pb = np.array([[1e-2, 1e-2], [1e-2, np.nan]])  # NaN counts as p = 1.
  d = paired.log10p_difference(pa, pb)
  # Differences: [[1, 0], [2, 0]]; replicate means 0.5 and 1.0.
  np.testing.assert_allclose(d.mean, 0.75)
  np.testing.assert_allclose(d.se, np.std([0.5, 1.0], ddof=1) / np.sqrt(2))
  np.testing.assert_allclose(d.se_pairs, np.std([1, 0, 2, 0], ddof=1) / 2)
  assert d.num_pairs == 4
  with pytest.raises(ValueError, match="equal shapes"):
    paired.log10p_difference(pa, pb[:, :1])


def test_mcnemar_tiny_example():
  a = np.array([1, 1, 1, 1, 0, 0, 1, 0], bool)
  b = np.array([0, 0, 0, 1, 1, 0, 1, 0], bool)
  mc = paired.mcnemar(a, b)
  assert (mc.gain, mc.loss) == (3, 1)
  np.testing.assert_allclose(mc.power_diff, a.mean() - b.mean())
  d = a.astype(float) - b.astype(float)
  np.testing.assert_allclose(mc.se, np.std(d) / np.sqrt(8))
  np.testing.assert_allclose(mc.pval, scipy.stats.binomtest(3, 4, 0.5).pvalue)
  assert paired.mcnemar(a, a).pval == 1.0 and paired.mcnemar(a, a).se == 0.0


def test_paired_row_and_report_table():
  rng = np.random.default_rng(1)
  null_a, null_b = rng.uniform(size=5000), rng.uniform(size=5000)
  causal_b = rng.uniform(0, 0.01, size=(4, 5))
  causal_a = causal_b / 10
  row = sim_experiment.paired_row(causal_a, causal_b, null_a, null_b, (1e-2,), "raw")
  np.testing.assert_allclose(row["dlog10p_vs_raw_mean"], 1.0)
  np.testing.assert_allclose(row["dlog10p_vs_raw_se"], 0.0, atol=1e-12)
  mc = row["mcnemar_vs_raw@0.01"]
  assert mc["loss"] == 0 and mc["gain"] >= 0
  res = {"fprs": [1e-2], "table": {"exp/warped": row, "exp/raw": {}}}
  table = report.sim_paired_table(res, "raw")
  assert "| exp | warped | +1.000" in table and "exp | raw" not in table


def test_polygenic_effect_restricted_to_given_snps():
  rng = np.random.default_rng(3)
  geno = rng.integers(0, 3, size=(300, 60))
  z, _ = kinship.standardise(geno)
  eig = lmm.eigendecompose(z @ z.T / z.shape[1])
  effect = np.arange(20)
  sim = simulate.simulate(rng, z, eig, effect, 1, 1e-9, 0.9, poly_snps=effect)
  r2 = lambda cols: 1 - np.sum((sim.z - z[:, cols] @ np.linalg.lstsq(z[:, cols], sim.z,
                                                                      rcond=None)[0]) ** 2) / 300
  assert r2(effect) > 0.85 and r2(np.arange(40, 60)) < 0.2  # Other SNPs are exactly null.
