"""Tests for metanas.automl: GP-LVM likelihood, GP posterior, EI, BO, baselines, end-to-end runs."""

import importlib.util
import itertools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from metanas import main
from metanas.automl import baselines
from metanas.automl import bayesopt
from metanas.automl import data as data_lib
from metanas.automl import evaluation
from metanas.automl import pmf

# One compiled BO loop for all tests (tracing `lax.scan` eagerly recompiles on every call).
_bo_search = jax.jit(bayesopt.bo_search,
                     static_argnames=("num_evals", "fallback", "acquisition_fn"))

_CONFIG = os.path.join(os.path.dirname(__file__), os.pardir, "configs", "pmf_automl.py")


def _get_config(arg):
  spec = importlib.util.spec_from_file_location("pmf_automl_config", _CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _dense_kernel(latents, lengthscale, signal):
  """Dense NumPy RBF-ARD kernel, written independently of pmf.rbf_ard."""
  n = latents.shape[0]
  k = np.empty((n, n))
  for i in range(n):
    for j in range(n):
      k[i, j] = signal * np.exp(-0.5 * np.sum(((latents[i] - latents[j]) / lengthscale) ** 2))
  return k


def _random_params(rng, n, q):
  return {"latents": jnp.asarray(rng.normal(size=(n, q)), jnp.float32),
          "log_lengthscale": jnp.asarray(np.log(rng.uniform(0.7, 2.0, size=q)), jnp.float32),
          "log_signal": jnp.asarray(np.log(1.3), jnp.float32),
          "log_noise": jnp.asarray(np.log(0.2), jnp.float32)}


def _dense_cov(params):
  lat = np.asarray(params["latents"], np.float64)
  ls = np.exp(np.asarray(params["log_lengthscale"], np.float64))
  signal = float(np.exp(2 * params["log_signal"]))
  return _dense_kernel(lat, ls, signal), float(pmf.noise_variance(params))


def test_masked_marginal_likelihood_matches_scipy_on_observed_rows():
  rng = np.random.default_rng(0)
  n, q, d = 9, 3, 5
  params = _random_params(rng, n, q)
  y = rng.normal(size=(n, d))
  mask = (rng.random((n, d)) < 0.6).astype(np.float32)
  mask[:2, :] = 1.0  # Every column has observations.
  mask[:, 0] = 1.0  # One fully observed column.
  columns_ll = jax.jit(pmf.columns_log_marginal)
  got = np.asarray(columns_ll(params, jnp.asarray(y, jnp.float32), jnp.asarray(mask)))
  k, noise = _dense_cov(params)
  want = []
  for j in range(d):
    obs = mask[:, j] > 0
    cov = k[np.ix_(obs, obs)] + noise * np.eye(obs.sum())
    want.append(stats.multivariate_normal(np.zeros(obs.sum()), cov).logpdf(y[obs, j]))
  np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
  # The fully observed column through the shared-Cholesky path.
  dense = jax.jit(pmf.dense_log_marginal)(params, jnp.asarray(y[:, :1], jnp.float32))
  np.testing.assert_allclose(dense, want[:1], rtol=2e-4, atol=2e-4)
  # Values at missing rows must not matter.
  y2 = np.where(mask > 0, y, 1e3)
  got2 = columns_ll(params, jnp.asarray(y2, jnp.float32), jnp.asarray(mask))
  np.testing.assert_allclose(got2, got, rtol=1e-5)
  # The row-subsampled path over all rows (permuted) gives the same numbers.
  rows = jnp.asarray(np.stack([rng.permutation(n) for _ in range(d)]))
  y_r = np.take_along_axis(y.T, np.asarray(rows), 1)
  m_r = np.take_along_axis(mask.T, np.asarray(rows), 1)
  got3 = jax.jit(pmf.subsampled_log_marginal)(params, rows, jnp.asarray(y_r, jnp.float32),
                                              jnp.asarray(m_r))
  np.testing.assert_allclose(got3, want, rtol=2e-4, atol=2e-4)


def _reference_log_marginal(params, y, mask):
  """Plain autodiff-able masked likelihood (Cholesky, no custom gradient)."""
  cov = pmf.covariance(params, params["latents"])
  outer = mask[:, None] * mask[None, :]
  chol = jnp.linalg.cholesky(outer * cov + jnp.diag(1.0 - mask))
  alpha = jax.scipy.linalg.solve_triangular(chol, mask * y, lower=True)
  return -0.5 * (alpha @ alpha + 2 * jnp.sum(jnp.log(jnp.diagonal(chol)))
                 + jnp.sum(mask) * jnp.log(2 * jnp.pi))


def test_custom_gradients_match_autodiff_and_finite_differences():
  rng = np.random.default_rng(2)
  params = _random_params(rng, 6, 2)
  y = jnp.asarray(rng.normal(size=6), jnp.float32)
  mask = jnp.asarray([1, 1, 0, 1, 0, 1], jnp.float32)
  ours = lambda p: pmf.masked_log_marginal(pmf.covariance(p, p["latents"]), y, mask)
  dense = lambda p: pmf.dense_log_marginal(p, y[:, None])[0]
  reference_full = lambda p: _reference_log_marginal(p, y, jnp.ones(6))
  g_ours = jax.jit(jax.grad(ours))(params)
  g_ref = jax.jit(jax.grad(lambda p: _reference_log_marginal(p, y, mask)))(params)
  chex.assert_trees_all_close(g_ours, g_ref, rtol=1e-3, atol=1e-4)
  chex.assert_trees_all_close(jax.jit(jax.grad(dense))(params),
                              jax.jit(jax.grad(reference_full))(params), rtol=1e-3, atol=1e-4)
  # Central finite difference along one latent coordinate (float32: a loose tolerance).
  eps = 1e-2
  bump = lambda s: {**params, "latents": params["latents"].at[1, 0].add(s * eps)}
  ours_jit = jax.jit(ours)
  fd = (float(ours_jit(bump(1.0))) - float(ours_jit(bump(-1.0)))) / (2 * eps)
  np.testing.assert_allclose(float(g_ours["latents"][1, 0]), fd, rtol=2e-2, atol=2e-3)


def test_sample_observed_rows_only_picks_observed():
  mask = np.zeros((20, 3), np.float32)
  mask[[1, 4, 7, 9, 15], 0] = 1
  mask[:, 1] = 1
  mask[[2, 3], 2] = 1
  rows = np.asarray(pmf.sample_observed_rows(jax.random.key(0), jnp.asarray(mask), 4))
  chex.assert_shape(rows, (3, 4))
  assert set(rows[0]) <= {1, 4, 7, 9, 15} and len(set(rows[0])) == 4
  assert len(set(rows[1])) == 4
  assert {2, 3} <= set(rows[2])  # Fewer observed than 4: both taken, the rest masked out later.


def test_nan_is_missing_and_all_missing_column_errors():
  y = np.array([[0.1, np.nan, 0.3], [np.nan, 0.5, 0.2], [0.4, 0.6, np.nan]])
  values, mask = pmf.prepare_matrix(y)
  np.testing.assert_array_equal(mask, ~np.isnan(y))
  np.testing.assert_array_equal(values, np.nan_to_num(y).astype(np.float32))
  y[:, 1] = np.nan
  with pytest.raises(ValueError, match="all-missing dataset column.*indices \\[1\\].*Drop"):
    pmf.prepare_matrix(y)
  with pytest.raises(ValueError, match="infinite"):
    pmf.prepare_matrix(np.array([[np.inf, 1.0]]))
  with pytest.raises(ValueError, match="num_latent=5"):
    pmf.pca_latents(np.zeros((4, 3)), np.ones((4, 3)), 5)


def test_expected_improvement_closed_form_against_quadrature():
  cases = np.array([(0.3, 0.5, 0.1), (-1.0, 0.2, 0.0), (2.0, 1.5, 2.5), (0.0, 1e-2, 0.5)])
  got_all = np.asarray(jax.jit(bayesopt.expected_improvement)(*jnp.asarray(cases.T, jnp.float32)))
  for (mean, std, best), got in zip(cases, got_all):
    integrand = lambda f: max(best - f, 0.0) * stats.norm.pdf(f, mean, std)
    want, _ = integrate.quad(integrand, mean - 12 * std, best, limit=200)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_gp_posterior_matches_dense_numpy():
  rng = np.random.default_rng(1)
  n, q = 12, 2
  params = _random_params(rng, n, q)
  obs = np.array([3, 0, 7, 11])
  slots = np.array([3, 0, 7, 11, 5, 5])  # Two empty slots (mask 0) with arbitrary indices.
  slot_mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
  y_obs = rng.normal(size=4)
  y_slots = np.concatenate([y_obs, [9.0, -9.0]])
  mean, var = jax.jit(bayesopt.gp_posterior)(params, jnp.asarray(slots),
                                              jnp.asarray(y_slots, jnp.float32),
                                              jnp.asarray(slot_mask))
  k, noise = _dense_cov(params)
  koo = k[np.ix_(obs, obs)] + noise * np.eye(4)
  kso = k[:, obs]
  want_mean = kso @ np.linalg.solve(koo, y_obs)
  want_var = np.diag(k) - np.einsum("ij,ji->i", kso, np.linalg.solve(koo, kso.T))
  np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(var, np.maximum(want_var, 1e-6), rtol=1e-3, atol=1e-4)


def test_column_refit_matches_dense_profile_likelihood():
  rng = np.random.default_rng(4)
  n, q = 10, 2
  params = _random_params(rng, n, q)
  obs = np.array([2, 9, 4, 0, 6])
  slots = np.concatenate([obs, [1, 1]])  # Two empty slots with arbitrary indices and values.
  slot_mask = np.array([1, 1, 1, 1, 1, 0, 0], np.float32)
  y_obs = 1.7 * rng.normal(size=obs.size)
  y_slots = jnp.asarray(np.concatenate([y_obs, [5.0, -5.0]]), jnp.float32)
  grid = np.array([1e-3, 0.05, 0.3, 1.0, 3.0])
  k, _ = _dense_cov(params)
  koo = k[np.ix_(obs, obs)]
  # Dense log-likelihood of y_obs ~ N(0, a (K + g I)) at the closed-form a for each g, and a check
  # that this a really maximises the likelihood over a.
  dense_ll, dense_scale = [], []
  for g in grid:
    cov = koo + g * np.eye(obs.size)
    a = y_obs @ np.linalg.solve(cov, y_obs) / obs.size
    ll = lambda s, cov=cov: stats.multivariate_normal(np.zeros(obs.size), s * cov).logpdf(y_obs)
    assert ll(a) >= max(ll(0.9 * a), ll(1.1 * a))
    dense_ll.append(ll(a))
    dense_scale.append(a)
  best = int(np.argmax(dense_ll))
  scale, nugget = jax.jit(bayesopt.column_noise_fit)(params, jnp.asarray(slots), y_slots,
                                                     jnp.asarray(slot_mask),
                                                     jnp.asarray(grid, jnp.float32))
  np.testing.assert_allclose(float(nugget), grid[best], rtol=1e-6)
  np.testing.assert_allclose(float(scale), dense_scale[best], rtol=1e-3)
  # Predictive of the lookups: mean k_*^T (K + g I)^-1 y, variance a (k_** - ... + g).
  mean, var = jax.jit(bayesopt.column_posterior)(params, jnp.asarray(slots), y_slots,
                                                 jnp.asarray(slot_mask),
                                                 jnp.asarray(grid, jnp.float32))
  cov = koo + grid[best] * np.eye(obs.size)
  kso = k[:, obs]
  want_mean = kso @ np.linalg.solve(cov, y_obs)
  want_var = dense_scale[best] * (np.diag(k) - np.einsum("ij,ji->i", kso,
                                                         np.linalg.solve(cov, kso.T)) + grid[best])
  np.testing.assert_allclose(mean, want_mean, rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(var, want_var, rtol=1e-3, atol=1e-4)
  # Even at an evaluated pipeline the lookup variance keeps the nugget: a (var_f + g) >= a g.
  assert np.all(np.asarray(var) >= 0.999 * dense_scale[best] * grid[best])


def test_column_fit_with_lengthscale_factors_matches_dense_profile_likelihood():
  rng = np.random.default_rng(6)
  n, q = 12, 2
  params = _random_params(rng, n, q)
  obs = np.array([3, 0, 7, 11, 5, 8])
  slots = np.concatenate([obs, [2]])
  slot_mask = np.array([1, 1, 1, 1, 1, 1, 0], np.float32)
  y_obs = rng.normal(size=obs.size)
  y_slots = jnp.asarray(np.concatenate([y_obs, [3.0]]), jnp.float32)
  noise_grid, ls_grid = np.array([1e-3, 0.1, 1.0]), np.array([0.5, 1.0, 2.0])
  lat = np.asarray(params["latents"], np.float64)
  ls = np.exp(np.asarray(params["log_lengthscale"], np.float64))
  signal = float(np.exp(2 * params["log_signal"]))
  best_ll, best = -np.inf, None
  for g in noise_grid:
    for c in ls_grid:
      k = _dense_kernel(lat, c * ls, signal)[np.ix_(obs, obs)] + g * np.eye(obs.size)
      a = y_obs @ np.linalg.solve(k, y_obs) / obs.size
      ll = stats.multivariate_normal(np.zeros(obs.size), a * k).logpdf(y_obs)
      if ll > best_ll:
        best_ll, best = ll, (a, g, c, k)
  scale, nugget, factor = jax.jit(bayesopt.column_fit)(
      params, jnp.asarray(slots), y_slots, jnp.asarray(slot_mask),
      jnp.asarray(noise_grid, jnp.float32), jnp.asarray(ls_grid, jnp.float32))
  np.testing.assert_allclose([float(nugget), float(factor)], best[1:3], rtol=1e-6)
  np.testing.assert_allclose(float(scale), best[0], rtol=1e-3)
  # The posterior uses the chosen factor: dense mean with lengthscales c * l.
  mean, _ = jax.jit(bayesopt.column_posterior)(
      params, jnp.asarray(slots), y_slots, jnp.asarray(slot_mask),
      jnp.asarray(noise_grid, jnp.float32), jnp.asarray(ls_grid, jnp.float32))
  kso = _dense_kernel(lat, best[2] * ls, signal)[:, obs]
  np.testing.assert_allclose(mean, kso @ np.linalg.solve(best[3], y_obs), rtol=1e-3, atol=1e-4)


def test_ei_fallback_picks_by_variance_or_mean_once_ei_is_below_threshold():
  g, params = _grid_params()
  n = g.shape[0]
  # An asymmetric target and warm start, so no two candidates tie on mean or variance.
  y = np.sum((g - np.asarray([0.7, -1.3])) ** 2, axis=1).astype(np.float32)
  warm = np.array([0, 12, 19], np.int32)
  z = (y[warm] - y[warm].mean()) / y[warm].std()
  mean, var = bayesopt.gp_posterior(params, jnp.asarray(warm), jnp.asarray(z), jnp.ones((3,)))
  mean, var = np.asarray(mean), np.asarray(var)
  rest = np.setdiff1d(np.arange(n), warm)
  assert np.diff(np.sort(var[rest])[-2:])[0] > 1e-3 and np.diff(np.sort(mean[rest])[:2])[0] > 1e-3
  common = dict(num_evals=4)
  args = (params, jnp.asarray(y), jnp.ones((n,), bool), jnp.asarray(warm), jnp.asarray(3))
  # A threshold above any EI: the first BO pick is the fallback's choice among the candidates.
  chosen_var, _ = _bo_search(*args, explore_below=1e9, fallback="variance", **common)
  chosen_mean, _ = _bo_search(*args, explore_below=1e9, fallback="mean", **common)
  assert int(chosen_var[3]) == rest[np.argmax(var[rest])]
  assert int(chosen_mean[3]) == rest[np.argmin(mean[rest])]
  # Threshold 0 (default) is plain EI.
  chosen_ei, _ = _bo_search(*args, **common)
  best = z.min()
  ei = np.asarray(bayesopt.expected_improvement(jnp.asarray(mean), jnp.sqrt(jnp.asarray(var)),
                                                best))
  assert int(chosen_ei[3]) == rest[np.argmax(ei[rest])]
  # The fallback still never re-evaluates a pipeline or picks an unavailable one.
  available = np.ones(n, bool)
  available[[6, 18]] = False
  for fallback in bayesopt.FALLBACKS:
    chosen, best_y = _bo_search(params, jnp.asarray(y), jnp.asarray(available), jnp.asarray(warm),
                                jnp.asarray(3), num_evals=n - 2, explore_below=1e9,
                                fallback=fallback)
    chosen = np.asarray(chosen).tolist()
    assert len(set(chosen)) == n - 2 and not set(chosen) & {6, 18}
    np.testing.assert_allclose(best_y, np.minimum.accumulate(y[chosen]))
  with pytest.raises(ValueError, match="fallback"):
    bayesopt.bo_search(*args, num_evals=4, fallback="ucb")


def test_column_refit_picks_large_nugget_for_a_column_the_latents_cannot_explain():
  rng = np.random.default_rng(5)
  n = 40
  params = _random_params(rng, n, 2)
  grid = jnp.asarray([1e-3, 1e-2, 1e-1, 1.0, 10.0], jnp.float32)
  k, _ = _dense_cov(params)
  smooth = np.linalg.cholesky(k + 1e-6 * np.eye(n)) @ rng.normal(size=n)  # A draw from the GP.
  rough = rng.normal(size=n)  # White noise: no relation to the latents.
  idx, ones = jnp.arange(n), jnp.ones((n,))
  fit = jax.jit(bayesopt.column_noise_fit)
  _, g_smooth = fit(params, idx, jnp.asarray(smooth, jnp.float32), ones, grid)
  _, g_rough = fit(params, idx, jnp.asarray(rough, jnp.float32), ones, grid)
  assert float(g_smooth) <= 1e-2 and float(g_rough) >= 1.0, (g_smooth, g_rough)


def test_column_refit_bo_finds_optimum_and_never_repeats():
  g, params = _grid_params()
  n = g.shape[0]
  grid = jnp.asarray(np.geomspace(1e-3, 1.0, 10), jnp.float32)
  available = np.ones(n, bool)
  available[[6, 18]] = False
  hits = []
  for centre in [(1.0, -1.0), (-2.0, 2.0), (0.0, 1.0)]:
    y = np.sum((g - np.asarray(centre)) ** 2, axis=1)
    chosen, best = _bo_search(params, jnp.asarray(y, jnp.float32), jnp.asarray(available),
                              jnp.asarray([0, 12], jnp.int32), jnp.asarray(2), num_evals=n - 2,
                              column_noise=grid)
    chosen = np.asarray(chosen)
    assert len(set(chosen.tolist())) == n - 2 and not set(chosen.tolist()) & {6, 18}
    np.testing.assert_allclose(best, np.minimum.accumulate(y[chosen]), rtol=1e-6)
    hits.append(int(np.argmax(np.asarray(best) <= y[available].min())) + 1)
  # Random search needs on average (23 + 1) / 2 = 12 evaluations to hit the optimum.
  assert max(hits) <= 7, hits


def _grid_params():
  g = np.stack(np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-2, 2, 5)), -1).reshape(-1, 2)
  params = pmf.init_params(g.astype(np.float32), lengthscale=1.5, signal=1.0, noise=1e-3)
  return g, params


