"""Tests for metanas.compression: encodings, MUNGE/GMM, GAN steps, students, Compression Score."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from metanas.compression import augment
from metanas.compression import gan as gan_lib
from metanas.compression import score
from metanas.compression import students
from metanas.compression import tabular

SPEC = tabular.TabularSpec(3, (2, 4))


def _valid_rows(x, spec):
  for start, stop in spec.blocks():
    block = x[:, start:stop]
    if not (np.all(np.isin(block, (0.0, 1.0))) and np.all(block.sum(1) == 1)):
      return False
  return True


def _toy_rows(n, seed):
  """Rows in SPEC's layout whose class depends on the numeric columns and the 4-way category."""
  rng = np.random.default_rng(seed)
  num = rng.normal(size=(n, 3)).astype(np.float32)
  c1, c2 = rng.integers(0, 2, n), rng.integers(0, 4, n)
  x = np.concatenate([num, tabular.one_hot(c1, 2), tabular.one_hot(c2, 4)], axis=1)
  y = ((num[:, 0] + num[:, 1] + (c2 >= 2)) > 0.5).astype(np.int32)
  return x, y


def test_load_adult_encoding(data_dir):
  data = tabular.load("adult", data_dir, n_train=500, n_test=200, seed=1)
  assert data.x_train.shape == (500, data.spec.dim) and data.x_test.shape == (200, data.spec.dim)
  assert data.spec.num_numeric == 6 and sum(data.spec.cat_sizes) == 102
  assert _valid_rows(data.x_train, data.spec) and _valid_rows(data.x_test, data.spec)
  np.testing.assert_allclose(data.x_train[:, :6].mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(data.x_train[:, :6].std(0), 1, atol=1e-4)
  with pytest.raises(ValueError, match="magic.*adult"):
    tabular.load("iris", data_dir)


def test_validation_split_keeps_train_rows_and_holds_out_other_training_rows(data_dir):
  for name in ("magic", "adult"):
    test = tabular.load(name, data_dir, n_train=300, n_test=200, seed=2)
    val = tabular.load(name, data_dir, n_train=300, n_test=200, seed=2, validation=True)
    np.testing.assert_array_equal(val.x_train, test.x_train)
    np.testing.assert_array_equal(val.y_train, test.y_train)
    assert val.x_test.shape == test.x_test.shape and not np.array_equal(val.x_test, test.x_test)
    # Held-out rows are not training rows (these seeds and sizes hit no duplicate rows).
    same = (val.x_test[:, None, :] == val.x_train[None, :, :]).all(-1).any(1)
    assert not same.any(), name
  with pytest.raises(ValueError, match="n_train below"):
    tabular.load("magic", data_dir, n_train=0, seed=0, validation=True)


def test_quantile_codec_round_trip_gaussianises_and_keeps_spikes():
  rng = np.random.default_rng(0)
  n = 2000
  spike = np.where(rng.uniform(size=n) < 0.9, 0.0, rng.exponential(5.0, n))   # 90 % exact zeros.
  ints = rng.integers(1, 17, n).astype(float)                                 # Integer-valued.
  heavy = rng.standard_cauchy(n)
  x = np.concatenate([np.stack([spike, ints, heavy], 1), tabular.one_hot(rng.integers(0, 2, n), 2),
                      tabular.one_hot(rng.integers(0, 4, n), 4)], axis=1).astype(np.float32)
  codec = tabular.QuantileCodec(x, SPEC)
  z = codec.encode(x)
  np.testing.assert_array_equal(z[:, 3:], x[:, 3:])                       # Blocks pass through.
  assert abs(z[:, 2].mean()) < 0.05 and abs(z[:, 2].std() - 1) < 0.05     # Cauchy -> N(0, 1).
  np.testing.assert_allclose(codec.decode(z)[:, :3], x[:, :3], rtol=1e-4, atol=1e-4)
  # Fresh Gaussian noise decodes onto the data's marginals: the spike comes back as exact zeros.
  noise = np.concatenate([rng.normal(size=(n, 3)), x[:, 3:]], axis=1)
  back = codec.decode(noise)
  assert abs(np.mean(back[:, 0] == 0.0) - 0.9) < 0.03
  assert back[:, 1].min() >= 1 and back[:, 1].max() <= 16
  assert abs(np.median(back[:, 2]) - np.median(heavy)) < 0.15
  with pytest.raises(ValueError, match="width 9"):
    codec.decode(noise[:, :5])


def test_project_makes_valid_rows_and_checks_width():
  x = np.random.default_rng(0).normal(size=(20, SPEC.dim))
  p = tabular.project(x, SPEC)
  assert _valid_rows(p, SPEC)
  np.testing.assert_array_equal(p[:, :3], x[:, :3].astype(np.float32))
  np.testing.assert_array_equal(np.argmax(p[:, 3:5], 1), np.argmax(x[:, 3:5], 1))
  with pytest.raises(ValueError, match="width 9"):
    tabular.project(x[:, :5], SPEC)


def test_munge_limits_and_validity():
  x, _ = _toy_rows(50, 0)
  same = augment.munge(x, SPEC, multiplier=2, p=0.0, seed=0)
  np.testing.assert_array_equal(same, np.concatenate([x, x]))
  out = augment.munge(x, SPEC, multiplier=3, p=0.5, s=5.0, seed=1)
  assert out.shape == (150, SPEC.dim) and _valid_rows(out, SPEC)
  assert not np.allclose(out[:50], x)
  # p = 1 with a huge s copies the nearest neighbour (never the row itself).
  copied = augment.munge(x, SPEC, multiplier=1, p=1.0, s=1e9, seed=2)
  dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
  np.fill_diagonal(dist, np.inf)
  np.testing.assert_allclose(copied, x[np.argmin(dist, axis=1)], atol=1e-5)
  with pytest.raises(ValueError, match="p="):
    augment.munge(x, SPEC, 1, p=2.0)


def test_class_gmm_samples_follow_classes():
  x, y = _toy_rows(400, 3)
  samples, labels = augment.class_gmm(x, y, SPEC, 1000, num_components=2, seed=0)
  assert samples.shape == (1000, SPEC.dim) and _valid_rows(samples, SPEC)
  assert abs(labels.mean() - y.mean()) < 0.06
  # Class-conditional means of the numeric columns match the data.
  for c in (0, 1):
    np.testing.assert_allclose(samples[labels == c, :2].mean(0), x[y == c, :2].mean(0), atol=0.15)


def test_inception_style_score_against_closed_forms():
  k = 5
  assert score.inception_style_score(np.full((10, k), 1 / k)) == pytest.approx(1.0)
  assert score.inception_style_score(np.eye(k)[np.arange(20) % k]) == pytest.approx(k, rel=1e-6)
  p = np.random.default_rng(0).dirichlet(np.ones(k), size=30)
  marg = p.mean(0)
  kl = [sum(pi[j] * np.log(pi[j] / marg[j]) for j in range(k)) for pi in p]
  assert score.inception_style_score(p) == pytest.approx(np.exp(np.mean(kl)), rel=1e-9)


def test_frechet_distance_against_dense_sqrtm():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
  c1, c2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  dense = (np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(linalg.sqrtm(c1 @ c2))))
  assert score.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(dense, rel=1e-8)
  assert score.frechet_distance(mu1, c1, mu1, c1) == pytest.approx(0.0, abs=1e-8)
  f = rng.normal(size=(500, 3))
  assert score.fid_style_score(f, f) == pytest.approx(0.0, abs=1e-8)
  assert score.fid_style_score(f, f + 2.0) == pytest.approx(12.0, rel=1e-6)


