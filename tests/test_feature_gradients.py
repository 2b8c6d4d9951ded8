"""Tests for Feature Gradients: the Kong-Valiant estimator, the relaxed optimisation, the sklearn
selector and the `:smoke` experiment configs."""

import dataclasses
import importlib.util
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from metanas import main
from metanas import parallel
from metanas.selection import feature_gradients as fg
from metanas.selection import learnability
from metanas.selection import sklearn_selector

_CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "feature_gradients.py")


def _load_config(arg):
  spec = importlib.util.spec_from_file_location("fg_config", _CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _dense_moments(x, y, order, w=None):
  """y^T G^k y / C(n, k+1) with the dense G = triu(X W^2 X^T, 1), in float64."""
  x = np.asarray(x, np.float64)
  xw = x if w is None else x * np.asarray(w, np.float64)
  g = np.triu(xw @ xw.T, 1)
  n = x.shape[0]
  out, v = [], np.asarray(y, np.float64)
  for k in range(1, order + 1):
    v = g @ v
    out.append(y @ v / scipy.special.comb(n, k + 1, exact=True))
  return np.asarray(out)


def test_triu_matvec_matches_dense():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(13, 7)).astype(np.float32)
  u = rng.normal(size=13).astype(np.float32)
  w = rng.uniform(0.1, 1.0, size=7).astype(np.float32)
  dense = np.triu((x * w) @ (x * w).T, 1) @ u
  got = learnability.triu_matvec(jnp.asarray(x), jnp.asarray(u), jnp.asarray(w))
  chex.assert_shape(got, (13,))
  np.testing.assert_allclose(np.asarray(got), dense, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(learnability.triu_matvec(x, u)),
                             np.triu(x @ x.T, 1) @ u, rtol=1e-5, atol=1e-5)


def test_moments_match_dense_triu_powers():
  rng = np.random.default_rng(1)
  x = (rng.normal(size=(40, 6)) / 3).astype(np.float32)
  y = rng.normal(size=40).astype(np.float32)
  w = rng.uniform(0.2, 1.0, size=6).astype(np.float32)
  got = learnability.moments(jnp.asarray(x), jnp.asarray(y), 6, jnp.asarray(w))
  np.testing.assert_allclose(np.asarray(got), _dense_moments(x, y, 6, w), rtol=2e-4, atol=1e-7)


def test_moments_are_unbiased():
  """Mean over many draws of m_k matches beta^T Sigma^(k+1) beta (KV eq. 3)."""
  eig = np.array([1.0, 0.7, 0.4, 0.2])
  beta = np.array([0.8, -0.5, 0.6, 0.3])
  n, draws, order = 12, 6000, 3
  rng = np.random.default_rng(0)
  x = (rng.normal(size=(draws, n, 4)) * np.sqrt(eig)).astype(np.float32)
  y = (x @ beta + 0.5 * rng.normal(size=(draws, n))).astype(np.float32)
  m = jax.jit(jax.vmap(lambda a, b: learnability.moments(a, b, order)))(x, y)
  m = np.asarray(m, np.float64)
  truth = np.array([np.sum(beta ** 2 * eig ** (k + 1)) for k in range(1, order + 1)])
  stderr = m.std(0) / np.sqrt(draws)
  np.testing.assert_array_less(np.abs(m.mean(0) - truth), 4 * stderr + 1e-3)
  # The check has power: a biased variant (normalising by n^(k+1)/(k+1)! instead) fails it.
  biased = m * np.array([scipy.special.comb(n, k + 1) * scipy.special.factorial(k + 1)
                         / n ** (k + 1) for k in range(1, order + 1)])
  assert np.any(np.abs(biased.mean(0) - truth) > 4 * stderr + 1e-3)