def test_bo_finds_optimum_on_tiny_synthetic_matrix_and_never_repeats():
  g, params = _grid_params()
  n = g.shape[0]
  results = []
  for centre in [(1.0, -1.0), (-2.0, 2.0), (0.0, 1.0)]:
    y = jnp.asarray(np.sum((g - np.asarray(centre)) ** 2, axis=1), jnp.float32)
    warm = jnp.asarray([0, 12], jnp.int32)  # A corner and the centre.
    chosen, best = _bo_search(params, y, jnp.ones((n,), bool), warm, jnp.asarray(2), num_evals=n)
    chosen = np.asarray(chosen)
    assert sorted(chosen.tolist()) == list(range(n))  # All distinct: a permutation.
    np.testing.assert_array_equal(chosen[:2], [0, 12])
    np.testing.assert_allclose(best, np.minimum.accumulate(np.asarray(y)[chosen]))
    results.append(int(np.argmax(np.asarray(best) <= float(np.min(y)))) + 1)
  # Random search needs on average (n + 1) / 2 = 13 evaluations to hit the optimum.
  assert max(results) <= 7, results
  # Unavailable pipelines are never chosen.
  available = np.ones(n, bool)
  available[[6, 18]] = False
  y = jnp.asarray(np.sum(g ** 2, axis=1), jnp.float32)
  chosen, _ = _bo_search(params, y, jnp.asarray(available), jnp.asarray([0], jnp.int32),
                         jnp.asarray(1), num_evals=n - 2)
  assert not set(np.asarray(chosen).tolist()) & {6, 18}
  assert len(set(np.asarray(chosen).tolist())) == n - 2