def test_rf_student_prefixes_match_separate_prediction():
  x, y = _toy_rows(200, 1)
  scores = students.rf_student_scores(x, y.astype(np.float32), x[:50], (1, 3, 4), seed=0)
  from sklearn import ensemble  # pylint: disable=g-import-not-at-top
  forest = ensemble.RandomForestRegressor(4, random_state=0).fit(x, y.astype(np.float32))
  np.testing.assert_allclose(scores[4], forest.predict(x[:50]), atol=1e-12)
  np.testing.assert_allclose(scores[1], forest.estimators_[0].predict(x[:50]), atol=1e-12)


def test_oob_teacher_targets_label_training_rows_like_fresh_rows():
  """"oob" = the out-of-bag probability on the training rows, predict_proba on the synthetic ones."""
  x, y = _toy_rows(300, 4)
  y = np.where(np.random.default_rng(0).random(300) < 0.2, 1 - y, y)   # label noise
  teacher = students.rf_teacher(x, y, 60, seed=0, oob=True)
  plain = students.rf_teacher(x, y, 60, seed=0)
  x_new, _ = _toy_rows(100, 5)
  rows = np.concatenate([x, x_new])
  inbag = students.teacher_targets(plain, rows, 300)
  oob = students.teacher_targets(teacher, rows, 300, "oob")
  # Same trees; synthetic rows keep predict_proba; training rows get the forest's OOB estimate.
  np.testing.assert_allclose(inbag, teacher.predict_proba(rows)[:, 1], atol=1e-6)
  np.testing.assert_allclose(oob[300:], inbag[300:], atol=1e-6)
  np.testing.assert_allclose(oob[:300], teacher.oob_decision_function_[:, 1], atol=1e-6)
  # In-bag labels of the forest's own (noisy) training rows are more extreme than OOB ones.
  assert np.mean(np.abs(inbag[:300] - 0.5)) > np.mean(np.abs(oob[:300] - 0.5)) + 0.05
  assert np.mean((inbag[:300] > 0.5) == y) > np.mean((oob[:300] > 0.5) == y)
  with pytest.raises(ValueError, match="oob=True"):
    students.teacher_targets(plain, rows, 300, "oob")
  with pytest.raises(ValueError, match="fit on 300 rows"):
    students.teacher_targets(teacher, rows, 200, "oob")
  with pytest.raises(ValueError, match="Unknown teacher labels"):
    students.teacher_targets(teacher, rows, 300, "in_bag")