def test_minimax_coefficients_order1_closed_form():
  # min_c max_{l in [0,1]} |l - c l^2|: equioscillation 1/(4c) = c - 1 gives c = (1 + sqrt 2) / 2.
  c, err = learnability.minimax_coefficients(1)
  np.testing.assert_allclose(c, [(1 + np.sqrt(2)) / 2], rtol=1e-5)
  np.testing.assert_allclose(err, np.sqrt(2) / 2 - 0.5, rtol=1e-5)


@pytest.mark.parametrize("order", [2, 4, 6])
def test_minimax_coefficients_equioscillate(order):
  """Chebyshev alternation: the LP optimum's error reaches +-err at >= order + 1 alternating
  points."""
  c, err = learnability.minimax_coefficients(order)
  lam = np.linspace(0, 1, 20001)
  resid = lam - sum(ck * lam ** (k + 2) for k, ck in enumerate(c))
  assert np.max(np.abs(resid)) <= err * 1.01
  peaks = np.sign(resid[np.abs(resid) >= 0.99 * err])
  alternations = 1 + np.count_nonzero(np.diff(peaks))
  assert alternations >= order + 1
  assert err < learnability.minimax_coefficients(order - 1)[1]


def test_float32_extremes_stay_finite():
  """B = 8000 and order 12: C(B, 13) ~ 1e41 overflows float32 unless normalised per product."""
  rng = np.random.default_rng(2)
  n, d = 8000, 4
  x = (rng.normal(size=(n, d)) * np.sqrt(0.5)).astype(np.float32)
  beta = np.array([1.0, -1.0, 0.5, 0.0])
  y = (x @ beta + 0.3 * rng.normal(size=n)).astype(np.float32)
  m = np.asarray(jax.jit(lambda a, b: learnability.moments(a, b, 12))(x, y))
  assert np.all(np.isfinite(m))
  truth = np.array([np.sum(beta ** 2) * 0.5 ** (k + 1) for k in range(1, 13)])
  np.testing.assert_allclose(m[:4], truth[:4], rtol=0.15)
  coeffs = jnp.asarray(learnability.minimax_coefficients(12)[0], jnp.float32)
  grad = jax.jit(jax.grad(lambda w: learnability.explained_variance(x, y, coeffs, w)))(
      jnp.full((d,), 0.9))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_sharded_loss_and_grad_equal_single_device():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(8, 10, 5)).astype(np.float32) / 3
  y = rng.normal(size=(8, 10, 1)).astype(np.float32)
  logits = jnp.asarray(rng.normal(size=5), jnp.float32)
  coeffs = jnp.asarray(learnability.minimax_coefficients(3)[0], jnp.float32)
  f = jax.jit(jax.value_and_grad(lambda z, a, b: fg.loss_fn(z, a, b, coeffs, 0.2)[0]))
  single = f(logits, x, y)
  mesh = parallel.make_mesh(8)
  batch = parallel.shard_batch({"x": x, "y": y}, mesh)
  sharded = f(parallel.replicate(logits, mesh), batch["x"], batch["y"])
  assert len(batch["x"].sharding.device_set) == 8
  chex.assert_trees_all_close(sharded, single, rtol=1e-5, atol=1e-6)


def test_fit_finds_relevant_features():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(800, 20))
  y = x[:, [3, 7, 11]] @ np.array([1.0, -1.0, 0.8]) + 0.5 * rng.normal(size=800)
  xs, _ = learnability.prepare_features(x)
  t = learnability.prepare_targets(y, "regression")
  res = fg.fit(xs, t, fg.Hparams(num_epochs=8, batch_size=100, minibatches_per_step=2,
                                 learning_rate=0.05))
  np.testing.assert_array_equal(fg.select_top_k(res.weights, 3), [3, 7, 11])
  assert res.history[-1]["loss"] < res.history[0]["loss"]
  sizes = [1, 2, 3, 5, 10, 20]
  curve = fg.learnability_curve(xs, t, res.weights, sizes, order=2)
  assert curve[2] > 0.5 and abs(curve[-1] - curve[2]) < 0.1