def test_fit_ensemble_of_one_is_the_single_fit_and_members_differ():
  rng = np.random.default_rng(7)
  y = (rng.normal(size=(10, 2)) @ rng.normal(size=(2, 12))).astype(np.float32)
  z, mask = pmf.standardize_columns(y, np.ones_like(y))[0], np.ones_like(y)
  kw = dict(num_latent=2, num_steps=6, batch_size=3, learning_rate=0.05)
  key = jax.random.key(3)
  single = pmf.fit(z, mask, key, **kw)
  one = pmf.fit_ensemble(z, mask, key, num_fits=1, **kw)
  assert not pmf.is_ensemble(one)
  chex.assert_trees_all_equal(one, single)  # E = 1 is the single fit, bit for bit.
  logged = []
  two = pmf.fit_ensemble(z, mask, key, num_fits=2, log_every=3,
                         log_fn=lambda e, step, m: logged.append((e, step)), **kw)
  assert pmf.is_ensemble(two)
  chex.assert_shape(two["latents"], (2, 10, 2))
  chex.assert_trees_all_equal(pmf.member(two, 0), single)
  # Member 1 saw other minibatches (same PCA init), so it ends elsewhere.
  assert np.abs(np.asarray(two["latents"][1] - two["latents"][0])).max() > 1e-4
  assert logged == [(0, 3), (0, 6), (1, 3), (1, 6)]
  with pytest.raises(ValueError, match="num_fits"):
    pmf.fit_ensemble(z, mask, key, num_fits=0, **kw)


