"""Tests for influence-guided subsampling (metanas/selection/influence*.py) against ground truth."""

import importlib.util
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy import optimize, stats

from metanas import main
from metanas.selection import influence as inf
from metanas.selection import influence_experiment as ie
from metanas.selection import influence_models as im

LIN = im.Structure("linear", "linear")
# Jitted once: an eager im.fit would retrace (and recompile) its loop on every call.
_fit = jax.jit(im.fit, static_argnums=(0, 6))
MLP = im.Structure("linear", "mlp", 3)


def _logistic_data(n=100, d=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  y = (rng.uniform(size=n) < 1 / (1 + np.exp(-x @ np.linspace(1, -1, d)))).astype(np.int32)
  return x, y


def _fit_plain(structure, x, y, l2, params0=None, fcfg=im.FitConfig()):
  params0 = params0 or im.init_params(structure, x.shape[1], 2, jax.random.key(1))
  return _fit(structure, params0, x, y, jnp.full(len(y), 1.0 / len(y)), l2, fcfg)


def _numpy_logistic_fit(x, y, w, l2):
  """Ground truth: scipy L-BFGS on the same weighted objective written in NumPy (float64)."""
  xb = np.concatenate([x, np.ones((len(y), 1))], 1).astype(np.float64)

  def f(t):
    z = xb @ t
    return np.sum(w * (np.logaddexp(0, z) - y * z)) + 0.5 * l2 * t @ t

  def g(t):
    z = xb @ t
    return xb.T @ (w * (1 / (1 + np.exp(-z)) - y)) + l2 * t

  return optimize.minimize(f, np.zeros(xb.shape[1]), jac=g, method="L-BFGS-B",
                           options=dict(gtol=1e-10, ftol=1e-14, maxiter=1000)).x


def test_per_example_grads_match_python_loop():
  x, y = _logistic_data(n=7)
  for s in (LIN, MLP):
    params = im.init_params(s, 3, 2, jax.random.key(0))
    if s.kind == "linear":
      params = jax.tree.map(lambda a: a + 0.3, params)
    loss = lambda p, xi, yi, s=s: im.example_loss(s, p, xi, yi)
    got = jax.jit(inf.per_example_grads, static_argnums=0)(loss, params, x, y)
    grad = jax.jit(lambda p, a, b, loss=loss: ravel_pytree(jax.grad(loss)(p, a, b))[0])
    want = np.stack([grad(params, x[i], y[i]) for i in range(7)])
    chex.assert_shape(got, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fit_matches_scipy_and_ipw_uniform_equals_plain_fit():
  x, y = _logistic_data()
  l2 = 1e-2
  theta = ravel_pytree(_fit_plain(LIN, x, y, l2))[0]
  # Ravel order is b then w; scipy's vector is w then b.
  want = _numpy_logistic_fit(x, y, np.full(len(y), 1 / len(y)), l2)
  np.testing.assert_allclose(np.r_[theta[1:], theta[:1]], want, atol=1e-4)
  # Uniform probabilities give every IPW weight 1/m: the weighted refit on m = n rows drawn
  # (here: all rows once) is the plain fit.
  n = len(y)
  w = inf.ipw_weights(jnp.full(n, 1.0 / n), jnp.arange(n))
  np.testing.assert_allclose(w, np.full(n, 1 / n), rtol=1e-5)
  p0 = im.init_params(LIN, 3, 2, jax.random.key(0))
  np.testing.assert_allclose(ravel_pytree(_fit(LIN, p0, x, y, w, l2))[0], theta, atol=1e-4)


@jax.jit
def _curvature_checks(params, x, y, v):
  """Dense curvature and matrix-free products for LIN (Hessian) / MLP (Hessian and GGN)."""
  out = {}
  w = jnp.full(x.shape[0], 1.0 / x.shape[0])
  for name, s, curv in (("lin", LIN, "hessian"), ("mlp_h", MLP, "hessian"),
                        ("mlp_gn", MLP, "gauss_newton")):
    cfg = inf.SubsampleConfig(curvature=curv, damping=0.0)
    p = params[name[:3]]
    h = inf.curvature_matrix(inf.Problem(s), cfg, p, x, y, w, 0.1)
    mv = inf.curvature_matvec(inf.Problem(s), cfg, p, x, y, w, 0.1)
    out[name] = dict(h=h, hv=mv(v[name[:3]]), cg=inf.conjugate_gradient(mv, v[name[:3]], 200, 1e-7),
                     chol=inf.cholesky_solve(h, v[name[:3]]))
  cfg_gn = inf.SubsampleConfig(curvature="gauss_newton", damping=0.0)
  out["lin_gn"] = inf.curvature_matrix(inf.Problem(LIN), cfg_gn, params["lin"], x, y, w, 0.1)
  return out


def test_cg_and_matvecs_equal_dense():
  x, y = _logistic_data(n=40)
  params = {"lin": _fit_plain(LIN, x, y, 0.1),
            "mlp": _fit_plain(MLP, x, y, 0.1, fcfg=im.FitConfig(mlp_steps=200))}
  rng = np.random.default_rng(0)
  v = {k: jnp.asarray(rng.normal(size=ravel_pytree(p)[0].shape[0]), jnp.float32)
       for k, p in params.items()}
  out = _curvature_checks(params, x, y, v)
  for name, r in ((k, out[k]) for k in ("lin", "mlp_h", "mlp_gn")):
    h, vv = np.asarray(r["h"], np.float64), np.asarray(v[name[:3]], np.float64)
    np.testing.assert_allclose(h, h.T, atol=1e-6)
    np.testing.assert_allclose(r["hv"], h @ vv, rtol=1e-4, atol=1e-5)
    if name != "mlp_h":  # The MLP Hessian may be indefinite; CG/Cholesky need SPD.
      assert np.linalg.eigvalsh(h).min() > 0
      np.testing.assert_allclose(r["cg"], np.linalg.solve(h, vv), rtol=1e-3, atol=1e-4)
      np.testing.assert_allclose(r["chol"], np.linalg.solve(h, vv), rtol=1e-3, atol=1e-4)
  # For a GLM the Gauss-Newton matrix is the Hessian.
  np.testing.assert_allclose(out["lin_gn"], out["lin"]["h"], rtol=1e-4, atol=1e-6)


def test_influence_matches_leave_one_out_refits():
  """-I(z_i)/n (removing z_i = upweighting by -1/n) against actually refitting without z_i."""
  x, y = _logistic_data()
  n, l2 = len(y), 1e-2
  params = _fit_plain(LIN, x, y, l2)
  theta = ravel_pytree(params)[0]
  cfg = inf.SubsampleConfig(damping=0.0)
  w = jnp.full(n, 1 / n)
  h = jax.jit(inf.curvature_matrix, static_argnums=(0, 1))(inf.Problem(LIN), cfg, params, x, y,
                                                            w, l2)
  grads = jax.jit(inf.per_example_grads, static_argnums=0)(
      lambda p, a, b: im.example_loss(LIN, p, a, b), params, x, y)
  pred = -np.asarray(inf.influence_on_params(h, grads)) / n
  loo_w = (1.0 - np.eye(n, dtype=np.float32)) / n
  actual = np.stack([ravel_pytree(_fit(LIN, params, x, y, jnp.asarray(wi), l2))[0] - theta
                     for wi in loo_w])
  rel = np.linalg.norm(pred - actual, axis=1) / np.linalg.norm(actual, axis=1)
  assert np.median(rel) < 0.1, rel  # First order: the error is O(1/n) relative.
  assert np.corrcoef(pred.ravel(), actual.ravel())[0, 1] > 0.99
  # The sampling score is the H-norm of the influence (paper Eq. 4), checked densely.
  scores = inf.hessian_norm_scores(h, grads)
  hd, gd = np.asarray(h, np.float64), np.asarray(grads, np.float64)
  want = np.sqrt(np.einsum("np,np->n", gd, np.linalg.solve(hd, gd.T).T))
  np.testing.assert_allclose(scores, want, rtol=1e-3)
  mv = inf.curvature_matvec(inf.Problem(LIN), cfg, params, x, y, w, l2)
  cg_scores = jax.jit(lambda g: inf.hessian_norm_scores_cg(mv, g, 50, 1e-8))(grads)
  np.testing.assert_allclose(cg_scores, want, rtol=1e-3)


def test_greedy_gain_predicts_validation_loss_change():
  x, y = _logistic_data(n=121)
  xv, yv = _logistic_data(n=50, seed=1)
  n, l2, eps = 100, 1e-2, 0.05
  w = jnp.full(n, 1 / n)
  params = _fit_plain(LIN, x[:n], y[:n], l2)
  cfg = inf.SubsampleConfig(damping=0.0, cg_tol=1e-8)
  gain = jax.jit(inf.greedy_gain, static_argnums=(0, 1))(inf.Problem(LIN), cfg, params, x[:n],
                                                          y[:n], w, l2, x, y, xv, yv)
  base = im.mean_loss(LIN, params, xv, yv)
  # Refits with one extra weighted row share one compiled fit of n + 1 rows.
  xs = np.stack([np.concatenate([x[:n], x[i:i + 1]]) for i in range(n, 121)])
  ys = np.stack([np.concatenate([y[:n], y[i:i + 1]]) for i in range(n, 121)])
  wi = jnp.concatenate([w, jnp.array([eps])])
  refit = jax.jit(jax.vmap(lambda a, b: im.fit(LIN, params, a, b, wi, l2)))
  drops = (base - jax.vmap(lambda p: im.mean_loss(LIN, p, xv, yv))(refit(xs, ys))) / eps
  assert np.corrcoef(gain[n:], np.asarray(drops))[0, 1] > 0.98


def test_sampling_probabilities_and_ipw_unbiased():
  rng = np.random.default_rng(0)
  scores = jnp.asarray(rng.pareto(1.5, size=500), jnp.float32)
  p = inf.mix_with_uniform(scores, 0.3)
  np.testing.assert_allclose(float(jnp.sum(p)), 1.0, rtol=1e-5)
  assert float(jnp.min(p)) >= 0.3 / 500 * (1 - 1e-6)
  np.testing.assert_allclose(inf.mix_with_uniform(jnp.zeros(10), 0.1), np.full(10, 0.1), rtol=1e-6)
  with pytest.raises(ValueError, match="mix"):
    inf.mix_with_uniform(scores, 1.5)
  # Horvitz-Thompson: the weighted sample mean of a loss is unbiased for the full mean.
  loss = np.asarray(scores) ** 0.7 + rng.normal(size=500) ** 2
  p64 = np.asarray(p, np.float64)
  idx = np.stack([rng.choice(500, 50, p=p64 / p64.sum()) for _ in range(3000)])
  w = np.asarray(jax.vmap(lambda i: inf.ipw_weights(p, i))(jnp.asarray(idx)))
  est = np.sum(w * loss[idx], axis=1)
  assert abs(est.mean() - loss.mean()) < 3 * est.std() / np.sqrt(len(est))


def test_mixture_weights_unbiased_and_bounded():
  """Kept uniform pilot + draws from p, weighted by the pooled density: unbiased, bounded."""
  rng = np.random.default_rng(1)
  n, m, n0 = 400, 40, 16
  p = np.asarray(inf.mix_with_uniform(jnp.asarray(rng.pareto(1.2, size=n), jnp.float32), 0.1),
                 np.float64)
  p /= p.sum()
  loss = rng.pareto(1.2, size=n) + 0.1 * np.arange(n) / n
  reps = 4000
  idx = np.concatenate([np.stack([rng.choice(n, n0, replace=False) for _ in range(reps)]),
                        np.stack([rng.choice(n, m - n0, p=p) for _ in range(reps)])], axis=1)
  w = inf.mixture_weights(np.broadcast_to(p, (reps, n)), idx, n0)
  est = np.sum(w * loss[idx], axis=1)
  assert abs(est.mean() - loss.mean()) < 3 * est.std() / np.sqrt(reps)
  assert w.max() <= (m / n0) / m * (1 + 1e-5)  # At most m / pilot_size times the uniform weight.
  # Uniform p: every weight is 1/m, as for a plain uniform sample.
  np.testing.assert_allclose(inf.mixture_weights(np.full((1, n), 1 / n), idx[:1], n0),
                             np.full((1, m), 1 / m), rtol=1e-5)
  # Self-normalised weights sum to one per row.
  np.testing.assert_allclose(inf._normalize(w[:5]).sum(1), 1.0, rtol=1e-5)  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="pilot_size < m"):
    inf.mixture_weights(np.full((1, n), 1 / n), idx[:1], m)


def test_capped_inclusion_and_systematic_pps_marginals():
  """PPS without replacement: k distinct rows, each included with probability exactly pi_i."""
  rng = np.random.default_rng(2)
  n, k = 60, 15
  p = rng.pareto(1.0, size=n) + 0.05
  pi = inf.capped_inclusion(p, k)
  np.testing.assert_allclose(pi.sum(), k, rtol=1e-9)
  assert pi.max() <= 1.0 and np.sum(pi == 1.0) >= 1  # The heavy rows are taken with certainty.
  free = pi < 1.0  # Uncapped rows stay proportional to p.
  np.testing.assert_allclose(pi[free] / p[free], (pi[free] / p[free])[0], rtol=1e-9)
  np.testing.assert_allclose(inf.capped_inclusion(np.ones(n), k), np.full(n, k / n), rtol=1e-12)
  reps = 6000
  counts = np.zeros(n)
  for _ in range(reps):
    s = inf.systematic_pps(rng, pi)
    assert s.shape == (k,) and len(np.unique(s)) == k
    counts[s] += 1
  se = np.sqrt(pi * (1 - pi) / reps) + 1e-9
  assert np.all(np.abs(counts / reps - pi) < 4.5 * se + 1e-12)
  with pytest.raises(ValueError, match="positive probability"):
    inf.capped_inclusion(np.r_[np.ones(3), np.zeros(5)], 4)


def test_pps_with_pilot_unbiased_distinct_bounded():
  """Kept uniform pilot + PPS rows outside it: distinct rows, HT weights unbiased and bounded."""
  rng = np.random.default_rng(3)
  n, m, n0 = 300, 45, 15
  p = np.asarray(inf.mix_with_uniform(jnp.asarray(rng.pareto(1.1, size=n), jnp.float32), 0.1),
                 np.float64)
  loss = 3 * p * n + rng.normal(size=n)  # Correlated with p, like a loss with its influence.
  reps = 3000
  pilots = np.stack([rng.choice(n, n0, replace=False) for _ in range(reps)])
  idx, w = inf.pps_with_pilot(rng, np.broadcast_to(p, (reps, n)), pilots, m)
  np.testing.assert_array_equal(idx[:, :n0], pilots)
  assert all(len(np.unique(r)) == m for r in idx[:50])
  est = np.sum(w * loss[idx], axis=1)
  assert abs(est.mean() - loss.mean()) < 3 * est.std() / np.sqrt(reps)
  assert w.max() <= 1.0 / n0 * (1 + 1e-5)  # At most m / pilot_size times the uniform weight.
  _, wu = inf.pps_with_pilot(rng, np.full((2, n), 1 / n), pilots[:2], m)
  np.testing.assert_allclose(wu, np.full((2, m), 1 / m), rtol=1e-5)  # Uniform p: plain mean.
  with pytest.raises(ValueError, match="pilot size < m"):
    inf.pps_with_pilot(rng, np.full((1, n), 1 / n), pilots[:1], n0)


def test_score_unevenness():
  even = inf.score_unevenness(np.ones(1000), mix=0.3)
  np.testing.assert_allclose([even["top1"], even["top10"], even["max_over_mean"], even["ess"],
                              even["var_ratio"]], [0.01, 0.1, 1.0, 1.0, 1.0], rtol=1e-9)
  spike = np.ones(1000)
  spike[:10] = 1000.0  # Top 1% hold 10000 / 10990 of the total.
  r = inf.score_unevenness(spike, mix=0.3)
  np.testing.assert_allclose(r["top1"], 10000 / 10990, rtol=1e-9)
  # Dense ESS: 1 / (N^2 * sum_i 1/p_i) with p the mixed probabilities.
  p = 0.7 * spike / spike.sum() + 0.3 / 1000
  np.testing.assert_allclose(r["ess"], 1 / np.sum(1 / (1000**2 * p)), rtol=1e-9)
  assert r["ess"] < 1.0
  # var_ratio: IPW variance of a sum of v_i = s_i * u_i (|u_i| = 1) under p ~ s over uniform.
  # Uniform draws: Var = N^2 E[v^2] / N - mean^2 ... here checked as the closed form directly.
  np.testing.assert_allclose(r["var_ratio"], np.mean(spike) ** 2 / np.mean(spike**2), rtol=1e-9)


def test_ipw_refit_is_roughly_unbiased():
  """Averaged over draws, the IPW refit lands near the full fit (bias << spread of one refit)."""
  x, y = _logistic_data(n=400, seed=3)
  x[:20] *= 4.0  # Some high-leverage rows so the probabilities are far from uniform.
  l2 = 1e-2
  full = ravel_pytree(_fit_plain(LIN, x, y, l2))[0]
  p = inf.mix_with_uniform(jnp.asarray(inf.leverage_scores(x), jnp.float32), 0.2)
  rng = np.random.default_rng(0)
  probs = np.broadcast_to(np.asarray(p), (64, 400))
  idx, w = inf._draw(rng, probs, 150)  # pylint: disable=protected-access
  p0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (64,) + a.shape),
                    im.init_params(LIN, 3, 2, jax.random.key(0)))
  params = jax.jit(inf.fit_batch, static_argnums=(0, 1))(LIN, im.FitConfig(), p0, x, y, idx, w,
                                                         jnp.full(64, l2))
  thetas = np.asarray(jax.vmap(lambda q: ravel_pytree(q)[0])(params))
  bias = np.linalg.norm(thetas.mean(0) - full)
  spread = np.sqrt(np.sum(thetas.var(0)))
  assert bias < 0.5 * spread, (bias, spread)


