"""GPPVAE numerics against ground truth: dense SciPy GP, exact full-batch gradients, PD kernels."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from metanas.data import npz
from metanas.gp import data as gp_data
from metanas.gp import gppvae
from metanas.gp import kernels
from metanas.gp import lowrank
from metanas.gp import vae


def _dense_loglik(k: np.ndarray, z: np.ndarray) -> float:
  """Ground truth: sum over columns of the dense multivariate-normal log-density (float64)."""
  return sum(stats.multivariate_normal(mean=np.zeros(k.shape[0]), cov=k).logpdf(z[:, l])
             for l in range(z.shape[1]))


@pytest.mark.parametrize("n,r", [(30, 6), (12, 20)])  # R < N and R > N (lemma holds for both).
def test_woodbury_loglik_equals_dense(n, r):
  rng = np.random.default_rng(0)
  f = rng.normal(size=(n, r)).astype(np.float32) / np.sqrt(r)
  z = rng.normal(size=(n, 3)).astype(np.float32)
  s_n = 0.3
  got = lowrank.log_likelihood(jnp.asarray(f), jnp.float32(s_n), jnp.asarray(z))
  k = f.astype(np.float64) @ f.T.astype(np.float64) + s_n * np.eye(n)
  np.testing.assert_allclose(float(got), _dense_loglik(k, z.astype(np.float64)), rtol=1e-5)
  # d loglik / dZ = -K^{-1} Z, and the Woodbury solve agrees with a dense solve.
  grad_z = jax.grad(lowrank.log_likelihood, argnums=2)(jnp.asarray(f), jnp.float32(s_n),
                                                        jnp.asarray(z))
  np.testing.assert_allclose(np.asarray(grad_z), -np.linalg.solve(k, z), rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(np.asarray(lowrank.solve(jnp.asarray(f), jnp.float32(s_n),
                                                      jnp.asarray(z))),
                             np.linalg.solve(k, z), rtol=1e-3, atol=1e-4)


def test_posterior_equals_dense_gp_regression():
  rng = np.random.default_rng(1)
  f = rng.normal(size=(25, 5)).astype(np.float32)
  fs = rng.normal(size=(4, 5)).astype(np.float32)
  z = rng.normal(size=(25, 2)).astype(np.float32)
  s_n = 0.5
  mean, var = lowrank.posterior(jnp.asarray(f), jnp.float32(s_n), jnp.asarray(z), jnp.asarray(fs))
  f64, fs64 = f.astype(np.float64), fs.astype(np.float64)
  k = f64 @ f64.T + s_n * np.eye(25)
  k_star = fs64 @ f64.T
  np.testing.assert_allclose(np.asarray(mean), k_star @ np.linalg.solve(k, z), rtol=1e-3,
                             atol=1e-4)
  dense_var = np.diag(fs64 @ fs64.T - k_star @ np.linalg.solve(k, k_star.T))
  np.testing.assert_allclose(np.asarray(var), dense_var, rtol=1e-3, atol=1e-4)


SPECS = [
    kernels.KernelSpec(num_objects=5, num_views=8, view_kernel="periodic", object_dim=3,
                       view_dim=2),
    kernels.KernelSpec(num_objects=5, num_views=8, view_kernel="freeform", object_dim=3,
                       view_dim=4),
    kernels.KernelSpec(num_objects=5, num_views=8, kind="additive"),
]


@pytest.mark.parametrize("spec", SPECS, ids=["periodic", "freeform", "additive"])
def test_kernel_positive_definite_for_random_parameters(spec):
  obj = jnp.asarray(np.repeat(np.arange(5), 8))
  view = jnp.asarray(np.tile(np.arange(8), 5))
  base = kernels.init(spec, jax.random.key(0))
  for seed in range(5):
    # Arbitrary unconstrained values; the last draw drives every scale towards zero.
    leaves, tree = jax.tree.flatten(base)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    params = jax.tree.unflatten(tree, [2.0 * jax.random.normal(k, l.shape) - 10.0 * (seed == 4)
                                       for k, l in zip(keys, leaves)])
    k = np.asarray(kernels.dense(spec, params, obj, view), np.float64)
    np.testing.assert_allclose(k, k.T, atol=1e-5 * np.abs(k).max())
    # The noise floor bounds the spectrum away from 0 (up to float32 rounding of K's entries).
    assert np.linalg.eigvalsh(k).min() >= 0.9 * spec.noise_floor - 1e-6 * np.abs(k).max()
    feats = kernels.features(spec, params, obj, view)
    chex.assert_shape(feats, (40, spec.rank))
    assert np.isfinite(float(lowrank.log_likelihood(feats, kernels.noise(spec, params),
                                                    jnp.ones((40, 2)))))


def test_periodic_view_kernel_is_stationary_on_the_circle():
  spec = SPECS[0]
  params = kernels.init(spec, jax.random.key(3))
  phi = kernels.view_features(spec, params, jnp.arange(8))
  kv = np.asarray(phi @ phi.T)
  # k(v, v') depends only on (v - v') mod V: every row is a rotation of the first.
  for v in range(8):
    np.testing.assert_allclose(kv[v], np.roll(kv[0], v), atol=1e-5)


def test_bad_kernel_spec_is_a_clear_error():
  with pytest.raises(ValueError, match="view kernel"):
    kernels.KernelSpec(num_objects=2, num_views=2, view_kernel="rbf")
  with pytest.raises(ValueError, match="noise_floor"):
    kernels.KernelSpec(num_objects=2, num_views=2, noise_floor=0.0)


@pytest.fixture(scope="module")
def small_problem():
  nets = vae.Networks(image_shape=(6, 6), latent_dim=3, hidden=(16,))
  spec = kernels.KernelSpec(num_objects=4, num_views=5, object_dim=2, view_dim=2)
  rng = np.random.default_rng(0)
  n = 18  # Not a multiple of the batch size: exercises the overlapping last batch.
  obj = jnp.asarray(rng.integers(0, 4, n))
  view = jnp.asarray(rng.integers(0, 5, n))
  images = jnp.asarray(rng.uniform(size=(n, 6, 6)).astype(np.float32))
  eps = jax.random.normal(jax.random.key(1), (n, 3))
  params = vae.init(nets, jax.random.key(2))
  kparams = kernels.init(spec, jax.random.key(3))
  return nets, spec, params, kparams, images, obj, view, eps


@pytest.mark.parametrize("batch_size", [4, 32])  # 32 > N: one batch of all images.
def test_lowmem_gradient_equals_exact_full_elbo_gradient(small_problem, batch_size):
  nets, spec, params, kparams, images, obj, view, eps = small_problem
  loss_ref, grads_ref = jax.jit(gppvae.naive_grad, static_argnums=(0, 1))(
      nets, spec, params, kparams, images, obj, view, eps)
  loss, grads, metrics = jax.jit(gppvae.lowmem_grad, static_argnums=(0, 1, 8))(
      nets, spec, params, kparams, images, obj, view, eps, batch_size)
  np.testing.assert_allclose(float(loss), float(loss_ref), rtol=1e-5)
  np.testing.assert_allclose(float(metrics["gp_term"] + metrics["image_terms"]), -float(loss),
                             rtol=1e-5)
  chex.assert_trees_all_close(grads, grads_ref, rtol=2e-4, atol=1e-6)
  # Not trivially zero: the GP term really reaches the encoder through <dZ, z_batch>.
  enc_norm = sum(float(jnp.sum(g ** 2)) for g in jax.tree.leaves(grads[0]["enc"]))
  assert enc_norm > 1e-8
  # And dropping the surrogate changes the encoder gradient (a naive per-batch gradient is wrong).
  n = images.shape[0]
  no_gp = jax.grad(lambda p: -jnp.sum(vae.per_image_terms(nets, p, images, eps)[0]) / n)(params)
  diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), no_gp["enc"], grads[0]["enc"])
  assert max(jax.tree.leaves(diff)) > 1e-4


def test_full_elbo_gradient_matches_finite_differences(small_problem):
  nets, spec, params, kparams, images, obj, view, eps = small_problem
  with jax.enable_x64(True):
    to64 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), t)
    p64, k64 = to64(params), to64(kparams)
    x64, e64 = jnp.asarray(images, jnp.float64), jnp.asarray(eps, jnp.float64)
    fn = jax.jit(lambda k: gppvae.full_elbo(nets, spec, p64, k, x64, obj, view, e64))
    g = jax.grad(fn)(k64)
    h = 1e-6
    for name in ("raw_noise", "raw_scale"):
      up = dict(k64, **{name: k64[name] + h})
      dn = dict(k64, **{name: k64[name] - h})
      fd = (float(fn(up)) - float(fn(dn))) / (2 * h)
      np.testing.assert_allclose(float(g[name]), fd, rtol=1e-5)


def test_hold_out_split_removes_one_view_and_a_fraction_of_pairs():
  obj = np.repeat(np.arange(40), 16)
  view = np.tile(np.arange(16), 40)
  train, test = gp_data.hold_out(obj, view, heldout_view=5, heldout_fraction=0.25, seed=0)
  assert np.intersect1d(train, test).size == 0 and train.size + test.size == obj.size
  assert not np.any(view[train] == 5) and np.sum(view[test] == 5) == 40
  assert np.sum(view[test] != 5) == round(0.25 * 40 * 15)
  assert set(obj[train]) == set(range(40))
  with pytest.raises(ValueError, match="heldout_view"):
    gp_data.hold_out(obj, view, heldout_view=99, heldout_fraction=0.25, seed=0)
  with pytest.raises(ValueError, match="no training image"):
    gp_data.hold_out(np.arange(4), np.zeros(4, int), heldout_view=0, heldout_fraction=0.5, seed=0)


def test_rotated_mnist_views_are_rotations(data_dir):
  arrays = npz.load("mnist", data_dir)
  ds = gp_data.rotated_mnist(arrays, digit=3, num_objects=3, num_views=4, seed=0)
  chex.assert_shape(ds["images"], (12, 28, 28))
  imgs = ds["images"].reshape(3, 4, 28, 28)
  # View 0 is the digit itself; view 2 (180 degrees) maps the pixel grid onto itself.
  threes = arrays["x_train"][arrays["y_train"] == 3] / 255.0
  for p in range(3):
    assert np.min(np.max(np.abs(threes - imgs[p, 0]), axis=(1, 2))) < 1e-6
    np.testing.assert_allclose(imgs[p, 2], imgs[p, 0][::-1, ::-1], atol=1e-4)
  np.testing.assert_array_equal(ds["obj"], np.repeat(np.arange(3), 4))
  np.testing.assert_array_equal(ds["view"], np.tile(np.arange(4), 3))
