"""Tests of the warped LMM (metanas/lmm): numerics vs dense NumPy/SciPy, end-to-end smokes."""

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from ml_collections import config_dict

from metanas import main
from metanas.data import npz
from metanas.lmm import gwas
from metanas.lmm import kinship
from metanas.lmm import lmm
from metanas.lmm import mice_experiment
from metanas.lmm import simulate
from metanas.lmm import speed
from metanas.lmm import transforms
from metanas.lmm import warped
from metanas.lmm import warping

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_config(name, arg):
  spec = importlib.util.spec_from_file_location(name, os.path.join(_ROOT, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope="module")
def small():
  """Random genotypes with family structure: 60 individuals, 200 SNPs, covariates, phenotype."""
  rng = np.random.default_rng(0)
  n, m = 60, 200
  geno = simulate.family_genotypes(rng, n, m)
  geno[:, 5] = 1  # A monomorphic SNP.
  kin = kinship.grm(geno)
  x = np.column_stack([np.ones(n), rng.normal(size=n)])
  y = x @ np.array([1.0, 0.5]) + rng.multivariate_normal(np.zeros(n), 0.6 * kin + 0.4 * np.eye(n))
  return dict(geno=geno, kin=kin, x=x, y=y, eig=lmm.eigendecompose(kin))


def _dense_log_lik(y, x, kin, sigma_g2, sigma_e2, beta, reml):
  v = sigma_g2 * kin + sigma_e2 * np.eye(len(y))
  ll = scipy.stats.multivariate_normal(x @ beta, v).logpdf(y)
  if reml:
    vinv_x = np.linalg.solve(v, x)
    ll += (0.5 * x.shape[1] * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(x.T @ vinv_x)[1]
           + 0.5 * np.linalg.slogdet(x.T @ x)[1])
  return ll


@pytest.mark.parametrize("reml", [False, True])
def test_rotated_likelihood_equals_dense(small, reml):
  eig = small["eig"]
  yr, xr = lmm.rotate(eig, small["y"], small["x"])
  for log_delta in (-1.0, 0.3, 2.0):
    ll, beta, sigma_g2 = lmm.profile(jnp.asarray(log_delta), jnp.asarray(yr), jnp.asarray(xr),
                                     jnp.asarray(eig.s), reml)
    dense = _dense_log_lik(small["y"], small["x"], small["kin"], float(sigma_g2),
                           float(sigma_g2) * np.exp(log_delta), np.asarray(beta), reml)
    np.testing.assert_allclose(float(ll), dense, rtol=1e-9)
    # GLS beta from the dense covariance.
    v = small["kin"] + np.exp(log_delta) * np.eye(len(yr))
    vi_x = np.linalg.solve(v, small["x"])
    np.testing.assert_allclose(beta, np.linalg.solve(small["x"].T @ vi_x, vi_x.T @ small["y"]),
                               rtol=1e-8)


def test_fit_null_is_the_maximum_of_the_dense_likelihood(small):
  eig = small["eig"]
  yr, xr = lmm.rotate(eig, small["y"], small["x"])
  null = lmm.fit_null(yr, xr, eig.s, reml=False)
  best = _dense_log_lik(small["y"], small["x"], small["kin"], null.sigma_g2, null.sigma_e2,
                        null.beta, False)
  np.testing.assert_allclose(null.log_lik, best, rtol=1e-9)
  rng = np.random.default_rng(1)
  for _ in range(20):  # Random perturbations of all parameters only lower the dense likelihood.
    sg, se = null.sigma_g2 * np.exp(rng.normal(0, 0.2)), null.sigma_e2 * np.exp(rng.normal(0, 0.2))
    beta = null.beta + rng.normal(0, 0.05, size=null.beta.shape)
    assert _dense_log_lik(small["y"], small["x"], small["kin"], sg, se, beta, False) < best
  np.testing.assert_allclose(null.h2, null.sigma_g2 * np.mean(np.diag(small["kin"])) /
                             (null.sigma_g2 * np.mean(np.diag(small["kin"])) + null.sigma_e2))


def _random_warp(rng, loc=0.3, scale=2.0):
  return warping.WarpParams(a=jnp.asarray(rng.uniform(0.2, 2.0, 3)),
                            b=jnp.asarray(rng.uniform(0.3, 3.0, 3)),
                            c=jnp.asarray(rng.uniform(-1.0, 1.0, 3)), d=jnp.asarray(0.05),
                            loc=jnp.asarray(loc), scale=jnp.asarray(scale))


def test_warping_monotone_jacobian_and_inverse():
  rng = np.random.default_rng(2)
  warp = _random_warp(rng)
  y = jnp.linspace(-15.0, 15.0, 2001)
  z = warping.apply(warp, y)
  assert np.all(np.diff(np.asarray(z)) > 0)
  np.testing.assert_allclose(warping.derivative(warp, y),
                             jax.vmap(jax.grad(lambda v: warping.apply(warp, v)))(y), rtol=1e-10)
  eps = 1e-6
  fd = (warping.apply(warp, y + eps) - warping.apply(warp, y - eps)) / (2 * eps)
  np.testing.assert_allclose(warping.derivative(warp, y), fd, rtol=1e-5)
  np.testing.assert_allclose(warping.log_jacobian(warp, y), np.sum(np.log(fd)), rtol=1e-6)
  # Round trip, including a near-step warping with a tiny linear slope.
  steep = warp._replace(b=jnp.asarray([20.0, 20.0, 0.5]), d=jnp.asarray(1e-3))
  for w in (warp, steep):
    np.testing.assert_allclose(warping.inverse(w, warping.apply(w, y)), y, atol=1e-8)


def test_identity_warping_equals_plain_lmm(small):
  eig = small["eig"]
  yr, xr = lmm.rotate(eig, small["y"], small["x"])
  ident = warping.identity()
  for reml in (False, True):
    wll = warped.log_likelihood(ident, jnp.asarray(0.4), jnp.asarray(small["y"]),
                                jnp.asarray(eig.U.T), jnp.asarray(xr), jnp.asarray(eig.s), reml)
    plain = lmm.profile(jnp.asarray(0.4), jnp.asarray(yr), jnp.asarray(xr), jnp.asarray(eig.s),
                        reml)[0]
    np.testing.assert_allclose(float(wll), float(plain), rtol=1e-10)


def test_warped_likelihood_equals_dense(small):
  eig = small["eig"]
  warp = _random_warp(np.random.default_rng(3), loc=float(small["y"].mean()), scale=1.5)
  xr = lmm.rotate(eig, small["x"])[0]
  ll = warped.log_likelihood(warp, jnp.asarray(-0.2), jnp.asarray(small["y"]),
                             jnp.asarray(eig.U.T), jnp.asarray(xr), jnp.asarray(eig.s))
  z = np.asarray(warping.apply(warp, jnp.asarray(small["y"])))
  _, beta, sg = lmm.profile(jnp.asarray(-0.2), jnp.asarray(lmm.rotate(eig, z)[0]), jnp.asarray(xr),
                            jnp.asarray(eig.s), False)
  dense = _dense_log_lik(z, small["x"], small["kin"], float(sg), float(sg) * np.exp(-0.2),
                         np.asarray(beta), False)
  jac = np.sum(np.log(np.asarray(warping.derivative(warp, jnp.asarray(small["y"])))))
  np.testing.assert_allclose(float(ll), dense + jac, rtol=1e-9)


def test_scan_equals_per_snp_dense_gls(small):
  eig = small["eig"]
  yr, xr, gr = lmm.rotate(eig, small["y"], small["x"], small["geno"])
  _, poly = kinship.standardise(small["geno"])
  log_delta = 0.25
  res = gwas.scan(log_delta, yr, xr, eig.s, gr, chunk=16, polymorphic=poly)
  v = small["kin"] + np.exp(log_delta) * np.eye(len(yr))
  n, p = small["x"].shape
  for j in [0, 1, 7, 50, 199]:
    a = np.column_stack([small["x"], small["geno"][:, j]])
    vi_a = np.linalg.solve(v, a)
    cov = np.linalg.inv(a.T @ vi_a)
    beta = cov @ vi_a.T @ small["y"]
    r1 = small["y"] - a @ beta
    rss1 = r1 @ np.linalg.solve(v, r1)
    vi_x = np.linalg.solve(v, small["x"])
    r0 = small["y"] - small["x"] @ np.linalg.solve(small["x"].T @ vi_x, vi_x.T @ small["y"])
    rss0 = r0 @ np.linalg.solve(v, r0)
    se = np.sqrt(cov[-1, -1] * rss1 / (n - p - 1))
    np.testing.assert_allclose(res.beta[j], beta[-1], rtol=1e-8)
    np.testing.assert_allclose(res.se[j], se, rtol=1e-8)
    np.testing.assert_allclose(res.chi2_lrt[j], n * np.log(rss0 / rss1), rtol=1e-7)
    np.testing.assert_allclose(res.pval_wald[j], scipy.stats.chi2.sf((beta[-1] / se) ** 2, 1),
                               rtol=1e-7)
    np.testing.assert_allclose(res.pval_lrt[j], scipy.stats.chi2.sf(n * np.log(rss0 / rss1), 1),
                               rtol=1e-7)
  np.testing.assert_allclose(speed.dense_gls_chi2(small["y"], small["x"], small["kin"], log_delta,
                                                  small["geno"][:, [0, 3]].astype(float)),
                             res.chi2_lrt[[0, 3]], rtol=1e-7)


def test_monomorphic_and_collinear_snps_are_flagged_not_crashing(small):
  eig = small["eig"]
  geno = small["geno"].astype(float).copy()
  geno[:, 9] = 2.0  # Constant: 2 * intercept.
  geno[:, 10] = 3.0 * small["x"][:, 1]  # Collinear with a covariate.
  yr, xr, gr = lmm.rotate(eig, small["y"], small["x"], geno)
  res = gwas.scan(0.0, yr, xr, eig.s, gr, chunk=32)
  for j in (5, 9, 10):
    assert not res.valid[j]
    assert np.isnan(res.pval_lrt[j]) and np.isnan(res.chi2_wald[j]) and np.isnan(res.beta[j])
  assert res.valid[[0, 1, 2, 3, 4, 6, 7, 8]].all()
  assert np.all(np.isfinite(res.pval_lrt[res.valid]))


def test_nan_phenotypes_are_dropped_with_a_count(data_dir):
  arrays = npz.load("mice_gwas", data_dir)
  y, x, keep, dropped = mice_experiment.prepare_trait(arrays, "Biochem.ALT", ("GENDER",))
  col = list(arrays["pheno_names"]).index("Biochem.ALT")
  expected = int(np.isnan(arrays["pheno"][:, col]).sum())
  assert dropped == expected > 0
  assert y.shape == (keep.sum(),) == (arrays["pheno"].shape[0] - dropped,)
  assert np.all(np.isfinite(y)) and x.shape == (y.shape[0], 2)
  with pytest.raises(ValueError, match="Unknown trait"):
    mice_experiment.prepare_trait(arrays, "Biochem.ALTT", ())
  yr = np.full(5, np.nan)
  with pytest.raises(ValueError, match="drop missing"):
    lmm.fit_null(yr, np.ones((5, 1)), np.ones(5))


@pytest.fixture(scope="module")
def mice_small(data_dir):
  arrays = npz.load("mice_gwas", data_dir)
  geno = arrays["genotypes"][:400, ::6]
  z, poly = kinship.standardise(geno)
  eig = lmm.eigendecompose((z @ z.T) / poly.sum())
  with jax.enable_x64(True):
    gr, xr = lmm.rotate(eig, geno, np.ones((400, 1)))
  return dict(geno=geno, z=z, poly=poly, eig=eig, gr=gr, xr=xr)


def test_null_pvalues_uniform_and_h2_recovered(mice_small):
  d = mice_small
  rng = np.random.default_rng(4)
  pvals, h2 = [], []
  for _ in range(4):
    sim = simulate.simulate(rng, d["z"], d["eig"], np.where(d["poly"])[0], 1, 1e-9, 0.6)
    (yr,) = lmm.rotate(d["eig"], sim.z)
    null = lmm.fit_null(yr, d["xr"], d["eig"].s)
    h2.append(null.h2)
    pvals.append(gwas.scan(null.log_delta, yr, d["xr"], d["eig"].s, d["gr"],
                           polymorphic=d["poly"]).pval_lrt)
  p = np.concatenate(pvals)
  p = p[np.isfinite(p)]
  # SNPs are in LD, so the KS test is anti-conservative; the check is still far from trivial.
  assert scipy.stats.kstest(p, "uniform").statistic < 0.05
  assert 0.85 < gwas.genomic_control(p) < 1.15
  assert abs(np.mean(h2) - 0.6) < 0.12, h2


def test_warped_lmm_recovers_latent_phenotype(mice_small):
  d = mice_small
  rng = np.random.default_rng(5)
  sim = simulate.simulate(rng, d["z"], d["eig"], np.where(d["poly"])[0], 3, 0.1, 0.4)
  y = np.exp(1.2 * sim.z)
  x = np.ones((y.size, 1))
  fit = warped.fit(y, x, d["eig"], num_restarts=2, max_iter=300)
  z_hat = np.asarray(warping.apply(fit.warp, jnp.asarray(y)))
  assert np.corrcoef(z_hat, sim.z)[0, 1] > 0.99 > np.corrcoef(y, sim.z)[0, 1]
  plain = lmm.fit_null(lmm.rotate(d["eig"], y)[0], d["xr"], d["eig"].s, reml=False)
  assert fit.log_lik > plain.log_lik + 50  # The log-normal is far from Gaussian.
  # Newton inverse maps warped predictions back onto the original scale.
  np.testing.assert_allclose(np.asarray(warping.inverse(fit.warp, jnp.asarray(z_hat))), y,
                             rtol=1e-8)
  with pytest.raises(ValueError, match="NaN"):
    warped.fit(np.append(y[:-1], np.nan), x, d["eig"])


def test_stepwise_selects_causal_snp_and_clumping(mice_small):
  d = mice_small
  j = int(np.where(d["poly"])[0][100])
  rng = np.random.default_rng(6)
  y = 0.6 * d["z"][:, j] + rng.normal(size=d["z"].shape[0])
  (yr,) = lmm.rotate(d["eig"], y)
  sel = gwas.stepwise(yr, d["xr"], d["eig"].s, d["gr"], threshold=1e-8, max_steps=3,
                      polymorphic=d["poly"])
  assert sel and sel[0] == j
  leads = gwas.clump_loci(np.array([1e-9, 1e-10, 0.5, 1e-9]), np.array(["1", "1", "1", "2"]),
                          np.array([1.0, 3.0, 4.0, 1.0]), 1e-6, 5.0)
  assert leads == [1, 3]


def test_baseline_transforms():
  y = np.exp(np.random.default_rng(7).normal(size=500))
  int_y = transforms.rank_inverse_normal(y)
  assert abs(scipy.stats.skew(int_y)) < 0.05 and np.all(np.argsort(int_y) == np.argsort(y))
  bc, lam = transforms.box_cox(y)
  assert abs(lam) < 0.2 and abs(scipy.stats.skew(bc)) < 0.3
  with pytest.raises(ValueError, match="Unknown simulation transform"):
    transforms.get_transform("sqaure")


@pytest.mark.parametrize("name", ["warped_lmm_sim", "warped_lmm", "warped_lmm_wheat"])
def test_smoke_end_to_end(name, data_dir, tmp_path):
  config = _load_config(name, "smoke")
  config.data_dir = data_dir
  if name == "warped_lmm":  # Keep the test fast; the speed benchmark runs in the :cpu variant.
    config.mice.speed.enabled = False
  config.lock()
  results = main.run(config, str(tmp_path))
  with open(tmp_path / "results.json") as f:
    saved = json.load(f)
  assert saved["wall_time_sec"] > 0
  if name == "warped_lmm_sim":
    row = results["table"]["exp/warped"]
    assert 0 < row["h2_mean"] < 1 and row["num_null_snps"] > 0
    assert (tmp_path / "figures" / "qq_null_snps.png").exists()
  elif name == "warped_lmm":
    for trait, row in results["traits"].items():
      assert row["num_dropped_missing"] > 0
      assert 0 <= row["warped_lmm"]["h2"] <= 1 and "num_stepwise_loci" in row["lmm"]
      assert (tmp_path / "figures" / f"manhattan_{trait}.png").exists()
    assert (tmp_path / "figures" / "warping_curves.png").exists()
  else:
    row = results["traits"]["Y0"]
    assert 0.1 < row["lmm"]["r_mean"] < 0.9 and np.isfinite(row["warped_mean"]["log_density_mean"])


def test_bad_config_values_raise_clear_errors(data_dir, tmp_path):
  config = _load_config("warped_lmm_sim", "smoke")
  config.data_dir = data_dir
  config.sim.transforms = ("exp", "squar")
  with pytest.raises(ValueError, match="Unknown simulation transform"):
    main.run(config, str(tmp_path))
  config = config_dict.ConfigDict(config.to_dict())
  config.task = "simulation"
  with pytest.raises(ValueError, match="Unknown warped_lmm task"):
    main.run(config, str(tmp_path))


def test_family_genotypes_are_related_within_families():
  rng = np.random.default_rng(3)
  geno = simulate.family_genotypes(rng, n=40, m=500, num_families=2)
  assert geno.shape == (40, 500) and set(np.unique(geno)) <= {0, 1, 2}
  corr = np.corrcoef(geno)
  # Two families: every individual correlates strongly with about half of the others.
  strong = (corr > 0.3).sum(axis=1) - 1
  assert np.all(strong >= 5) and np.all(strong < 39)