def test_leverage_scores_match_hat_matrix():
  x, _ = _logistic_data(n=30, d=4)
  xb = np.c_[x, np.ones(30)].astype(np.float64)
  want = np.diag(xb @ np.linalg.solve(xb.T @ xb, xb.T))
  np.testing.assert_allclose(inf.leverage_scores(x, ridge=0.0), want, rtol=1e-6)
  np.testing.assert_allclose(inf.leverage_scores(x, ridge=0.0).sum(), 5.0, rtol=1e-6)


def test_greedy_pick_and_subsample_fit_methods():
  rng = np.random.default_rng(0)
  gain = np.arange(10.0)
  chosen = np.zeros(10, bool)
  chosen[9] = True
  np.testing.assert_array_equal(np.sort(inf.greedy_pick(rng, gain, chosen, 3, 0.0)), [6, 7, 8])
  pick = inf.greedy_pick(rng, gain, chosen, 9, 0.5)
  assert len(set(pick.tolist())) == 9 and 9 not in pick
  x, y = _logistic_data(n=200)
  xv, yv = _logistic_data(n=50, seed=1)
  lev = inf.mix_with_uniform(jnp.asarray(inf.leverage_scores(x), jnp.float32), 0.3)
  p0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (2,) + a.shape),
                    im.init_params(LIN, 3, 2, jax.random.key(0)))
  runner = inf.StageRunner()
  variants = [(mt, False, False, "iid") for mt in inf.METHODS] + [
      ("influence", True, True, "iid"), ("leverage", False, True, "iid"),
      ("influence", True, False, "pps")]
  for method, reuse, norm, sampling in variants:
    cfg = inf.SubsampleConfig(method=method, m=40, pilot_size=12, greedy_rounds=2,
                              reuse_pilot=reuse, self_normalize=norm, sampling=sampling,
                              refit_from="init" if sampling == "pps" else "pilot")
    r0 = np.random.default_rng(5)
    params, idx, w = inf.subsample_fit(inf.Problem(LIN), cfg, p0, [1e-2, 1e-1], r0, x, y, xv, yv,
                                       lev, runner)
    if reuse:  # The pilot (the first draws of the generator) is kept as the first 12 rows.
      pilot = np.stack([np.random.default_rng(5).choice(200, 12, replace=False)])
      np.testing.assert_array_equal(idx[0, :12], pilot[0])
    if norm:
      np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-5)
    chex.assert_shape((idx, w), [(2, 40), (2, 40)])
    assert np.all((idx >= 0) & (idx < 200))
    assert np.all(np.isfinite(ravel_pytree(params)[0]))
    if method == "greedy" or sampling == "pps":
      assert all(len(set(r.tolist())) == 40 for r in idx)
  assert runner.compile_seconds > 0 and runner.run_seconds > 0
  with pytest.raises(ValueError, match="exceeds the pool"):
    inf.subsample_fit(inf.Problem(LIN), inf.SubsampleConfig(method="uniform", m=500), p0,
                      [1e-2, 1e-1], rng, x, y)
  with pytest.raises(ValueError, match="Unknown subsampling method"):
    inf.SubsampleConfig(method="bogus")
  with pytest.raises(ValueError, match="needs reuse_pilot"):
    inf.SubsampleConfig(sampling="pps", reuse_pilot=False)
  with pytest.raises(ValueError, match="Unknown refit_from"):
    inf.SubsampleConfig(refit_from="bogus")


