"""alpha-MAML: simplex projection, the MMD quadratic program, kernel means, task weights,
alpha-weighted meta-training and the `:smoke` configs end to end."""

import importlib.util
import itertools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import optimize

from metanas import main
from metanas.data import task_clusters
from metanas.meta import alpha_maml
from metanas.meta import maml
from metanas.meta import mmd
from metanas.models import maml_nets

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_config(name, variant):
  spec = importlib.util.spec_from_file_location(name, os.path.join(_ROOT, "configs", name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def _supports(idx):
  for r in range(1, len(idx) + 1):
    yield from itertools.combinations(idx, r)


def _brute_projection(v, mask):
  """Projection onto the masked simplex by trying every support set."""
  best, best_d = None, np.inf
  for s in _supports(np.flatnonzero(mask)):
    s = list(s)
    a = np.zeros_like(v)
    a[s] = v[s] - (v[s].sum() - 1.0) / len(s)
    if a.min() >= -1e-12 and np.sum((a - v) ** 2) < best_d:
      best, best_d = a, np.sum((a - v) ** 2)
  return best


def _brute_qp(q, kappa, allowed):
  """min a^T q a - 2 a^T kappa on the masked simplex, by solving the KKT system on every support."""
  best, best_f = None, np.inf
  for s in _supports(np.flatnonzero(allowed)):
    s = list(s)
    m = len(s)
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m], kkt[:m, m], kkt[m, :m] = 2 * q[np.ix_(s, s)], 1.0, 1.0
    sol = np.linalg.solve(kkt, np.concatenate([2 * kappa[s], [1.0]]))
    a = np.zeros(len(kappa))
    a[s] = sol[:m]
    f = a @ q @ a - 2 * a @ kappa
    if a.min() >= -1e-10 and f < best_f:
      best, best_f = a, f
  return best, best_f


def _random_qp(rng, n, lam):
  """A QP instance from real kernel means of random source/target samples."""
  sizes = rng.integers(2, 6, size=n)
  n_max = 5  # Fixed padding: one shape per n.
  z = rng.normal(size=(n, n_max, 2)) + rng.normal(size=(n, 1, 2))
  mask = (np.arange(n_max)[None] < sizes[:, None]).astype(np.float32)
  t = rng.normal(size=(3, 2))
  big_k, kappa, _ = mmd.kernel_means(jnp.asarray(z, jnp.float32), jnp.asarray(mask),
                                     jnp.asarray(t, jnp.float32), 1.5)
  big_k, kappa = np.asarray(big_k, np.float64), np.asarray(kappa, np.float64)
  q = 0.5 * (big_k + big_k.T) + lam * np.diag(1.0 / sizes)
  return big_k, kappa, sizes.astype(np.float32), q


def test_project_simplex_matches_brute_force():
  rng = np.random.default_rng(0)
  project = jax.jit(jax.vmap(mmd.project_simplex))
  for n in (1, 3, 6):  # One compile per size; many vectors per compile.
    v = rng.normal(size=(20, n)) * rng.choice([0.1, 1.0, 5.0], size=(20, 1))
    mask = rng.random((20, n)) < 0.7
    mask[np.arange(20), rng.integers(n, size=20)] = True
    got = np.asarray(project(jnp.asarray(v, jnp.float32), jnp.asarray(mask)))
    for i in range(20):
      np.testing.assert_allclose(got[i], _brute_projection(v[i], mask[i]), atol=2e-6)
      assert abs(got[i].sum() - 1) < 1e-5 and got[i].min() >= 0 and np.all(got[i][~mask[i]] == 0)
  point = jnp.asarray([0.2, 0.5, 0.3])
  chex.assert_trees_all_close(mmd.project_simplex(point), point, atol=1e-7)


_solve_batch = jax.jit(jax.vmap(mmd.solve_simplex_qp, (0, 0, 0, 0, 0)))


def _solve(insts, lams, allowed):
  """Solves a batch of `_random_qp` instances in one compiled call."""
  stack = lambda i: jnp.asarray(np.stack([inst[i] for inst in insts]), jnp.float32)
  out = _solve_batch(stack(0), stack(1), jnp.asarray(lams, jnp.float32), stack(2),
                     jnp.asarray(allowed))
  return np.asarray(out, np.float64)


def test_qp_matches_exhaustive_search():
  # N <= 4 sources: instances of size 4 with 2, 3 or 4 allowed sources (one compile for all).
  rng = np.random.default_rng(2)
  lams = np.tile([1e-3, 0.1, 1.0, 0.3, 3.0, 0.01], 3)
  insts = [_random_qp(rng, 4, lam) for lam in lams]
  allowed = np.ones((len(lams), 4), bool)
  for i in range(len(lams)):
    allowed[i, rng.permutation(4)[:i % 3]] = False  # 4, 3 or 2 allowed sources.
  got = _solve(insts, lams, allowed)
  for (_, kappa, _, q), a, allow in zip(insts, got, allowed):
    want, f_want = _brute_qp(q, kappa, allow)
    assert abs(a.sum() - 1) < 1e-5 and a.min() >= 0 and np.all(a[~allow] == 0)
    assert a @ q @ a - 2 * a @ kappa <= f_want + 1e-5
    np.testing.assert_allclose(a, want, atol=2e-3)


def test_qp_matches_scipy_slsqp():
  rng = np.random.default_rng(7)
  n, lams = 7, np.array([0.05, 0.5, 2.0])
  insts = [_random_qp(rng, n, lam) for lam in lams]
  got = _solve(insts, lams, np.ones((3, n), bool))
  for (big_k, kappa, sizes, q), a, lam in zip(insts, got, lams):
    obj = lambda v, q=q, kappa=kappa: v @ q @ v - 2 * v @ kappa
    jac = lambda v, q=q, kappa=kappa: 2 * q @ v - 2 * kappa
    res = optimize.minimize(obj, np.full(n, 1 / n), jac=jac, method="SLSQP", bounds=[(0, 1)] * n,
                            constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
                            options={"ftol": 1e-12, "maxiter": 500})
    assert res.success
    assert obj(a) <= obj(res.x) + 1e-5
    np.testing.assert_allclose(a, res.x, atol=2e-3)
    # The JAX objective is the same function.
    np.testing.assert_allclose(float(mmd.qp_objective(jnp.asarray(a), jnp.asarray(big_k),
                                                      jnp.asarray(kappa), lam,
                                                      jnp.asarray(sizes))), obj(a), rtol=1e-4)


def test_kernel_means_and_mmd_match_dense_numpy():
  rng = np.random.default_rng(1)
  sizes, d = np.array([3, 5, 2, 4]), 3
  z = rng.normal(size=(4, 5, d)).astype(np.float32)
  mask = (np.arange(5)[None] < sizes[:, None]).astype(np.float32)
  t = rng.normal(size=(6, d)).astype(np.float32)
  sigma2 = 1.7
  k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * sigma2))
  sets = [z[i, :sizes[i]].astype(np.float64) for i in range(4)]
  want_k = np.array([[np.mean([k(a, b) for a in si for b in sj]) for sj in sets] for si in sets])
  want_kappa = np.array([np.mean([k(a, b) for a in si for b in t]) for si in sets])
  want_tt = np.mean([k(a, b) for a in t for b in t])
  big_k, kappa, k_tt = mmd.kernel_means(jnp.asarray(z), jnp.asarray(mask), jnp.asarray(t), sigma2)
  np.testing.assert_allclose(big_k, want_k, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(kappa, want_kappa, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(k_tt, want_tt, rtol=1e-5)
  # MMD^2 between the alpha-mixture (sample weights alpha_i / n_i) and the target.
  alpha = np.array([0.1, 0.4, 0.2, 0.3])
  pts = np.concatenate(sets)
  w = np.concatenate([np.full(sizes[i], alpha[i] / sizes[i]) for i in range(4)])
  gram = np.array([[k(a, b) for b in pts] for a in pts])
  cross = np.array([[k(a, b) for b in t] for a in pts]).mean(1)
  want_mmd = w @ gram @ w - 2 * w @ cross + want_tt
  np.testing.assert_allclose(mmd.mmd_sq(jnp.asarray(alpha, jnp.float32), big_k, kappa, k_tt),
                             want_mmd, rtol=1e-4)
  # Median heuristic and standardisation against NumPy.
  flat, fmask = z.reshape(-1, d), mask.reshape(-1)
  valid = flat[fmask > 0].astype(np.float64)
  d2 = ((valid[:, None] - valid[None]) ** 2).sum(-1)
  want_med = np.median(d2[~np.eye(len(valid), dtype=bool)])
  np.testing.assert_allclose(mmd.median_bandwidth(jnp.asarray(flat), jnp.asarray(fmask)),
                             want_med, rtol=1e-5)
  sz, tz = mmd.standardise(jnp.asarray(z), jnp.asarray(mask), jnp.asarray(t))
  mu, sd = valid.mean(0), valid.std(0)
  np.testing.assert_allclose(np.asarray(sz)[mask > 0], (valid - mu) / sd, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(tz, (t - mu) / sd, rtol=1e-4, atol=1e-5)


def test_unbiased_kernel_means_drop_self_pairs():
  rng = np.random.default_rng(11)
  sizes, d = np.array([3, 5, 1, 4]), 2
  z = rng.normal(size=(4, 5, d)).astype(np.float32)
  mask = (np.arange(5)[None] < sizes[:, None]).astype(np.float32)
  t = rng.normal(size=(3, d)).astype(np.float32)
  sigma2 = 0.8
  k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * sigma2))
  sets = [z[i, :sizes[i]].astype(np.float64) for i in range(4)]
  want = np.array([[np.mean([k(a, b) for a in si for b in sj]) for sj in sets] for si in sets])
  for i, si in enumerate(sets):
    if len(si) > 1:  # U-statistic: only the n_i (n_i - 1) pairs a != b.
      want[i, i] = np.mean([k(si[p], si[q]) for p in range(len(si)) for q in range(len(si))
                            if p != q])
  big_k, kappa, _ = mmd.kernel_means(jnp.asarray(z), jnp.asarray(mask), jnp.asarray(t), sigma2,
                                     unbiased=True)
  np.testing.assert_allclose(big_k, want, rtol=1e-5, atol=1e-6)
  _, kappa_v, _ = mmd.kernel_means(jnp.asarray(z), jnp.asarray(mask), jnp.asarray(t), sigma2)
  np.testing.assert_allclose(kappa, kappa_v)  # Cross terms have no self-pairs.
  # Unbiased: averaged over many draws, alpha^T K^U alpha matches the population value, which
  # the V-statistic overshoots by sum_i alpha_i^2 (1 - E k(a, a')) / n_i.
  alpha = jnp.asarray([0.5, 0.5])
  draws = rng.normal(size=(4000, 2, 4, 1)).astype(np.float32)
  fn = jax.jit(jax.vmap(lambda zz, u: alpha @ mmd.kernel_means(zz, jnp.ones((2, 4)), zz[0], 1.0,
                                                               u)[0] @ alpha, (0, None)),
               static_argnums=1)
  pop = 1 / np.sqrt(1 + 2)  # E k(a, b) for a, b ~ N(0, 1) independent, sigma^2 = 1 (1-d).
  assert abs(float(np.mean(fn(jnp.asarray(draws), True))) - pop) < 0.01
  assert float(np.mean(fn(jnp.asarray(draws), False))) - pop > 0.05


def test_source_cv_concentrates_on_clusters_and_stays_uniform_on_exchangeable_sources():
  rng = np.random.default_rng(12)
  grid = dict(bandwidth_scales=(0.1, 1.0), lams=(0.1, 1e4), num_splits=2, num_iters=300)
  x, y, mask, group, centres = _gaussian_clusters(rng, n_per_source=20)
  sel = mmd.select_by_source_cv(x, y, mask, 5, **grid)
  assert sel["lam"] == 0.1, sel  # The uniform mixture predicts the wrong level for every task.
  chex.assert_shape(sel["cv_mse"], (2, 2))
  tx = rng.normal(size=(3, 5, 1))
  ty = centres[:, None, None] + 0.3 * rng.normal(size=(3, 5, 1))
  alpha = mmd.task_weights(x, y, mask, tx, ty, sel["lam"],
                           bandwidth_scale=sel["bandwidth_scale"])["alpha"]
  assert np.mean([alpha[g, group == g].sum() for g in range(3)]) > 0.8
  # Exchangeable sources: nothing to gain from weighting, so the near-uniform setting is kept.
  y_same = 0.3 * rng.normal(size=y.shape)
  sel = mmd.select_by_source_cv(x, y_same, mask, 5, **grid)
  assert sel["lam"] == 1e4, sel
  with pytest.raises(ValueError, match="k_shot"):
    mmd.select_by_source_cv(x, y, mask, 20, **grid)


def _gaussian_clusters(rng, n_per_source=30):
  """3 clusters x 3 sources; x ~ N(0, 1) for all tasks, y = c_g + 0.3 noise: only the joint
  (x, y) tells tasks apart."""
  centres = np.array([-3.0, 0.0, 3.0])
  group = np.repeat(np.arange(3), 3)
  x = rng.normal(size=(9, n_per_source, 1))
  y = centres[group][:, None, None] + 0.3 * rng.normal(size=(9, n_per_source, 1))
  return x, y, np.ones((9, n_per_source)), group, centres


def test_weights_concentrate_on_the_matching_cluster():
  rng = np.random.default_rng(3)
  x, y, mask, group, centres = _gaussian_clusters(rng)
  tx = rng.normal(size=(3, 5, 1))
  ty = centres[:, None, None] + 0.3 * rng.normal(size=(3, 5, 1))
  alpha = mmd.task_weights(x, y, mask, tx, ty, lam=1.0)["alpha"]
  chex.assert_shape(alpha, (3, 9))
  for g in range(3):
    assert alpha[g, group == g].sum() > 0.9, alpha[g]
  # One target, and a target with a single sample, also work.
  single = mmd.task_weights(x, y, mask, tx[2], ty[2], lam=1.0)
  np.testing.assert_allclose(single["alpha"], alpha[2], atol=1e-5)
  one = mmd.task_weights(x, y, mask, tx[0, :1], ty[0, :1], lam=1.0)["alpha"]
  assert np.all(np.isfinite(one)) and abs(one.sum() - 1) < 1e-5 and one[group == 0].sum() > 0.9


def test_alpha_tends_to_uniform_and_to_sample_sizes_as_lambda_grows():
  rng = np.random.default_rng(4)
  x, y, mask, _, centres = _gaussian_clusters(rng)
  tx, ty = rng.normal(size=(4, 1)), centres[0] + 0.3 * rng.normal(size=(4, 1))
  dists = []
  for lam in (0.0, 1.0, 10.0, 100.0, 1e4, 1e6):
    a = mmd.task_weights(x, y, mask, tx, ty, lam=lam)["alpha"]
    dists.append(np.abs(a - 1 / 9).sum())
  assert all(b <= a + 1e-4 for a, b in zip(dists, dists[1:])), dists
  assert dists[0] > 1.0 and dists[-1] < 1e-3
  # Unequal sizes: the complexity term alone is minimised at alpha_i proportional to n_i.
  mask = mask.copy()
  mask[::2, 15:] = 0
  a = mmd.task_weights(x, y, mask, tx, ty, lam=1e7)["alpha"]
  np.testing.assert_allclose(a, mask.sum(1) / mask.sum(), atol=1e-3)


def test_degenerate_inputs_give_valid_alpha_or_clear_errors():
  rng = np.random.default_rng(5)
  z = rng.normal(size=(1, 6, 1))
  same_x, same_y = np.repeat(z, 4, 0), np.repeat(z ** 2, 4, 0)
  mask = np.ones((4, 6))
  for lam in (0.0, 1.0):
    a = mmd.task_weights(same_x, same_y, mask, z[0, :1], z[0, :1] ** 2, lam=lam)["alpha"]
    assert np.all(np.isfinite(a)) and abs(a.sum() - 1) < 1e-5 and a.min() >= 0
    if lam > 0:  # Identical sources: the unique optimum is uniform.
      np.testing.assert_allclose(a, 0.25, atol=1e-4)
  const = np.zeros((3, 4, 1))  # Zero spread everywhere: no division by zero.
  a = mmd.task_weights(const, const, np.ones((3, 4)), const[0, :1], const[0, :1], lam=0.0)
  assert np.all(np.isfinite(a["alpha"])) and np.isfinite(a["sigma2"])
  with pytest.raises(ValueError, match="no labelled samples"):
    mmd.task_weights(same_x, same_y, mask, np.zeros((0, 1)), np.zeros((0, 1)), lam=1.0)
  with pytest.raises(ValueError, match="NaN"):
    mmd.task_weights(same_x, same_y, mask, np.full((2, 1), np.nan), np.zeros((2, 1)), lam=1.0)
  with pytest.raises(ValueError, match="allowed"):
    mmd.task_weights(same_x, same_y, mask, z[0], z[0], lam=1.0, allowed=np.zeros(4, bool))
  with pytest.raises(ValueError, match=r"\[num_sources, n, d\]"):
    mmd.task_weights(same_x[..., 0], same_y, mask, z[0], z[0], lam=1.0)
  with pytest.raises(ValueError, match="lam"):
    mmd.task_weights(same_x, same_y, mask, z[0], z[0], lam=-1.0)


def test_split_source_is_disjoint_and_uses_only_valid_samples():
  x = jnp.arange(10, dtype=jnp.float32)[:, None]
  mask = jnp.asarray([1] * 7 + [0] * 3, jnp.float32)
  t = alpha_maml.split_source(jax.random.key(0), x, x, mask, 3, 4)
  used = np.concatenate([t["support_x"][:, 0], t["query_x"][:, 0]])
  assert len(set(used.tolist())) == 7 and used.max() < 7


def test_uniform_alpha_equals_maml_and_vmap_equals_loop():
  rng = np.random.default_rng(6)
  p = task_clusters.sinusoid_clusters(rng, "three", 2, 8, 2, 4, 4)
  model = maml_nets.MLP((8,), 1)
  loss_fn = maml.mse_loss(model.apply)
  params = model.init(jax.random.key(0), p["support_x"][0])
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.01)}
  tasks = jax.vmap(alpha_maml.split_source, (0, 0, 0, 0, None, None))(
      jax.random.split(jax.random.key(1), 6), p["source_x"], p["source_y"], p["source_mask"], 4, 4)
  plain = jax.value_and_grad(maml.meta_loss, has_aux=True)(meta, tasks, loss_fn, 1)
  weighted = jax.value_and_grad(maml.meta_loss, has_aux=True)(
      meta, tasks, loss_fn, 1, task_weights=jnp.full((6,), 1 / 6))
  chex.assert_trees_all_close(plain, weighted, rtol=1e-5, atol=1e-6)

  opt = optax.adam(1e-2)
  train = alpha_maml.make_meta_trainer(loss_fn, opt, 5, 1, 4, 4, False)
  src = (p["source_x"], p["source_y"], p["source_mask"])
  w = np.stack([np.full(6, 1 / 6), np.full(6, 0.5), np.eye(6)[2]]).astype(np.float32)
  out, losses = train(meta, *src, jnp.asarray(w), jax.random.key(2))
  chex.assert_shape(losses, (5, 3))
  # A hand-written loop of plain (unweighted) MAML steps with the same keys.
  @jax.jit
  def plain_step(m, s, k):
    ts = jax.vmap(alpha_maml.split_source, (0, 0, 0, 0, None, None))(
        jax.random.split(k, 6), *src, 4, 4)
    g = jax.grad(lambda mp: maml.meta_loss(mp, ts, loss_fn, 1)[0])(m)
    u, s = opt.update(g, s, m)
    return optax.apply_updates(m, u), s

  m, s = meta, opt.init(meta)
  for k in jax.random.split(jax.random.key(2), 5):
    m, s = plain_step(m, s, k)
  row = lambda tree, i: jax.tree.map(lambda a: a[i], tree)
  chex.assert_trees_all_close(row(out, 0), m, rtol=1e-4, atol=1e-5)
  chex.assert_trees_all_close(row(out, 1), row(out, 0), rtol=1e-5, atol=1e-6)
  # The vmapped runs are independent: permuting the weight rows permutes the results.
  perm, _ = train(meta, *src, jnp.asarray(w[[2, 0, 1]]), jax.random.key(2))
  chex.assert_trees_all_close(row(perm, 0), row(out, 2), rtol=1e-4, atol=1e-5)
  assert not np.allclose(row(out, 2)["model"]["params"]["Dense_0"]["kernel"],
                         row(out, 0)["model"]["params"]["Dense_0"]["kernel"])


def _check_run(workdir, results):
  for k in ("alpha/step1", "uniform/step1", "oracle/step1", "pooled/step1", "scratch/step1",
            "scratch_adam/final", "alpha/mass_on_true_group", "alpha_minus_uniform/step1"):
    assert np.isfinite(results[k]), k
  assert 0 <= results["alpha/mass_on_true_group"] <= 1
  with open(os.path.join(workdir, "results.json")) as f:
    assert json.load(f)["num_targets"] == results["num_targets"]
  assert os.path.getsize(os.path.join(workdir, "alpha_maml.png")) > 0
  assert os.path.getsize(os.path.join(workdir, "metrics.jsonl")) > 0


def test_smoke_sinusoid_end_to_end(tmp_path):
  config = _load_config("alpha_maml", "smoke")
  results = main.run(config, str(tmp_path))
  _check_run(str(tmp_path), results)
  assert results["num_seeds"] == 2 and len(results["lambda_sweep"]) == 2


def test_smoke_wheat_end_to_end(tmp_path, data_dir):
  config = _load_config("alpha_maml_wheat", "smoke")
  config.data_dir = data_dir
  results = main.run(config, str(tmp_path))
  _check_run(str(tmp_path), results)