def test_ensemble_ei_is_the_mean_of_the_members_ei():
  rng = np.random.default_rng(8)
  n = 11
  members = [_random_params(rng, n, 2) for _ in range(2)]
  stacked = pmf.stack_params(members)
  obs_idx = jnp.asarray([4, 1, 9, 0], jnp.int32)
  z = jnp.asarray(rng.normal(size=4), jnp.float32)
  obs_mask = jnp.asarray([1, 1, 1, 0], jnp.float32)  # One empty slot.
  best = jnp.min(jnp.where(obs_mask > 0, z, jnp.inf))
  acq = jax.jit(bayesopt.acquisition)
  for grid in (None, jnp.asarray([0.01, 0.1], jnp.float32)):
    one = [acq(p, obs_idx, z, obs_mask, best, 0.0, grid) for p in members]
    mean, var, ei = acq(stacked, obs_idx, z, obs_mask, best, 0.0, grid)
    np.testing.assert_allclose(ei, (one[0][2] + one[1][2]) / 2, rtol=1e-5, atol=1e-7)
    # Each member's EI is that of its own posterior (with its own column refit).
    post = (bayesopt.gp_posterior(members[1], obs_idx, z, obs_mask) if grid is None else
            bayesopt.column_posterior(members[1], obs_idx, z, obs_mask, grid))
    np.testing.assert_allclose(one[1][2], bayesopt.expected_improvement(
        post[0], jnp.sqrt(post[1]), best), rtol=1e-5, atol=1e-7)
    # Mixture mean and variance (law of total variance).
    means = np.stack([np.asarray(o[0], np.float64) for o in one])
    variances = np.stack([np.asarray(o[1], np.float64) for o in one])
    np.testing.assert_allclose(mean, means.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, variances.mean(0) + means.var(0), rtol=1e-4, atol=1e-6)
    # A stack of one member gives that member's numbers.
    got = acq(pmf.stack_params(members[:1]), obs_idx, z, obs_mask, best, 0.0, grid)
    for a, b in zip(got, one[0]):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_ensemble_bo_search_runs_and_never_repeats():
  g, params = _grid_params()
  n = g.shape[0]
  y = jnp.asarray(np.sum((g - np.asarray([1.0, -1.0])) ** 2, axis=1), jnp.float32)
  grid = jnp.asarray([0.01], jnp.float32)
  args = (y, jnp.ones((n,), bool), jnp.asarray([0, 12], jnp.int32), jnp.asarray(2))
  single, _ = _bo_search(params, *args, num_evals=10, column_noise=grid)
  stack1, _ = _bo_search(pmf.stack_params([params]), *args, num_evals=10, column_noise=grid)
  np.testing.assert_array_equal(stack1, single)
  other = pmf.init_params(g.astype(np.float32) * 0.8, lengthscale=1.0, signal=1.0, noise=1e-3)
  available = np.ones(n, bool)
  available[[6, 18]] = False
  chosen, best = _bo_search(pmf.stack_params([params, other]), y, jnp.asarray(available),
                            *args[2:], num_evals=n - 2, column_noise=grid)
  chosen = np.asarray(chosen).tolist()
  assert len(set(chosen)) == n - 2 and not set(chosen) & {6, 18}
  np.testing.assert_allclose(best, np.minimum.accumulate(np.asarray(y)[chosen]))
  assert int(np.argmax(np.asarray(best) <= float(np.min(y)))) + 1 <= 7