def test_refit_from_init_is_the_full_data_training_procedure():
  """refit_from='init': the final MLP fit starts at params0 (same Adam run as a plain fit on the
  subsample); 'pilot' warm-starts at the pilot fit and so gives a different MLP."""
  x, y = _logistic_data(n=120)
  fcfg = im.FitConfig(mlp_steps=20)
  prob = inf.Problem(MLP, fcfg)
  p0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (1,) + a.shape),
                    im.init_params(MLP, 3, 2, jax.random.key(1)))
  out = {}
  for start in inf.REFIT_FROM:
    cfg = inf.SubsampleConfig(m=30, pilot_size=10, reuse_pilot=True, sampling="pps",
                              refit_from=start, curvature="gauss_newton")
    out[start] = inf.subsample_fit(prob, cfg, p0, [1e-2], np.random.default_rng(0), x, y)
  params, idx, w = out["init"]
  np.testing.assert_array_equal(idx, out["pilot"][1])  # Same draws either way.
  want = jax.jit(inf.fit_batch, static_argnums=(0, 1))(MLP, fcfg, p0, x, y, jnp.asarray(idx),
                                                       jnp.asarray(w), jnp.full(1, 1e-2))
  chex.assert_trees_all_close(params, want, rtol=1e-5, atol=1e-6)
  assert not np.allclose(ravel_pytree(out["pilot"][0])[0], ravel_pytree(params)[0], atol=1e-4)