def test_prototypes_keep_the_most_confident_rows_per_class():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(60, 2, 2)).astype(np.float32)
  probs = rng.dirichlet(np.ones(3), size=60)
  out = augment.prototypes(x, probs, 2, 25)
  assert out.shape == (25, 2, 2)
  pred = probs.argmax(1)
  expected = []
  for c in range(3):
    rows = np.flatnonzero(pred == c)
    expected.extend(rows[np.argsort(-probs[rows, c])[:2]])
  np.testing.assert_array_equal(out[:6], x[expected])   # 2 per class, classes in order ...
  np.testing.assert_array_equal(out[6:12], x[expected])  # ... then repeated.
  with pytest.raises(ValueError, match=">= 1"):
    augment.prototypes(x, probs, 0, 10)


def test_gap_closed_per_seed_and_undefined_seeds():
  from metanas.compression import tabular_experiment  # pylint: disable=g-import-not-at-top
  runs = [{"teacher": 0.90, "train": {"rf1": 0.80}, "train+gan": {"rf1": 0.85}},
          {"teacher": 0.90, "train": {"rf1": 0.8995}, "train+gan": {"rf1": 0.95}},  # gap < 1e-3
          {"teacher": 0.90, "train": {"rf1": 0.70}, "train+gan": {"rf1": 0.75}}]
  g = tabular_experiment.summarise(runs)["gap_closed"]["rf1"]
  np.testing.assert_allclose(g["per_seed"], [0.5, np.nan, 0.25])
  assert g["seeds_defined"] == 2
  np.testing.assert_allclose(g["per_seed_mean"], 0.375)
  np.testing.assert_allclose(g["of_means"], (0.85 - 0.7998333) / (0.9 - 0.7998333), rtol=1e-5)