def test_learnt_latents_predict_held_out_entries_better_than_column_mean():
  rng = np.random.default_rng(0)
  n, d, rank = 40, 60, 2
  factors = rng.normal(size=(n, rank))  # Pipeline factors shared by all datasets.
  y = factors @ rng.normal(size=(rank, d)) + 0.05 * rng.normal(size=(n, d))
  mask = (rng.random((n, d)) < 0.5).astype(np.float32)
  z, mean, std = pmf.standardize_columns(y.astype(np.float32), mask)
  params = pmf.fit(z, mask, jax.random.key(0), num_latent=3, num_steps=300, batch_size=20,
                   learning_rate=0.03)
  pred = np.asarray(bayesopt.predict_columns(params, jnp.asarray(z), jnp.asarray(mask)))
  held = mask == 0
  truth = (y - mean) / std
  rmse_pmf = np.sqrt(np.mean((pred - truth)[held] ** 2))
  rmse_mean = np.sqrt(np.mean(truth[held] ** 2))  # The column mean is 0 after standardising.
  assert rmse_pmf < 0.5 * rmse_mean, (rmse_pmf, rmse_mean)
  # BO with the learnt latents on new columns of the same low-rank family finds the best
  # pipeline much faster than random search would (expected (n + 1) / 2 = 20.5 evaluations).
  hits = []
  for _ in range(5):
    col = factors @ rng.normal(size=rank)
    _, best = _bo_search(params, jnp.asarray(col, jnp.float32), jnp.ones((n,), bool),
                         jnp.asarray([int(rng.integers(n))], jnp.int32), jnp.asarray(1),
                         num_evals=n)
    hits.append(int(np.argmax(np.asarray(best) <= col.min() + 1e-6)) + 1)
  assert np.mean(hits) < 10, hits