def test_candidate_grid_and_heavy_tailed_design():
  cands = im.candidate_grid(("linear", "poly2", "rff"), (1e-4, 1e-3, 1e-2, 1e-1), (16,),
                            (1e-4, 1e-3, 1e-2, 1e-1))
  assert len(cands) >= 15 and len({c.name for c in cands}) == len(cands)
  x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
  chex.assert_shape(im.feature_map("poly2", x, poly_dims=3), (5, 4 + 6))
  chex.assert_shape(im.feature_map("rff", x, rff_dim=7), (5, 7))
  with pytest.raises(ValueError, match="Unknown feature map"):
    im.Structure("cubic", "linear")
  xh, yh = ie.heavy_tailed(20000, 4, 3.0, 0.5, seed=0)
  kurt = np.mean(xh[:, 0] ** 4) / np.mean(xh[:, 0] ** 2) ** 2
  assert kurt > 6.0 and 0.2 < yh.mean() < 0.8  # Gaussian kurtosis would be 3.
  xn, yn = ie.heavy_tailed(20000, 4, 3.0, 0.5, seed=0, label_noise=0.1)
  np.testing.assert_array_equal(xn, xh)  # Same inputs; about 10% of the labels flipped.
  assert 0.08 < np.mean(yn != yh) < 0.12
  with pytest.raises(ValueError, match="label_noise"):
    ie.heavy_tailed(10, 2, 3.0, 0.5, seed=0, label_noise=0.6)


