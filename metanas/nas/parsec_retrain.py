"""Retraining a found architecture from scratch, with one compilation shared by all architectures.

The architecture is a traced input of the jitted train step (`cell_net.apply_child`), so the
PARSEC architecture, the random baselines and the DARTS architecture are all trained by the same
compiled function with the same budget.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas.nas import cell_net
from metanas.nas import cell_space


def make_retrainer(spec: cell_net.NetSpec, num_steps: int, batch_size: int, learning_rate: float,
                   eval_batch: int = 500):
  """Returns `retrain(arch, seed, splits) -> test accuracy` (host function).

  Args:
    spec: network spec (its cell space defines arch).
    num_steps: Adam steps on splits["x_train"] (minibatches drawn with replacement per seed).
    batch_size: training minibatch.
    learning_rate: Adam with cosine decay to 0.
    eval_batch: test images per forward pass (normalisation uses this batch's statistics).
  """
  opt = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))

  def loss_fn(params, arch, x, y):
    return -cell_net.log_likelihood(cell_net.apply_child(spec, params, arch, x), y) / y.shape[0]

  @jax.jit
  def train(params, arch, x_all, y_all, rng):
    opt_state = opt.init(params)

    def body(carry, step_rng):
      params, opt_state = carry
      idx = jax.random.randint(step_rng, (batch_size,), 0, x_all.shape[0])
      loss, g = jax.value_and_grad(loss_fn)(params, arch, x_all[idx], y_all[idx])
      upd, opt_state = opt.update(g, opt_state, params)
      return (optax.apply_updates(params, upd), opt_state), loss

    (params, _), losses = jax.lax.scan(body, (params, opt_state),
                                       jax.random.split(rng, num_steps))
    return params, losses

  @jax.jit
  def correct(params, arch, x, y):
    return jnp.sum(jnp.argmax(cell_net.apply_child(spec, params, arch, x), -1) == y)

  def retrain(arch, seed: int, splits: dict) -> dict:
    arch = jax.tree.map(lambda a: jnp.asarray(a, jnp.int32), arch)
    k_init, k_train = jax.random.split(jax.random.PRNGKey(seed))
    params = cell_net.init(spec, k_init)
    params, losses = train(params, arch, jnp.asarray(splits["x_train"]),
                           jnp.asarray(splits["y_train"]), k_train)
    x, y = splits["x_test"], splits["y_test"]
    n = (x.shape[0] // eval_batch) * eval_batch
    if n == 0:
      raise ValueError(f"Need at least eval_batch={eval_batch} test images, got {x.shape[0]}.")
    hits = sum(int(correct(params, arch, x[i:i + eval_batch], y[i:i + eval_batch]))
               for i in range(0, n, eval_batch))
    return {"test_accuracy": hits / n, "final_train_loss": float(np.mean(np.asarray(losses)[-20:]))}

  return retrain


def random_archs(space: cell_space.CellSpace, num: int, seed: int) -> list[dict]:
  """`num` architectures drawn uniformly from the space (the random-search baseline)."""
  archs = cell_space.sample(space, cell_space.uniform_logits(space), jax.random.PRNGKey(seed), num)
  return [jax.tree.map(lambda a, i=i: np.asarray(a[i]), archs) for i in range(num)]