def test_random_search_speeds_match_brute_force():
  y = np.random.default_rng(3).random(30)
  available = np.ones(30, bool)
  available[[2, 5]] = False
  for speed in (1, 2, 4):
    got = baselines.random_search(y, available, 10, speed, np.random.default_rng(7))
    order = np.random.default_rng(7).permutation(np.flatnonzero(available))
    want = [y[order[:min(speed * t, order.size)]].min() for t in range(1, 11)]
    np.testing.assert_allclose(got, want)
  np.testing.assert_allclose(baselines.random_search(y, available, 10, 4,
                                                     np.random.default_rng(0))[-1],
                             y[available].min())  # 40 draws >= 28 available: optimum found.
  with pytest.raises(ValueError, match="num_evals=29"):
    baselines.random_search(y, available, 29, 1, np.random.default_rng(0))


def test_random_search_expected_matches_enumeration_and_sampling():
  # 6 pipelines (one unavailable, a tie at the optimum): exact expectation over all subsets.
  y = np.array([0.3, 0.1, 0.5, 0.1, 0.9, 0.05])
  available = np.array([True, True, True, True, True, False])
  vals = y[available]
  for speed in (1, 2, 4):
    got = baselines.random_search_expected(y, available, 3, speed)
    want = [np.mean([min(c) for c in itertools.combinations(vals, min(speed * t, vals.size))])
            for t in (1, 2, 3)]
    np.testing.assert_allclose(got, want, rtol=1e-10)
  # A larger column: the Monte-Carlo mean of random_search converges to it.
  rng = np.random.default_rng(5)
  y = rng.random(219)
  available = rng.random(219) < 0.9
  exact = baselines.random_search_expected(y, available, 50, 4)
  draws = np.stack([baselines.random_search(y, available, 50, 4, rng) for _ in range(4000)])
  se = draws.std(axis=0) / np.sqrt(draws.shape[0])
  assert np.all(np.abs(draws.mean(axis=0) - exact) <= 4 * se + 1e-12)
  assert exact[-1] == pytest.approx(y[available].min())  # 200 draws >= available: optimum.
  with pytest.raises(ValueError, match="speed"):
    baselines.random_search_expected(y, available, 5, 0)


def test_average_rank_order_and_warm_start_brute_force():
  rng = np.random.default_rng(4)
  values = rng.random((6, 5))
  mask = (rng.random((6, 5)) < 0.7).astype(np.float32)
  mask[0, :] = 1
  mean_rank = []
  for p in range(6):
    rs = []
    for dset in range(5):
      obs = np.flatnonzero(mask[:, dset])
      if mask[p, dset]:
        rs.append(np.sum(values[obs, dset] < values[p, dset]) / max(obs.size - 1, 1))
    mean_rank.append(np.mean(rs) if rs else np.inf)
  np.testing.assert_array_equal(baselines.average_rank_order(values, mask), np.argsort(mean_rank))
  # Warm start: dataset 2 is nearest, then 0, then 4 ...; take each one's best unchosen pipeline.
  values = np.array([[0.1, 0.9, 0.5], [0.2, 0.1, 0.4], [0.3, 0.5, 0.1], [0.9, 0.9, 0.9]])
  mask = np.ones_like(values)
  feats = np.array([[1.0], [5.0], [0.1]])
  warm = baselines.meta_feature_warm_start(values, mask, feats, np.array([0.0]),
                                           np.ones(4, bool), 2)
  np.testing.assert_array_equal(warm, [2, 0])
  available = np.array([True, True, False, True])
  warm = baselines.meta_feature_warm_start(values, mask, feats, np.array([0.0]), available, 3)
  np.testing.assert_array_equal(warm, [1, 0, 3])  # 2 unavailable; 1 is next best on dataset 2.


def test_method_ranks_brute_force_with_ties():
  best = np.array([[[[0.1, 0.1]]], [[[0.2, 0.1]]], [[[0.05, 0.3]]]])  # [M=3, R=1, D=1, T=2]
  ranks = evaluation.method_ranks(best)
  np.testing.assert_allclose(ranks[:, 0, :], [[2.0, 1.5], [3.0, 1.5], [1.0, 3.0]])
  mean, se = evaluation.mean_and_stderr(np.array([[1.0, 2.0], [3.0, 2.0]]))
  np.testing.assert_allclose(mean, [2.0, 2.0])
  np.testing.assert_allclose(se, [1.0, 0.0])