def test_bad_tabular_names_fail_before_any_work():
  from metanas import config_lib  # pylint: disable=g-import-not-at-top
  from metanas.compression import tabular_experiment  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(__file__), "..", "configs", "gan_compression_tabular.py")
  config = config_lib.load_config(f"{path}:smoke").tabular
  config.teacher_labels = "in_bag"
  with pytest.raises(ValueError, match="Unknown teacher labels"):   # no data directory needed
    tabular_experiment.run_seed("adult", config, 0, data_dir="/nonexistent")
  config.teacher_labels = "oob"
  config.transfer_sets = ("train", "train+vae")
  with pytest.raises(ValueError, match="Unknown transfer set 'train\\+vae'"):
    tabular_experiment.run_seed("adult", config, 0, data_dir="/nonexistent")


def test_epoch_indices_one_pass_without_replacement():
  idx = students.epoch_indices(100, 10, 15, seed=0)
  assert idx.shape == (15, 10)
  np.testing.assert_array_equal(np.sort(idx[:10].ravel()), np.arange(100))
  with pytest.raises(ValueError, match="Batch size"):
    students.epoch_indices(5, 10, 1, seed=0)


def test_big_student_reproduces_teacher_on_its_training_set():
  """Paper's premise: with enough capacity the student recovers the teacher where it has data."""
  x, y = _toy_rows(400, 2)
  teacher = students.rf_teacher(x, y, 50, seed=0)
  p = teacher.predict_proba(x)[:, 1]
  rf = students.rf_student_scores(x, p, x, (1, 100), seed=0)
  # 100 fully grown trees on the teacher's probabilities agree with it on its own training points.
  agree = lambda q: np.mean((q > 0.5) == (p > 0.5))
  assert agree(rf[100]) > 0.99 and np.corrcoef(rf[100], p)[0, 1] > 0.98
  assert agree(rf[1]) < agree(rf[100])   # A 1-tree student (bootstrap sample) does worse.
  mlp = students.MLP(2, (128, 128))
  params = students.train_network(mlp, x, np.stack([1 - p, p], 1), 1500, 100, 3e-3, seed=0)
  q = students.predict(mlp.apply, params, x)[:, 1]
  assert np.mean((q > 0.5) == (p > 0.5)) > 0.95
  small = students.MLP(2, (1,))
  params = students.train_network(small, x, np.stack([1 - p, p], 1), 1500, 100, 3e-3, seed=0)
  q_small = students.predict(small.apply, params, x)[:, 1]
  assert np.mean(np.abs(q - p)) < np.mean(np.abs(q_small - p))