def test_column_explained_variance_and_classification_error():
  rng = np.random.default_rng(12)
  x = rng.normal(size=(40, 5)).astype(np.float32) / 3
  labels = rng.integers(0, 3, size=40)
  t = learnability.prepare_targets(labels, "classification")  # [40, 3] one-vs-rest
  coeffs, _ = learnability.minimax_coefficients(2)
  w = jnp.asarray([1.0, 0.5, 0.2, 0.9, 0.0])
  cols = learnability.column_explained_variance(jnp.asarray(x), jnp.asarray(t), coeffs, w)
  want = [np.dot(coeffs, _dense_moments(x, t[:, c], 2, w)) for c in range(3)]
  np.testing.assert_allclose(cols, want, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(learnability.explained_variance(jnp.asarray(x), jnp.asarray(t),
                                                             coeffs, w), np.mean(want), rtol=1e-4)
  err = learnability.linear_classification_error
  np.testing.assert_allclose(err(jnp.asarray([0.0, 0.25, 1.0])), [0.5, 0.25, 0.0], atol=1e-3)
  np.testing.assert_allclose(err(jnp.asarray(-0.3)), 0.5 - 0.0005 + 0.003, atol=1e-6)
  grad = jax.vmap(jax.grad(err))(jnp.asarray([-0.3, 0.0, 0.25, 1.3]))
  np.testing.assert_allclose(np.asarray(grad)[[0, 2, 3]], [-0.01, -0.5, 0.01], rtol=1e-5)
  assert np.all(np.isfinite(grad))
  # The loss's first term is the class-averaged error of those column estimates.
  logits = jnp.asarray([1.0, 0.0, -0.5, 0.7, -3.0])
  s = fg.feature_weights(logits)
  loss, _ = fg.loss_fn(logits, jnp.asarray(x)[None], jnp.asarray(t)[None], coeffs, 0.3,
                       "classification_error")
  cols = learnability.column_explained_variance(jnp.asarray(x), jnp.asarray(t), coeffs, s)
  np.testing.assert_allclose(loss, 0.7 * jnp.mean(err(cols)) + 0.3 * jnp.mean(s), rtol=1e-5)


def test_classification_error_objective_finds_relevant_features():
  rng = np.random.default_rng(13)
  x = rng.normal(size=(600, 15))
  labels = (x[:, 4] - 0.8 * x[:, 9] + 0.3 * rng.normal(size=600) > 0).astype(int)
  xs, _ = learnability.prepare_features(x)
  t = learnability.prepare_targets(labels, "classification")
  hp = fg.Hparams(num_epochs=8, batch_size=100, learning_rate=0.05,
                  objective="classification_error")
  res = fg.fit(xs, t, hp)
  np.testing.assert_array_equal(np.sort(fg.select_top_k(res.weights, 2)), [4, 9])
  assert res.history[-1]["loss"] < res.history[0]["loss"]
  with pytest.raises(ValueError, match="objective must be"):
    fg.fit(xs, t, dataclasses.replace(hp, objective="accuracy"))
  with pytest.raises(ValueError, match="needs class labels"):
    sklearn_selector.FeatureGradientsSelector(
        n_features_to_select=2, objective="classification_error").fit(x, x[:, 0])


def test_normalized_sgd_ranks_by_strength_where_full_batch_adam_ties():
  # Full batch: the gradient is deterministic, so Adam moves every feature with a positive gradient
  # by ~learning_rate per step (equal logits); the normalised gradient keeps their magnitudes. N = D
  # puts each feature's scaled variance (~1 / top eigenvalue) where EV grows with every weight.
  rng = np.random.default_rng(8)
  x = rng.normal(size=(200, 200))
  y = x[:, [0, 1, 2]] @ np.array([1.5, 1.0, 0.6]) + 0.5 * rng.normal(size=200)
  xs, _ = learnability.prepare_features(x)
  t = learnability.prepare_targets(y, "regression")
  hp = fg.Hparams(num_epochs=30, batch_size=0, sparsity=0.1, learning_rate=0.05)
  adam = fg.fit(xs, t, hp).logits
  nsgd = fg.fit(xs, t, dataclasses.replace(hp, optimizer="normalized_sgd",
                                           learning_rate=0.2)).logits
  assert np.ptp(adam[:3]) < 0.05 * np.ptp(adam)
  np.testing.assert_array_equal(np.argsort(-nsgd)[:3], [0, 1, 2])
  assert nsgd[0] - nsgd[1] > 0.1 and nsgd[1] - nsgd[2] > 0.1
  with pytest.raises(ValueError, match="Unknown optimizer"):
    fg.make_optimizer(dataclasses.replace(hp, optimizer="sgdd"))


def test_restarts_average_the_logits_of_independent_orders():
  rng = np.random.default_rng(9)
  x = rng.normal(size=(64, 6))
  y = x[:, 0] + rng.normal(size=64)
  xs, _ = learnability.prepare_features(x)
  t = learnability.prepare_targets(y, "regression")
  hp = fg.Hparams(num_epochs=3, batch_size=16, learning_rate=0.05)
  one = fg.fit(xs, t, hp, seed=3)
  two = fg.fit(xs, t, dataclasses.replace(hp, num_restarts=2), seed=3)
  second, _ = fg._fit_once(xs, t, hp, 3, 1, None, None)  # pylint: disable=protected-access
  assert not np.allclose(one.logits, second)  # a different mini-batch order
  np.testing.assert_allclose(two.logits, (one.logits + second) / 2, rtol=1e-6)
  np.testing.assert_allclose(two.weights, 1 / (1 + np.exp(-2 * two.logits)), rtol=1e-5)
  assert len(two.history) == hp.num_epochs


def test_selection_rules():
  w = np.array([0.1, 0.9, 0.5, 0.95, 0.2])
  np.testing.assert_array_equal(fg.select_top_k(w, 2), [1, 3])
  np.testing.assert_array_equal(fg.select_threshold(w, 0.4), [1, 2, 3])
  np.testing.assert_array_equal(fg.select_threshold(w, 0.99), [3])
  sizes = np.arange(1, 21)
  assert fg.elbow(sizes, np.minimum(sizes, 5) / 5) == 5
  with pytest.raises(ValueError, match="k must be in"):
    fg.select_top_k(w, 6)


def test_bad_inputs_give_clear_errors():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(30, 4))
  with pytest.raises(ValueError, match="constant column.*VarianceThreshold"):
    learnability.prepare_features(np.c_[x, np.ones(30)])
  bad = x.copy()
  bad[3, 2] = np.nan
  with pytest.raises(ValueError, match="NaN.*column.*Impute"):
    learnability.prepare_features(bad)
  with pytest.raises(ValueError, match="at least 2 samples"):
    learnability.prepare_features(x[:1])
  with pytest.raises(ValueError, match="single class"):
    learnability.prepare_targets(np.ones(30, int), "classification")
  with pytest.raises(ValueError, match="y is constant"):
    learnability.prepare_targets(np.ones(30), "regression")
  with pytest.raises(ValueError, match="order \\+ 1"):
    learnability.moments(jnp.ones((3, 2)), jnp.ones(3), 4)
  with pytest.raises(ValueError, match="single class"):
    sklearn_selector.FeatureGradientsSelector(n_features_to_select=2).fit(x, np.zeros(30, int))