def test_sparsify_keeps_subset():
  rng = np.random.default_rng(0)
  full = (rng.random((50, 20)) < 0.9).astype(np.float32)
  kept = data_lib.sparsify(full, 0.1, rng)
  assert np.all(kept <= full)
  assert np.all(kept.sum(axis=0) >= 2)
  assert 0.07 < kept.sum() / full.sum() < 0.16
  with pytest.raises(ValueError, match="keep fraction"):
    data_lib.sparsify(full, 0.0, rng)


def _check_results(workdir, results, num_evals):
  with open(os.path.join(workdir, "results.json")) as f:
    on_disk = json.load(f)
  assert on_disk["num_test"] == results["num_test"]
  assert os.path.getsize(os.path.join(workdir, "regret_rank.png")) > 1000
  for entry in results["by_sparsity"].values():
    curves = entry["curves"]
    search = results["config"]["search"]
    refit = {"pmf_ei_paper"} if search["column_noise"] or search["explore_below"] > 0 else set()
    other_warm = "pmf_ei_rankwarm" if search["warm_start"] == "nn" else "pmf_ei_nnwarm"
    assert set(curves) == {"pmf_ei", other_warm, "random_x1", "random_x2", "random_x4",
                           "avg_rank_portfolio", "metafeat_nn_random"} | refit
    for c in curves.values():
      chex.assert_shape(c["regret_mean"], (num_evals,))
      assert np.all(c["regret_mean"] >= -1e-7)
      assert np.all(np.diff(c["regret_mean"]) <= 1e-7)
    total = sum(c["rank_mean"] for c in curves.values() if "rank_mean" in c)
    np.testing.assert_allclose(total, 21.0, rtol=1e-6)  # Ranks of 6 methods sum to 1 + ... + 6.
    # PMF+EI shares its warm start with the meta-feature arm ("nn") or starts with the
    # portfolio's first pipeline ("rank"), so they agree at iteration 1; so does the ablation.
    nn_arm, rank_arm = (("pmf_ei", other_warm) if search["warm_start"] == "nn"
                        else (other_warm, "pmf_ei"))
    np.testing.assert_allclose(curves[nn_arm]["regret_mean"][0],
                               curves["metafeat_nn_random"]["regret_mean"][0])
    np.testing.assert_allclose(curves[rank_arm]["regret_mean"][0],
                               curves["avg_rank_portfolio"]["regret_mean"][0])


def test_smoke_config_end_to_end(data_dir, tmp_path):
  config = _get_config("smoke")
  config.data_dir = data_dir
  results = main.run(config, str(tmp_path))
  assert results["num_test"] == 4 and results["num_pipelines"] == 219
  assert os.path.exists(os.path.join(str(tmp_path), "metrics.jsonl"))
  _check_results(str(tmp_path), results, 10)


def test_smoke_config_with_an_ensemble_of_fits_and_thompson_sampling(data_dir, tmp_path):
  config = _get_config("smoke")
  config.data_dir = data_dir
  config.pmf.num_fits = 2
  config.search.acquisition = "thompson"
  results = main.run(config, str(tmp_path))
  _check_results(str(tmp_path), results, 10)
  entry = results["by_sparsity"]["keep_100pct"]
  assert np.asarray(entry["noise_variance"]).shape == (2,)
  assert np.asarray(entry["lengthscales"]).shape == (2, 3)


def test_paper_format_on_synthetic_files(tmp_path):
  rng = np.random.default_rng(0)
  n, d = 30, 12
  ids = np.arange(100, 100 + d)
  acc = 1.0 / (1.0 + np.exp(-(rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)))))
  acc[rng.random((n, d)) < 0.2] = np.nan
  acc[:6, :] = rng.random((6, d))  # Every dataset has >= 6 observed pipelines.
  folder = tmp_path / "paper"
  folder.mkdir()
  with open(folder / data_lib.PAPER_FILES["matrix"], "w") as f:
    f.write("," + ",".join(str(i) for i in ids) + "\n")
    for p in range(n):
      f.write(f"{p}," + ",".join("" if np.isnan(a) else f"{a:.6f}" for a in acc[p]) + "\n")
  (folder / data_lib.PAPER_FILES["train_ids"]).write_text(
      "\n".join(str(i) for i in ids[:9]) + "\n")
  (folder / data_lib.PAPER_FILES["test_ids"]).write_text(
      "\n".join(str(i) for i in ids[9:]) + "\n")
  with open(folder / data_lib.PAPER_FILES["features"], "w") as f:
    f.write("id,f1,f2\n")
    for i in ids[::-1]:  # Order differs from the matrix on purpose.
      f.write(f"{i},{i * 0.5},{-i}\n")
  loaded = data_lib.load_paper_format(str(folder))
  np.testing.assert_allclose(loaded.errors, 1.0 - acc, atol=1e-6)
  np.testing.assert_array_equal(loaded.features[:, 1], -ids)
  np.testing.assert_array_equal(loaded.test, [9, 10, 11])
  config = _get_config("paper")
  config.data.paper_dir = str(folder)
  config.pmf.update(num_latent=3, num_steps=4, batch_size=4, max_rows=8)  # max_rows < N: subsample.
  config.search.update(num_evals=8, random_repeats=1, report_at=(1, 8), num_reveal=3)
  config.tensorboard = False
  results = main.run(config, str(tmp_path / "run"))
  assert results["num_train"] == 9 and results["num_test"] == 3
  _check_results(str(tmp_path / "run"), results, 8)
  with pytest.raises(Exception, match="paper_dir"):
    data_lib.load_paper_format(str(tmp_path / "nowhere"))


