"""Training schedules of GPPVAE and its baselines (arXiv 1810.11738, Sec. 4).

- `train_iid`: a VAE (or, with a condition, a CVAE) with the i.i.d. N(0, I) prior, minibatch Adam.
- `fit_kernel`: GP kernel parameters by Adam on the GP term of the ELBO with the VAE frozen
  (GPPVAE-dis), or on fixed encoder means (type-II maximum likelihood; the LIGP baseline).
- `train_joint`: everything jointly, one Adam step per pass over the data with the gradient from
  low-memory stochastic backprop (`gppvae.lowmem_grad`); GPPVAE-joint.

Each returns the trained parameters and a list of per-epoch metric dicts; `log_fn(step, metrics)`
is called as training goes (the experiment passes a MetricWriter). Every epoch is one jitted call.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas.gp import gppvae
from metanas.gp import kernels
from metanas.gp import vae

LogFn = Callable[[int, dict], None]


def _check_finite(name: str, value: float, step: int) -> None:
  if not np.isfinite(value):
    raise FloatingPointError(f"{name} became {value} at step {step}; lower the learning rate "
                             "(--config.<model>.learning_rate) or raise kernel.noise_floor.")


def train_iid(nets: vae.Networks, params: dict, images: jax.Array, cond: jax.Array | None,
              num_epochs: int, batch_size: int, learning_rate: float, rng: jax.Array,
              log_fn: LogFn | None = None) -> tuple[dict, list[dict]]:
  """VAE / CVAE training: minibatch Adam on -ELBO per image (analytic KL to N(0, I)).

  Args:
    nets: networks (cond_dim > 0 for a CVAE).
    params: initial parameters.
    images: [N, H, W] training images.
    cond: [N, C] conditions or None.
    num_epochs, batch_size, learning_rate: schedule (the last partial batch is dropped).
    rng: key; epoch e uses fold_in(rng, e).
    log_fn: optional per-epoch logger.
  """
  n = images.shape[0]
  batch_size = min(batch_size, n)
  num_batches = n // batch_size
  tx = optax.adam(learning_rate)
  cond_arr = jnp.zeros((n, 0)) if cond is None else cond

  def loss_fn(p, x, c, e):
    return -jnp.mean(vae.iid_elbo(nets, p, x, e, c if cond is not None else None))

  @jax.jit
  def epoch(state, key, images, cond_arr):  # Data as arguments, not baked-in constants.
    perm = jax.random.permutation(key, n)[:num_batches * batch_size].reshape(num_batches, -1)

    def step(st, inp):
      i, idx = inp
      p, o = st
      e = jax.random.normal(jax.random.fold_in(key, i), (batch_size, nets.latent_dim))
      loss, g = jax.value_and_grad(loss_fn)(p, images[idx], cond_arr[idx], e)
      upd, o = tx.update(g, o, p)
      return (optax.apply_updates(p, upd), o), loss

    state, losses = jax.lax.scan(step, state, (jnp.arange(num_batches), perm))
    return state, jnp.mean(losses)

  state = (params, tx.init(params))
  history = []
  for e in range(num_epochs):
    state, loss = epoch(state, jax.random.fold_in(rng, e), images, cond_arr)
    loss = float(loss)
    _check_finite("VAE loss", loss, e)
    history.append({"epoch": e, "loss": loss})
    if log_fn:
      log_fn(e, {"loss": loss})
  return state[0], history


def fit_kernel(spec: kernels.KernelSpec, kparams: dict, mu: jax.Array, logvar: jax.Array | None,
               obj: jax.Array, view: jax.Array, num_steps: int, learning_rate: float,
               rng: jax.Array, log_fn: LogFn | None = None, log_every: int = 100):
  """Kernel parameters maximising E_q[log p_GP(Z)] for a frozen encoder (GPPVAE-dis).

  With `logvar` given, each step draws Z = mu + exp(logvar / 2) * eps (the GP term of the ELBO,
  the only part that depends on the kernel); with `logvar=None`, Z = mu (type-II ML on the encoder
  means). Full batch; O(N R^2) per step.
  """
  n = mu.shape[0]
  tx = optax.adam(learning_rate)

  def loss_fn(k, key, mu, logvar, obj, view):
    z = mu if logvar is None else mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
    return -gppvae.gp_loglik(spec, k, z, obj, view) / n

  @jax.jit
  def chunk(state, start, mu, logvar, obj, view):
    def step(st, i):
      k, o = st
      loss, g = jax.value_and_grad(loss_fn)(k, jax.random.fold_in(rng, i), mu, logvar, obj, view)
      upd, o = tx.update(g, o, k)
      return (optax.apply_updates(k, upd), o), loss
    state, losses = jax.lax.scan(step, state, start + jnp.arange(log_every))
    return state, losses[-1]

  state = (kparams, tx.init(kparams))
  history = []
  for start in range(0, num_steps, log_every):
    state, loss = chunk(state, start, mu, logvar, obj, view)
    loss = float(loss)
    _check_finite("GP loss", loss, start)
    history.append({"step": start + log_every, "gp_loss": loss})
    if log_fn:
      log_fn(start + log_every, {"gp_loss": loss})
  return state[0], history


def train_joint(nets: vae.Networks, spec: kernels.KernelSpec, params: dict, kparams: dict,
                images: jax.Array, obj: jax.Array, view: jax.Array, num_epochs: int,
                batch_size: int, learning_rate: float, rng: jax.Array,
                log_fn: LogFn | None = None):
  """GPPVAE-joint: one Adam step per full pass, gradient by low-memory stochastic backprop."""
  n = images.shape[0]
  tx = optax.adam(learning_rate)

  @jax.jit
  def step(state, key, images, obj, view):
    p, k, o = state
    eps = jax.random.normal(key, (n, nets.latent_dim))
    _, (gp_, gk), metrics = gppvae.lowmem_grad(nets, spec, p, k, images, obj, view, eps,
                                               batch_size)
    upd, o = tx.update((gp_, gk), o, (p, k))
    p, k = optax.apply_updates((p, k), upd)
    return (p, k, o), metrics

  state = (params, kparams, tx.init((params, kparams)))
  history = []
  for e in range(num_epochs):
    state, metrics = step(state, jax.random.fold_in(rng, e), images, obj, view)
    metrics = {k: float(v) for k, v in metrics.items()}
    _check_finite("GPPVAE loss", metrics["loss"], e)
    history.append(dict(epoch=e, **metrics))
    if log_fn:
      log_fn(e, metrics)
  return state[0], state[1], history
