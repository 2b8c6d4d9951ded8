"""Tasks sharded over 8 (fake) devices give the single-device meta-gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chex

from metanas import parallel
from metanas.data import sinusoid
from metanas.meta import maml
from metanas.models import maml_nets


def test_eight_devices_visible():
  assert len(jax.devices()) == 8, "tests/conftest.py should fake 8 CPU devices"


def test_sharded_meta_gradient_equals_single_device():
  model = maml_nets.MLP(hidden=(16, 16), out=1)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1)))
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 2, 0.01)}
  tasks = sinusoid.sample_tasks(np.random.default_rng(0), 16, 5, 5)
  loss_fn = maml.mse_loss(model.apply)
  grad_fn = jax.jit(jax.grad(lambda m, t: maml.meta_loss(m, t, loss_fn, 2, learn_inner_lr=True)[0]))

  single = parallel.make_mesh(1)
  g1 = grad_fn(parallel.replicate(meta, single), parallel.shard_batch(tasks, single))
  mesh = parallel.make_mesh(8)
  t8 = parallel.shard_batch(tasks, mesh)
  assert len(t8["support_x"].sharding.device_set) == 8
  assert t8["support_x"].addressable_shards[0].data.shape[0] == 2
  g8 = grad_fn(parallel.replicate(meta, mesh), t8)
  chex.assert_trees_all_close(g1, g8, rtol=1e-5, atol=1e-6)
  # Tasks processed 8 at a time (one per device) with accumulated gradients: same gradient.
  chunked = jax.jit(lambda m, t: maml.meta_value_and_grad(m, t, loss_fn, 2, learn_inner_lr=True,
                                                          task_chunk=8)[1])
  chex.assert_trees_all_close(g1, chunked(parallel.replicate(meta, mesh), t8), rtol=1e-5, atol=1e-6)


def test_shard_batch_rejects_indivisible_batch():
  with pytest.raises(ValueError, match="divisible"):
    parallel.shard_batch({"x": np.zeros((6, 2))}, parallel.make_mesh(8))