def test_config_variants_and_errors():
  for arg in ("smoke", "cpu", "paper"):
    assert _get_config(arg).method == "pmf_automl"
  with pytest.raises(ValueError, match="Unknown config variant"):
    _get_config("huge")


def test_thompson_draws_follow_the_predictive_that_ei_uses():
  """Joint posterior = gp_posterior on its diagonal; many Thompson draws have the predictive's
  mean and variance (training kernel and column refit), and the draws are correlated."""
  rng = np.random.default_rng(11)
  n = 12
  params = _random_params(rng, n, 2)
  obs_idx = jnp.asarray([1, 4, 7, 0], jnp.int32)
  obs_mask = jnp.asarray([1.0, 1.0, 1.0, 0.0])  # One empty slot.
  z = jnp.asarray([0.5, -1.0, 0.8, 0.0])
  mean, var = bayesopt.gp_posterior(params, obs_idx, z, obs_mask)
  jmean, cov = bayesopt.joint_posterior(params, obs_idx, z, obs_mask)
  np.testing.assert_allclose(jmean, mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.diag(cov), var, rtol=1e-3, atol=1e-5)
  grid = jnp.asarray([1e-2, 1e-1], jnp.float32)
  keys = jax.random.split(jax.random.key(0), 20000)
  for noise, (m, v) in ((None, (mean, var)),
                        (grid, bayesopt.column_posterior(params, obs_idx, z, obs_mask, grid))):
    draws = np.asarray(jax.vmap(lambda k: bayesopt.thompson_sample(
        k, params, obs_idx, z, obs_mask, noise))(keys), np.float64)
    sd = np.sqrt(np.asarray(v, np.float64))
    np.testing.assert_allclose(draws.mean(0), m, atol=0.05 * sd.max() + 1e-3)
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.05, atol=3e-3)
  # Joint, not independent: neighbouring unobserved pipelines are correlated in the draws.
  free = [i for i in range(n) if i not in (1, 4, 7)]
  corr = np.corrcoef(draws[:, free].T)
  dense = np.asarray(cov)[np.ix_(free, free)]
  want = dense / np.sqrt(np.outer(np.diag(dense), np.diag(dense)))
  assert np.max(np.abs(want - np.eye(len(free)))) > 0.3  # The kernel correlates some of them.
  # With the refit's nugget the lookups' correlation shrinks but keeps its sign.
  big = np.abs(want) > 0.3
  np.fill_diagonal(big, False)
  assert np.all(np.sign(corr[big]) == np.sign(want[big]))


def test_thompson_bo_never_repeats_is_seeded_and_reaches_the_optimum():
  g, params = _grid_params()
  n = g.shape[0]
  y = jnp.asarray(np.sum((g - np.asarray([1.0, -1.0])) ** 2, axis=1), jnp.float32)
  available = np.ones(n, bool)
  available[[6, 18]] = False
  args = (params, y, jnp.asarray(available), jnp.asarray([0, 12], jnp.int32), jnp.asarray(2))
  grid = jnp.asarray([0.01], jnp.float32)
  run = lambda seed, **kw: _bo_search(*args, num_evals=n - 2, column_noise=grid,
                                      acquisition_fn="thompson", key=jax.random.key(seed), **kw)
  chosen, best = run(0)
  again, _ = run(0)
  other, _ = run(1)
  np.testing.assert_array_equal(chosen, again)
  assert not np.array_equal(np.asarray(chosen), np.asarray(other))
  for c in (chosen, other):
    c = np.asarray(c).tolist()
    assert len(set(c)) == n - 2 and not set(c) & {6, 18} and c[:2] == [0, 12]
  np.testing.assert_allclose(best, np.minimum.accumulate(np.asarray(y)[np.asarray(chosen)]))
  # On this smooth bowl the draws concentrate near the minimum: found within a few steps.
  firsts = []
  for seed in range(5):
    _, b = run(seed)
    firsts.append(int(np.argmax(np.asarray(b) <= float(np.min(y)))) + 1)
  assert np.median(firsts) <= 8, firsts
  # An ensemble of identical members draws exactly what one member draws.
  stacked, _ = _bo_search(pmf.stack_params([params, params]), *args[1:], num_evals=8,
                          column_noise=grid, acquisition_fn="thompson", key=jax.random.key(3))
  single, _ = _bo_search(*args, num_evals=8, column_noise=grid, acquisition_fn="thompson",
                         key=jax.random.key(3))
  np.testing.assert_array_equal(stacked, single)
  with pytest.raises(ValueError, match="PRNG key"):
    bayesopt.bo_search(*args, num_evals=4, acquisition_fn="thompson")
  with pytest.raises(ValueError, match="explore_below"):
    bayesopt.bo_search(*args, num_evals=4, acquisition_fn="thompson", explore_below=0.1,
                       key=jax.random.key(0))
  with pytest.raises(ValueError, match="acquisition_fn"):
    bayesopt.bo_search(*args, num_evals=4, acquisition_fn="ucb")