def test_resolved_pairs_and_tau_on_pairs():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=7), rng.normal(size=7)
  # With every pair kept and no ties, tau-a equals scipy's Kendall tau.
  np.testing.assert_allclose(ie.tau_on_pairs(a, b, np.ones((7, 7), bool)),
                             stats.kendalltau(a, b)[0], rtol=1e-12)
  mask = np.zeros((7, 7), bool)
  mask[0, 1] = True
  assert ie.tau_on_pairs(a, b, mask) == np.sign(a[0] - a[1]) * np.sign(b[0] - b[1])
  assert np.isnan(ie.tau_on_pairs(a, b, np.zeros((7, 7), bool)))
  # Candidate 2 = candidate 0 plus tiny noise: unresolved; candidate 1 is clearly worse.
  base = rng.exponential(size=2000)
  losses = np.stack([base, base + 0.5, base + 1e-4 * rng.normal(size=2000)])
  res = ie.resolved_pairs(losses)
  assert res[0, 1] and res[1, 2] and not res[0, 2] and not res[0, 0]


def _load_config(variant):
  path = os.path.join(os.path.dirname(__file__), "..", "configs", "influence_subsampling.py")
  spec = importlib.util.spec_from_file_location("influence_subsampling_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def test_smoke_end_to_end(tmp_path, data_dir):
  config = _load_config("smoke")
  config.data_dir = data_dir
  out = main.run(config, str(tmp_path))
  with open(tmp_path / "results.json") as f:
    saved = json.load(f)
  assert os.path.exists(tmp_path / "regret.png")
  for name in config.datasets:
    res = out["datasets"][name]
    assert len(res["candidates"]) == 3
    assert set(res["unevenness"]) == set(res["candidates"]) | {"logreg-poly2-leverage"}
    assert all(0.01 - 1e-9 <= u["top1"] <= 1.0 and 0 < u["ess"] <= 1.0 + 1e-9
               for u in res["unevenness"].values())
    assert not any(u.get("degenerate", False) for u in res["unevenness"].values())
    for method in config.methods:
      row = saved["datasets"][name]["summary"][f"m={config.sizes[0]}/{method}"]
      assert -1.0 <= row["tau"] <= 1.0 and row["regret"] >= 0.0
      assert np.isfinite(row["param_error"]) and row["seconds_per_seed"] > 0
  config.sizes = (10_000,)
  with pytest.raises(ValueError, match="exceeds pool_size"):
    main.run(config, str(tmp_path / "bad"))


def test_draw_rounds_are_new_seeds_and_merge(tmp_path, data_dir, load_script):
  """draw_round=0 reproduces the default draws, round 1 gives new ones; the merge concatenates."""
  config = _load_config("smoke")
  config.data_dir = data_dir
  config.methods = ("uniform",)
  main.run(config, str(tmp_path / "a"))
  main.run(config, str(tmp_path / "b"))
  config.draw_round = 1
  main.run(config, str(tmp_path / "c"))
  merge = load_script("experiments", "influence_merge.py")
  key = f"m={config.sizes[0]}/uniform"
  with pytest.raises(ValueError, match="share a draw_round"):
    merge.merge([str(tmp_path / "a"), str(tmp_path / "b")])
  merged, sizes, methods, info = merge.merge([str(tmp_path / "a"), str(tmp_path / "c")])
  assert sizes == list(config.sizes) and methods == ["uniform"]
  assert info["per_size"][("magic", config.sizes[0])] == {"rounds": [0, 1], "seeds": [2, 2]}
  runs = [json.load(open(tmp_path / d / "results.json"))["datasets"]["magic"]["runs"][key]
          for d in "abc"]
  np.testing.assert_array_equal(runs[0]["val_loss"], runs[1]["val_loss"])
  assert not np.allclose(runs[0]["val_loss"], runs[2]["val_loss"])
  np.testing.assert_array_equal(merged["magic"]["runs"][key]["regret"],
                                np.concatenate([runs[0]["regret"], runs[2]["regret"]]))
  assert merged["magic"]["summary"][key]["regret"] == pytest.approx(
      np.mean(merged["magic"]["runs"][key]["regret"]))
  table = merge.compare(merged, sizes, "uniform", "uniform")
  assert "equal, z = +0.0" in table
