"""Tests for the tabular GAN's mode-coverage options: PacGAN, WGAN-GP, CTGAN training-by-sampling."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metanas import config_lib
from metanas.compression import gan as gan_lib
from metanas.compression import tabular
from metanas.compression import tabular_experiment

SPEC = tabular.TabularSpec(2, (3, 4))


def _rows(counts_a, counts_b, seed=0):
  """Rows in SPEC's layout with the given category counts (same total) in each block."""
  rng = np.random.default_rng(seed)
  a = rng.permutation(np.repeat(np.arange(len(counts_a)), counts_a))
  b = rng.permutation(np.repeat(np.arange(len(counts_b)), counts_b))
  num = rng.normal(size=(len(a), 2)).astype(np.float32)
  return np.concatenate([num, tabular.one_hot(a, 3), tabular.one_hot(b, 4)], axis=1)


def test_pac_discriminator_shapes_and_packs_are_independent():
  d = gan_lib.TabularDiscriminator(num_classes=2, hidden=(8,), pac=4)
  x = jax.random.normal(jax.random.key(0), (12, 5))
  params = d.init(jax.random.key(1), x[:4])
  adv, cls = d.apply(params, x)
  chex.assert_shape(adv, (3,))
  chex.assert_shape(cls, (12, 2))
  # The first layer sees a whole pack: [pac * dim] inputs.
  chex.assert_shape(params["params"]["Dense_0"]["kernel"], (20, 8))
  adv2, cls2 = d.apply(params, x.at[5].add(1.0))            # Row 5 lives in pack 1.
  np.testing.assert_array_equal(np.asarray(adv2)[[0, 2]], np.asarray(adv)[[0, 2]])
  assert not np.allclose(adv2[1], adv[1])
  np.testing.assert_array_equal(cls2[:4], cls[:4])
  with pytest.raises(ValueError, match="multiple of pac"):
    d.apply(params, x[:10])
  # pac = 1 keeps the plain per-row discriminator's parameter shapes.
  plain = gan_lib.TabularDiscriminator(2, (8,)).init(jax.random.key(1), x[:1])
  chex.assert_trees_all_equal_shapes(
      plain, gan_lib.TabularDiscriminator(2, (8,), 1).init(jax.random.key(1), x[:1]))


