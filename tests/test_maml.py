"""MAML core: meta-gradients against finite differences, inner loop against manual SGD, vmap vs loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import chex

from metanas.data import sinusoid
from metanas.meta import maml
from metanas.models import maml_nets

jax.config.update("jax_enable_x64", False)


def _setup(num_tasks=3, k=4, seed=0):
  model = maml_nets.MLP(hidden=(5,), out=1)
  params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, 1)))
  tasks = sinusoid.sample_tasks(np.random.default_rng(seed), num_tasks, k, k)
  return model, params, jax.tree.map(jnp.asarray, tasks)


def _manual_sgd(params, loss_fn, x, y, lrs):
  """Plain Python-loop gradient descent, one step per learning rate in `lrs`."""
  for lr in lrs:
    g = jax.grad(lambda p: loss_fn(p, x, y)[0])(params)
    params = jax.tree.map(lambda w, gw: w - lr * gw, params, g)
  return params


def _to64(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


@pytest.mark.parametrize("first_order", [False, True])
def test_meta_gradient_matches_finite_differences(first_order):
  """Second-order meta-gradient == central differences of the meta-loss; FOMAML == its formula."""
  with jax.enable_x64(True):
    model, params, tasks = _setup()
    params, tasks = _to64(params), _to64(tasks)
    loss_fn = maml.mse_loss(model.apply)
    lrs = maml.init_inner_lrs(params, 2, 0.05)
    meta = {"model": params, "inner_lr": lrs}
    f = jax.jit(
        lambda m: maml.meta_loss(m, tasks, loss_fn, num_steps=2, first_order=first_order)[0])
    grads = jax.grad(f)(meta)["model"]
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    if first_order:
      # FOMAML: gradient of the query loss at the adapted parameters, averaged over tasks.
      def fo(t):
        adapted = maml.adapt(params, lrs, loss_fn, t["support_x"], t["support_y"], 2)
        return jax.grad(lambda p: loss_fn(p, t["query_x"], t["query_y"])[0])(adapted)
      expected = jax.tree.map(lambda g: g.mean(0), jax.vmap(fo)(tasks))
      chex.assert_trees_all_close(grads, expected, rtol=1e-10, atol=1e-12)
    else:
      eps = 1e-6
      fd = np.zeros_like(flat)
      for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = eps
        fd[i] = (f({"model": unravel(flat + e), "inner_lr": lrs}) -
                 f({"model": unravel(flat - e), "inner_lr": lrs})) / (2 * eps)
      np.testing.assert_allclose(jax.flatten_util.ravel_pytree(grads)[0], fd, rtol=1e-5,
                                 atol=1e-8)


def test_first_and_second_order_differ():
  model, params, tasks = _setup()
  loss_fn = maml.mse_loss(model.apply)
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.1)}
  g2 = jax.grad(lambda m: maml.meta_loss(m, tasks, loss_fn, 1)[0])(meta)["model"]
  g1 = jax.grad(lambda m: maml.meta_loss(m, tasks, loss_fn, 1, first_order=True)[0])(meta)["model"]
  diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), g1, g2)
  assert max(jax.tree.leaves(diff)) > 1e-4


@pytest.mark.parametrize("k", [1, 3])
def test_inner_loop_equals_manual_sgd(k):
  model, params, tasks = _setup()
  loss_fn = maml.mse_loss(model.apply)
  x, y = tasks["support_x"][0], tasks["support_y"][0]
  lr = 0.03
  adapted = maml.adapt(params, maml.init_inner_lrs(params, k, lr), loss_fn, x, y, k)
  chex.assert_trees_all_close(adapted, _manual_sgd(params, loss_fn, x, y, [lr] * k), rtol=1e-5,
                              atol=1e-6)


def test_per_step_learning_rates_and_extra_eval_steps():
  """Per-step rates are used in order; steps beyond the learnt ones reuse the last rate."""
  model, params, tasks = _setup()
  loss_fn = maml.mse_loss(model.apply)
  x, y = tasks["support_x"][0], tasks["support_y"][0]
  lrs = jax.tree.map(lambda _: jnp.array([0.01, 0.05]), params)
  adapted = maml.adapt(params, lrs, loss_fn, x, y, 3)
  chex.assert_trees_all_close(adapted, _manual_sgd(params, loss_fn, x, y, [0.01, 0.05, 0.05]),
                              rtol=1e-5, atol=1e-6)


def test_learnable_inner_lr_gets_gradient_only_when_enabled():
  model, params, tasks = _setup()
  loss_fn = maml.mse_loss(model.apply)
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.1)}
  for learn in (False, True):
    g = jax.grad(lambda m: maml.meta_loss(m, tasks, loss_fn, 1, learn_inner_lr=learn)[0])(meta)
    norm = float(sum(jnp.abs(l).sum() for l in jax.tree.leaves(g["inner_lr"])))
    assert (norm > 0) == learn


def test_vmapped_meta_loss_equals_python_loop_with_weights():
  model, params, tasks = _setup(num_tasks=4)
  loss_fn = maml.mse_loss(model.apply)
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 2, 0.02)}
  w = jnp.array([0.1, 0.2, 0.3, 0.4])
  loss, metrics = maml.meta_loss(meta, tasks, loss_fn, 2, task_weights=w)
  per_task = [maml.task_loss(meta, jax.tree.map(lambda a: a[i], tasks), loss_fn, 2)[0]
              for i in range(4)]
  np.testing.assert_allclose(loss, sum(wi * li for wi, li in zip(w, per_task)) / w.sum(),
                             rtol=1e-5)
  np.testing.assert_allclose(metrics["mse"], loss, rtol=1e-6)
  uniform, _ = maml.meta_loss(meta, tasks, loss_fn, 2)
  np.testing.assert_allclose(uniform, np.mean(per_task), rtol=1e-5)


@pytest.mark.parametrize("chunk", [1, 2])
def test_chunked_meta_gradient_equals_vmapped(chunk):
  """Tasks processed `chunk` at a time with accumulated gradients == all tasks vmapped at once."""
  model, params, tasks = _setup(num_tasks=4)
  loss_fn = maml.mse_loss(model.apply)
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 2, 0.02)}
  w = jnp.array([0.4, 0.1, 0.3, 0.2])
  kw = dict(loss_fn=loss_fn, num_steps=2, learn_inner_lr=True, task_weights=w)
  (loss, metrics), grads = jax.value_and_grad(maml.meta_loss, has_aux=True)(meta, tasks, **kw)
  (closs, cmetrics), cgrads = jax.jit(
      lambda m, t: maml.meta_value_and_grad(m, t, task_chunk=chunk, **kw))(meta, tasks)
  np.testing.assert_allclose(closs, loss, rtol=1e-5)
  np.testing.assert_allclose(cmetrics["mse"], metrics["mse"], rtol=1e-5)
  chex.assert_trees_all_close(cgrads, grads, rtol=1e-4, atol=1e-6)
  assert float(optax_norm(grads["inner_lr"])) > 0  # The inner rates really get a gradient.
  with pytest.raises(ValueError, match="task_chunk=3 must divide"):
    maml.meta_value_and_grad(meta, tasks, task_chunk=3, **kw)


def optax_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def test_inner_loop_compiles_once_for_any_step_count():
  """lax.scan: one trace per static step count, not per step."""
  model, params, tasks = _setup()
  loss_fn = maml.mse_loss(model.apply)
  x, y = tasks["support_x"][0], tasks["support_y"][0]

  @jax.jit
  @chex.assert_max_traces(n=1)
  def f(p):
    return maml.adapt(p, maml.init_inner_lrs(p, 50, 0.01), loss_fn, x, y, 50)

  f(params)
  f(jax.tree.map(lambda a: a + 1.0, params))


def test_cosine_meta_schedule_anneals_to_zero():
  """optim.schedule="cosine" (the Omniglot :cpu default) decays Adam's rate to 0 at the last step."""
  import optax  # pylint: disable=g-import-not-at-top
  from ml_collections import config_dict  # pylint: disable=g-import-not-at-top
  from metanas.meta import experiment  # pylint: disable=g-import-not-at-top
  params = {"w": jnp.ones((3,))}
  grads = {"w": jnp.ones((3,))}
  deltas = {}
  for schedule in ("constant", "cosine"):
    cfg = config_dict.ConfigDict(dict(learning_rate=0.1, grad_clip=0.0, schedule=schedule))
    opt = experiment.build_optimizer(cfg, num_steps=10)
    state = opt.init(params)
    steps = []
    for _ in range(11):
      updates, state = opt.update(grads, state, params)
      steps.append(float(jnp.abs(updates["w"][0])))
    deltas[schedule] = steps
  np.testing.assert_allclose(deltas["constant"], 0.1, rtol=1e-3)  # Adam step = lr for constant grads.
  assert deltas["cosine"][0] == pytest.approx(0.1, rel=1e-3)
  assert deltas["cosine"][5] == pytest.approx(0.05, rel=1e-2) and deltas["cosine"][10] < 1e-6
  with pytest.raises(ValueError, match="Unknown optim.schedule 'linear'"):
    experiment.build_optimizer(config_dict.ConfigDict(
        dict(learning_rate=0.1, grad_clip=0.0, schedule="linear")), num_steps=10)