def test_compression_score_of_real_data_is_one_and_collapse_scores_lower():
  """CS(real) = 1 within its s.e.; a set of one repeated point (total collapse) scores far lower."""
  rng = np.random.default_rng(0)
  d, n, seeds = 6, 200, 8
  pool = rng.normal(size=(5000, d)).astype(np.float32)
  w = rng.normal(size=(d, 3))
  teacher = lambda x: jax.nn.softmax(jnp.asarray(x) @ w * 2.0)   # A fixed 3-class teacher.
  x_test = rng.normal(size=(2000, d)).astype(np.float32)
  y_test = np.argmax(x_test @ w, axis=1)
  student = students.MLP(3, (16,))

  def fit_eval(x, seed):
    params = student.init(jax.random.key(seed), x[:1])
    params = students.fit_soft(student, params, x, np.asarray(teacher(x)),
                               students.epoch_indices(n, 10, n // 10, seed), 1e-2)
    return float(np.mean(np.argmax(students.predict(student.apply, params, x_test), 1) == y_test))

  draws = [rng.choice(len(pool), 2 * n, replace=False) for _ in range(seeds)]
  real = score.compression_score(fit_eval, [pool[i[n:]] for i in draws],
                                 [pool[i[:n]] for i in draws])
  assert real["se"] < 0.05
  assert abs(real["mean"] - 1.0) <= 2 * real["se"] + 1e-9, real
  collapsed = score.compression_score(
      fit_eval, [np.repeat(pool[i[n:n + 1]], n, axis=0) for i in draws],
      [pool[i[:n]] for i in draws])
  assert collapsed["mean"] < real["mean"] - 5 * (real["se"] + collapsed["se"])
  with pytest.raises(ValueError, match="equal sizes"):
    score.compression_score(fit_eval, [pool[:10]], [pool[:20]])


@pytest.fixture(scope="module")
def toy_gan():
  return gan_lib.tabular_gan(SPEC, num_classes=2, latent_dim=4, hidden=(16,))


def test_gan_step_is_pure_and_jitted_once(toy_gan):
  x, y = _toy_rows(32, 4)
  state = gan_lib.init_state(toy_gan, jax.random.key(0))
  before = jax.tree.map(np.array, state)
  def fn(state, batch, rng):
    return gan_lib.gan_step(toy_gan, state, batch, rng)

  step = jax.jit(chex.assert_max_traces(fn, n=1))
  batch = (jnp.asarray(x), jnp.asarray(y))
  s1, m1 = step(state, batch, jax.random.key(1))
  s2, m2 = step(state, batch, jax.random.key(1))
  chex.assert_trees_all_equal((s1, m1), (s2, m2))               # Same inputs -> same outputs.
  chex.assert_trees_all_equal(jax.tree.map(np.array, state), before)   # Inputs untouched.
  assert int(s1.step) == 1
  assert not np.allclose(jax.tree.leaves(s1.g_params)[0], jax.tree.leaves(state.g_params)[0])
  s3, m3 = step(s1, (batch[0] + 1.0, 1 - batch[1]), jax.random.key(2))   # No retrace.
  assert np.isfinite(m3["d_loss"]) and int(s3.step) == 2


def test_straight_through_blocks_are_one_hot_with_softmax_gradients(toy_gan):
  raw = jax.random.normal(jax.random.key(0), (16, SPEC.dim))
  w = jax.random.normal(jax.random.key(1), (SPEC.dim,))
  st = dataclasses.replace(toy_gan, straight_through=True)
  out = gan_lib.finalize(st, raw, jax.random.key(2), hard=False)
  assert _valid_rows(np.asarray(out), SPEC)                      # D sees exact one-hot blocks.
  np.testing.assert_array_equal(out[:, :3], raw[:, :3])
  loss = lambda gan: lambda r: jnp.sum(gan_lib.finalize(gan, r, jax.random.key(2), False) * w)
  g_st, g_soft = jax.grad(loss(st))(raw), jax.grad(loss(toy_gan))(raw)
  np.testing.assert_allclose(g_st, g_soft, rtol=1e-5, atol=1e-6)   # Gradient of the relaxation.
  assert np.abs(np.asarray(g_st[:, 3:])).max() > 1e-3


def test_gan_learns_class_conditional_structure(toy_gan):
  """A short AC-GAN run separates the classes the way the data does (and an untrained G does not)."""
  x, y = _toy_rows(2000, 5)
  x[:, 0] = np.where(y == 1, 2.0, -2.0) + 0.5 * np.random.default_rng(0).normal(size=len(y))
  state = gan_lib.train(dataclasses.replace(toy_gan, learning_rate=1e-3), x, y, num_steps=400,
                        batch_size=128, seed=0)
  labels = np.repeat([0, 1], 1000)
  samples = gan_lib.sample(toy_gan, state.g_params, labels, seed=1)
  assert samples.shape == (2000, SPEC.dim) and _valid_rows(samples, SPEC)
  untrained = gan_lib.sample(toy_gan, gan_lib.init_state(toy_gan, jax.random.key(0)).g_params,
                             labels, seed=1)
  gap = lambda s: s[labels == 1, 0].mean() - s[labels == 0, 0].mean()   # Data: 4.
  assert gap(samples) > 2.0 and abs(gap(untrained)) < 1.0, (gap(samples), gap(untrained))
  with pytest.raises(ValueError, match="shape"):
    gan_lib.train(toy_gan, x[:, :4], y, 1, 8, 0)