def test_gradient_penalty_closed_forms():
  real = jax.random.normal(jax.random.key(0), (8, 3))
  fake = jax.random.normal(jax.random.key(1), (8, 3))
  w = jnp.array([0.5, -1.0, 2.0, 0.0, 1.0, 3.0])            # Linear critic on packs of 2 rows.
  linear = lambda x: x.reshape(4, 6) @ w
  gp = gan_lib.gradient_penalty(linear, real, fake, jax.random.key(2), pac=2)
  np.testing.assert_allclose(gp, (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)
  unit = lambda x: x.reshape(4, 6) @ (w / jnp.linalg.norm(w))
  np.testing.assert_allclose(gan_lib.gradient_penalty(unit, real, fake, jax.random.key(2), 2), 0.0,
                             atol=1e-10)
  # Quadratic critic 0.5 ||pack||^2 with real = fake: x_hat = real whatever alpha, grad = the pack.
  quad = lambda x: 0.5 * jnp.sum(x.reshape(4, 6) ** 2, axis=-1)
  expected = np.mean((np.linalg.norm(np.asarray(real).reshape(4, 6), axis=1) - 1.0) ** 2)
  np.testing.assert_allclose(gan_lib.gradient_penalty(quad, real, real, jax.random.key(3), 2),
                             expected, rtol=1e-5)


def test_category_sampler_follows_the_log_frequency_rule():
  counts_a, counts_b = np.array([700, 250, 50]), np.array([600, 300, 100, 0])
  x = _rows(counts_a, counts_b)
  sampler = gan_lib.CategorySampler(x, SPEC)
  rows, cond = sampler.sample(np.random.default_rng(0), 200_000)
  chex.assert_shape(cond, (200_000, 7))
  np.testing.assert_array_equal(cond.sum(1), 1.0)
  freq = cond.mean(0)
  np.testing.assert_allclose([freq[:3].sum(), freq[3:].sum()], [0.5, 0.5], atol=0.01)  # Columns.
  expected = np.concatenate([0.5 * np.log1p(counts_a) / np.log1p(counts_a).sum(),
                             0.5 * np.log1p(counts_b) / np.log1p(counts_b).sum()])
  np.testing.assert_allclose(freq, expected, atol=0.006)
  assert freq[6] == 0.0                                      # Absent category never asked for.
  # Every drawn real row has the conditioned category.
  cats = x[rows, 2:]
  np.testing.assert_array_equal((cats * cond).sum(1), 1.0)
  # Plain frequencies with log_frequency=False.
  _, cond = gan_lib.CategorySampler(x, SPEC, log_frequency=False).sample(
      np.random.default_rng(1), 200_000)
  np.testing.assert_allclose(cond.mean(0)[:3], 0.5 * counts_a / counts_a.sum(), atol=0.006)
  # `row_conditions` conditions on a category the given row has.
  rows = np.arange(50)
  orig = gan_lib.row_conditions(np.random.default_rng(2), x[rows], SPEC)
  np.testing.assert_array_equal((x[rows, 2:] * orig).sum(1), 1.0)


def test_cond_penalty_is_the_chosen_blocks_cross_entropy():
  gan = gan_lib.tabular_gan(SPEC, 2, 4, (8,), conditional=True)
  assert gan.cond_dim == 7
  raw = jax.random.normal(jax.random.key(0), (3, SPEC.dim))
  cond = np.zeros((3, 7), np.float32)
  cond[0, 1] = cond[1, 3] = cond[2, 6] = 1.0                 # Block A cat 1, block B cat 0, cat 3.
  logp_a = jax.nn.log_softmax(raw[:, 2:5])
  logp_b = jax.nn.log_softmax(raw[:, 5:9])
  expected = -(logp_a[0, 1] + logp_b[1, 0] + logp_b[2, 3]) / 3
  np.testing.assert_allclose(gan_lib.cond_penalty(gan, raw, jnp.asarray(cond)), expected,
                             rtol=1e-5)


def test_wgan_gp_pac_conditional_gan_trains_and_samples():
  """All three options at once: the jitted step is finite and pure, samples are valid rows."""
  x = _rows([60, 30, 30], [40, 40, 20, 20])
  y = (x[:, 0] > 0).astype(np.int32)
  gan = gan_lib.tabular_gan(SPEC, 2, 4, (16,), pac=4, conditional=True, loss="wgan_gp",
                            straight_through=True, beta2=0.9)
  state = gan_lib.init_state(gan, jax.random.key(0))
  idx, cond = gan_lib.CategorySampler(x, SPEC).sample(np.random.default_rng(0), 16)
  batch = (jnp.asarray(x[idx]), jnp.asarray(y[idx]), jnp.asarray(cond))
  step = jax.jit(chex.assert_max_traces(lambda s, b, r: gan_lib.gan_step(gan, s, b, r), n=1))
  s1, m1 = step(state, batch, jax.random.key(1))
  s2, m2 = step(state, batch, jax.random.key(1))
  chex.assert_trees_all_equal((s1, m1), (s2, m2))
  assert np.isfinite(m1["d_loss"]) and np.isfinite(m1["g_loss"])
  state = gan_lib.train(gan, x, y, num_steps=5, batch_size=16, seed=0)
  rows = np.arange(40)
  samples = gan_lib.sample(gan, state.g_params, y[rows], seed=1,
                           cond=gan_lib.row_conditions(np.random.default_rng(0), x[rows], SPEC))
  chex.assert_shape(samples, (40, SPEC.dim))
  for start, stop in SPEC.blocks():
    np.testing.assert_array_equal(samples[:, start:stop].sum(1), 1.0)
  with pytest.raises(ValueError, match="cond"):
    gan_lib.sample(gan, state.g_params, y[rows], seed=1)
  with pytest.raises(ValueError, match="pack size"):
    gan_lib.train(gan, x, y, 1, 18, 0)
  with pytest.raises(ValueError, match="wgan_gp"):
    gan_lib.tabular_gan(SPEC, loss="hinge")


def test_tabular_experiment_smoke_with_all_options(data_dir):
  """The :smoke tabular experiment runs with PacGAN + WGAN-GP + CTGAN conditioning and OOB labels."""
  path = os.path.join(os.path.dirname(__file__), "..", "configs", "gan_compression_tabular.py")
  config = config_lib.load_config(f"{path}:smoke").tabular
  config.gan.pac, config.gan.conditional, config.gan.loss = 4, True, "wgan_gp"
  config.teacher_labels = "oob"
  config.transfer_sets = ("train", "gan", "train+gan")
  config.mlp.num_steps = 0
  result = tabular_experiment.run_seed("adult", config, seed=0, data_dir=data_dir)
  assert set(result) == {"teacher", "train", "gan", "train+gan"}
  assert all(np.isfinite(v) for v in result["train+gan"].values())