def test_sklearn_selector_clone_pipeline_cross_val():
  rng = np.random.default_rng(6)
  x = rng.normal(size=(120, 12))
  y = np.where(x[:, 2] - x[:, 5] > 0, "pos", "neg")
  sel = sklearn_selector.FeatureGradientsSelector(n_features_to_select=2, num_epochs=10,
                                                  learning_rate=0.05, random_state=1)
  with pytest.raises(NotFittedError):
    sel.get_support()
  twin = clone(sel)
  assert twin is not sel and twin.get_params() == sel.get_params()
  assert not hasattr(twin, "scores_")
  sel.fit(x, y)
  np.testing.assert_array_equal(sel.get_support(indices=True), [2, 5])
  assert sel.transform(x).shape == (120, 2) and sel.n_features_in_ == 12
  assert not hasattr(clone(sel), "support_")
  pipe = Pipeline([("select", sel), ("clf", LogisticRegression())])
  scores = cross_val_score(pipe, x, y, cv=3)
  assert scores.mean() > 0.85
  pipe.set_params(select__n_features_to_select=3)
  assert pipe.fit(x, y)[:-1].transform(x).shape == (120, 3)


@pytest.mark.parametrize("check", [
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_estimators_unfitted,
    estimator_checks.check_fit2d_1sample,
    estimator_checks.check_dont_overwrite_parameters,
    estimator_checks.check_n_features_in_after_fitting,
])
def test_sklearn_estimator_checks(check):
  """scikit-learn's own contract checks (the full `check_estimator`, 47 checks, also passes but
  takes too long for this suite: every new input shape compiles)."""
  est = sklearn_selector.FeatureGradientsSelector(n_features_to_select=1, num_epochs=1)
  check(type(est).__name__, est)


