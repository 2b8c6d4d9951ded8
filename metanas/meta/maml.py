"""MAML (Finn et al. 2017) as pure functions of parameter pytrees.

Everything here is written for ONE task; `meta_loss` batches tasks with `jax.vmap` in one place.
The inner loop is a `lax.scan`, so compile time does not grow with the number of inner steps.

Meta-parameters are `{"model": params, "inner_lr": lrs}` where `lrs` mirrors `params` with one
learning rate per leaf (per layer tensor) and per inner step, each leaf of shape [num_steps]
(Meta-SGD / MAML++ style, Li et al. 2017; Antoniou et al. 2019). With a fixed inner learning rate the
rates are simply excluded from the meta-gradient.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

Params = Any
# loss_fn(params, x, y) -> (scalar loss, dict of scalar metrics)
LossFn = Callable[[Params, jax.Array, jax.Array], tuple[jax.Array, dict]]


def init_inner_lrs(params: Params, num_steps: int, lr: float) -> Params:
  """Per-leaf, per-step inner learning rates, each leaf [num_steps], all `lr`."""
  return jax.tree.map(lambda _: jnp.full((num_steps,), lr, jnp.float32), params)


def _lrs_at(lrs: Params, num_steps: int) -> Params:
  """Rates for `num_steps` steps; steps beyond the learnt ones reuse the last learnt rate."""
  def take(l):
    idx = jnp.minimum(jnp.arange(num_steps), l.shape[0] - 1)
    return l[idx]
  return jax.tree.map(take, lrs)


def adapt(params: Params, lrs: Params, loss_fn: LossFn, x: jax.Array, y: jax.Array,
          num_steps: int, first_order: bool = False) -> Params:
  """`num_steps` steps of gradient descent on one task's support set (MAML eq. 1).

  Args:
    params: initial (meta-learnt) parameters.
    lrs: inner learning rates, leaves [>=1] (see `init_inner_lrs`).
    loss_fn: `(params, x, y) -> (loss, metrics)`.
    x, y: the support set, [n_support, ...].
    num_steps: number of inner steps (static).
    first_order: drop second-order terms (FOMAML): the inner gradient is a constant for the
      meta-gradient.

  Returns:
    Adapted parameters theta'.
  """
  if num_steps == 0:
    return params
  grad_fn = jax.grad(lambda p: loss_fn(p, x, y)[0])

  def step(p, lr):
    g = grad_fn(p)
    if first_order:
      g = jax.lax.stop_gradient(g)
    return jax.tree.map(lambda w, gw, a: w - a * gw, p, g, lr), None

  params, _ = jax.lax.scan(step, params, _lrs_at(lrs, num_steps))
  return params


def task_loss(meta_params: dict, task: dict, loss_fn: LossFn, num_steps: int,
              first_order: bool = False, learn_inner_lr: bool = False) -> tuple[jax.Array, dict]:
  """Query loss of one task after adapting on its support set.

  Args:
    meta_params: {"model": params, "inner_lr": lrs}.
    task: dict with support_x, support_y, query_x, query_y (no task axis).

  Returns:
    (query loss, metrics) where metrics carries the query metrics after adaptation and the
    support loss before it ("pre_loss").
  """
  lrs = meta_params["inner_lr"]
  if not learn_inner_lr:
    lrs = jax.lax.stop_gradient(lrs)
  adapted = adapt(meta_params["model"], lrs, loss_fn, task["support_x"], task["support_y"],
                  num_steps, first_order)
  loss, metrics = loss_fn(adapted, task["query_x"], task["query_y"])
  return loss, metrics


def meta_loss(meta_params: dict, tasks: dict, loss_fn: LossFn, num_steps: int,
              first_order: bool = False, learn_inner_lr: bool = False,
              task_weights: jax.Array | None = None) -> tuple[jax.Array, dict]:
  """Weighted mean over tasks of the post-adaptation query loss (MAML eq. 3).

  Args:
    tasks: dict of arrays with a leading [num_tasks] axis.
    task_weights: optional [num_tasks] non-negative weights (alpha-MAML); the loss is
      sum_i w_i L_i / sum_i w_i. Uniform when None.

  Returns:
    (scalar loss, metrics averaged over tasks with the same weights).
  """
  fn = lambda t: task_loss(meta_params, t, loss_fn, num_steps, first_order, learn_inner_lr)
  losses, metrics = jax.vmap(fn)(tasks)
  n = losses.shape[0]
  w = jnp.ones((n,), losses.dtype) if task_weights is None else task_weights.astype(losses.dtype)
  w = w / jnp.sum(w)
  return jnp.sum(w * losses), jax.tree.map(lambda m: jnp.sum(w * m), metrics)


def meta_value_and_grad(meta_params: dict, tasks: dict, loss_fn: LossFn, num_steps: int,
                        first_order: bool = False, learn_inner_lr: bool = False,
                        task_weights: jax.Array | None = None,
                        task_chunk: int = 0) -> tuple[tuple[jax.Array, dict], dict]:
  """`jax.value_and_grad(meta_loss, has_aux=True)`, optionally over chunks of tasks.

  With `task_chunk` = 0 (or >= the number of tasks) all tasks are vmapped at once, exactly
  `value_and_grad(meta_loss)`. With `task_chunk` = c the tasks are processed c at a time by a
  `lax.scan` that accumulates the chunks' losses, metrics and meta-gradients (the way a PyTorch
  loop over tasks does). The result is the same (up to float summation order), but each chunk's
  activations are small enough to stay in cache, which is what makes second-order MAML at large
  meta-batch faster on CPU (see experiments/README.md, "Speed"). Unlike `lax.map` over tasks,
  nothing is stored across chunks for a backward pass: each chunk's gradient is finished inside the
  loop.

  Chunk k holds tasks {k, k + n/c, k + 2n/c, ...}: the task axis is reshaped to [c, n/c] so that a
  task axis sharded in contiguous blocks over a mesh stays sharded along the chunk's own axis
  (keep c a multiple of the number of devices).

  Returns:
    ((loss, metrics), grads) as `value_and_grad(meta_loss, has_aux=True)` would.
  """
  n = jax.tree.leaves(tasks)[0].shape[0]
  fn = lambda mp, t: task_loss(mp, t, loss_fn, num_steps, first_order, learn_inner_lr)
  if not task_chunk or task_chunk >= n:
    return jax.value_and_grad(meta_loss, has_aux=True)(
        meta_params, tasks, loss_fn, num_steps, first_order, learn_inner_lr, task_weights)
  if n % task_chunk:
    raise ValueError(f"maml.task_chunk={task_chunk} must divide the meta-batch size {n}.")
  num_chunks = n // task_chunk
  w = jnp.ones((n,), jnp.float32) if task_weights is None else task_weights.astype(jnp.float32)
  w = w / jnp.sum(w)
  split = lambda a: jnp.swapaxes(a.reshape((task_chunk, num_chunks) + a.shape[1:]), 0, 1)
  chunks, chunk_w = jax.tree.map(split, tasks), split(w)

  def chunk_objective(mp, chunk, wc):
    losses, metrics = jax.vmap(lambda t: fn(mp, t))(chunk)
    return jnp.sum(wc * losses), jax.tree.map(lambda m: jnp.sum(wc * m), metrics)

  grad_fn = jax.value_and_grad(chunk_objective, has_aux=True)
  out_shape = jax.eval_shape(grad_fn, meta_params, jax.tree.map(lambda a: a[0], chunks),
                             chunk_w[0])
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)

  def body(acc, xs):
    out = grad_fn(meta_params, *xs)
    return jax.tree.map(jnp.add, acc, out), None

  out, _ = jax.lax.scan(body, zeros, (chunks, chunk_w))
  return out


# Per-task losses for the two problem types of the MAML paper.

def mse_loss(apply_fn: Callable) -> LossFn:
  """Regression: mean squared error. apply_fn(params, x) -> predictions shaped like y."""
  def loss_fn(params, x, y):
    loss = jnp.mean(jnp.square(apply_fn(params, x) - y))
    return loss, {"mse": loss}
  return loss_fn


def cross_entropy_loss(apply_fn: Callable) -> LossFn:
  """Classification: softmax cross-entropy with integer labels, and accuracy."""
  def loss_fn(params, x, y):
    logits = apply_fn(params, x)
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    acc = jnp.mean(jnp.argmax(logits, -1) == y)
    return loss, {"xent": loss, "accuracy": acc}
  return loss_fn
