"""Supervised training of a layered network and end-to-end distillation fine-tuning (HANT Sec. 3.4).

Fine-tuning minimises  (1 - a) * CE(y, student) + a * T^2 * KL(softmax(teacher / T) || softmax(
student / T)), the usual knowledge-distillation loss, with the teacher frozen.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas.hant import network


def _kd_loss(logits, labels, teacher_logits, alpha, temperature):
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  if teacher_logits is None or alpha == 0.0:
    return jnp.mean(ce)
  t = temperature
  kl = optax.kl_divergence(jax.nn.log_softmax(logits / t), jax.nn.softmax(teacher_logits / t))
  return jnp.mean((1.0 - alpha) * ce + alpha * t * t * kl)


def kd_finetune(arch: network.Arch, ops: tuple, params: dict, teacher_params: dict,
                images: np.ndarray, labels: np.ndarray, cfg, rng: jax.Array,
                steps: int | None = None, batch_size: int | None = None) -> dict:
  """Fine-tunes the student `ops` end to end with distillation from the teacher.

  The teacher is `(arch, arch.teacher_ops, teacher_params)`; `cfg` has steps, batch_size,
  learning_rate, alpha and temperature (`steps` / `batch_size` override the config's). The teacher's
  own ops, or zero steps, return `params` unchanged.
  """
  steps = cfg.steps if steps is None else steps
  if ops == arch.teacher_ops or steps <= 0:
    return params
  params, _ = train(arch, ops, params, images, labels, steps,
                    cfg.batch_size if batch_size is None else batch_size, cfg.learning_rate, rng,
                    teacher=(arch, arch.teacher_ops, teacher_params), alpha=cfg.alpha,
                    temperature=cfg.temperature)
  return params


def train(arch: network.Arch, ops: tuple, params: dict, images: np.ndarray, labels: np.ndarray,
          steps: int, batch_size: int, learning_rate: float, rng: jax.Array,
          teacher: tuple | None = None, alpha: float = 0.0, temperature: float = 1.0,
          impl: str = "fast", log: Callable | None = None) -> tuple[dict, list]:
  """Adam (cosine decay) on minibatches; with `teacher=(arch, ops, params)` adds distillation.

  Args:
    images: [N, hw, hw, c] float32; labels: [N] int.
    steps, batch_size, learning_rate: the schedule.
    rng: PRNG key (minibatch indices are `fold_in(rng, step)`).
    teacher, alpha, temperature: knowledge distillation (alpha=0: plain cross-entropy).
    impl: conv lowering for training ("fast" is quickest on CPU).
    log: optional callable(step, metrics).

  Returns:
    (trained params, list of (step, loss)).
  """
  tx = optax.adamw(optax.cosine_decay_schedule(learning_rate, max(steps, 1)), weight_decay=1e-4)
  opt_state = tx.init(params)
  x_all, y_all = jnp.asarray(images), jnp.asarray(labels)

  def loss_fn(p, xb, yb):
    t_logits = None
    if teacher is not None:
      t_arch, t_ops, t_params = teacher
      t_logits = jax.lax.stop_gradient(network.apply(t_arch, t_ops, t_params, xb, "lax"))
    return _kd_loss(network.apply(arch, ops, p, xb, impl), yb, t_logits, alpha, temperature)

  @jax.jit  # The data are arguments, not closed-over constants (XLA would embed and fold them).
  def step(p, opt_state, x_all, y_all, idx):
    loss, grads = jax.value_and_grad(loss_fn)(p, x_all[idx], y_all[idx])
    updates, opt_state = tx.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state, loss

  history = []
  for t in range(steps):
    idx = jax.random.randint(jax.random.fold_in(rng, t), (batch_size,), 0, x_all.shape[0])
    params, opt_state, loss = step(params, opt_state, x_all, y_all, idx)
    if t % max(steps // 10, 1) == 0 or t == steps - 1:
      history.append((t, float(loss)))
      if log:
        log(t, {"loss": float(loss)})
  return params, history


def evaluate(arch: network.Arch, ops: tuple, params: dict, images: np.ndarray,
             labels: np.ndarray, chunk: int = 1000) -> dict:
  """Accuracy and mean cross-entropy on [N, hw, hw, c] images."""
  fn = jax.jit(lambda p, x: network.apply(arch, ops, p, x, "lax"))
  correct, loss = 0.0, 0.0
  for s in range(0, len(images), chunk):
    logits = fn(params, jnp.asarray(images[s:s + chunk]))
    y = jnp.asarray(labels[s:s + chunk])
    correct += float(jnp.sum(jnp.argmax(logits, -1) == y))
    loss += float(jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, y)))
  return {"acc": correct / len(images), "loss": loss / len(images)}