@pytest.mark.parametrize("experiment", ["selection", "estimator", "interactions", "scaling"])
def test_smoke_config_end_to_end(experiment, data_dir, tmp_path):
  config = _load_config("smoke")
  config.experiment = experiment
  config.data_dir = data_dir
  workdir = str(tmp_path / experiment)
  results = main.run(config, workdir)
  with open(os.path.join(workdir, "results.json")) as f:
    saved = json.load(f)
  assert saved["experiment"] == experiment
  if experiment == "selection":
    acc = results["accuracy"]["feature_gradients"]["5"]["mean"]
    assert 0.0 <= acc <= 1.0
    assert os.path.exists(os.path.join(workdir, "accuracy_allaml.png"))
    assert len(metric_lines(workdir)) == config.fg.num_epochs
  elif experiment == "estimator":
    row = results["rows"][-1]
    assert np.isfinite(row["order2_bias"]) and "adj_r2_bias" in row
  elif experiment == "interactions":
    assert results["rows"][1]["feature_map"] == "pairwise"
  else:
    assert all(r["seconds_per_epoch"] > 0 for r in results["rows"])


def metric_lines(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [l for l in f if l.strip()]


def test_seeds20_reading_is_paired_and_strict(load_script):
  read = load_script("experiments", "feature_gradients", "seeds20", "read.py")
  acc = {"feature_gradients": {"5": [0.8, 0.9, 0.7]}, "f_classif": {"5": [0.8, 0.9, 0.7]},
         "mutual_info": {"5": [0.7, 0.95, 0.6]}, "all": {"all": [0.6, 0.9, 0.7]}}
  res = {"ks": [5], "accuracy_per_seed": acc}
  (row,) = read.table(res)
  assert row["best"] == "f_classif" and row["d_best"] == 0 and row["at_least_best"]
  assert np.isclose(row["d_all"], 0.2 / 3) and row["above_all"]
  assert np.isclose(row["se_all"], np.std([0.2, 0.0, 0.0], ddof=1) / np.sqrt(3))
  acc["feature_gradients"]["5"][0] = 0.79  # Strictly below the best filter's mean now.
  assert not read.table(res)[0]["at_least_best"]
  ref = {"accuracy_per_seed": {m: {k: v[:2] for k, v in d.items()} for m, d in acc.items()}}
  assert read.check_first_seeds(res, ref)
  ref["accuracy_per_seed"]["all"]["all"][1] = 0.5
  assert not read.check_first_seeds(res, ref)
