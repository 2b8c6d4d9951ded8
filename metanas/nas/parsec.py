"""PARSEC: architecture search by importance-weighted Monte-Carlo empirical Bayes (1902.05116).

The prior p(alpha | pi) over cells (see `cell_space`) has hyperparameters pi learnt by empirical
Bayes. With K samples alpha_k ~ p(alpha | pi) the marginal likelihood is estimated as

  p(y | X, w, pi) ~= 1/K sum_k p(y | X, w, alpha_k)                                  (paper Eq. 3)

and its log has gradients, with self-normalised weights omega_k = softmax_k(log p(y|X,w,alpha_k)),

  grad_w  log p^ = sum_k omega_k grad_w log p(y | X, w, alpha_k)        (train split)
  grad_pi log p^ = sum_k omega_k grad_pi log p(alpha_k | pi)            (validation split; Eq. 4)

The children are evaluated one after another inside `lax.scan` with an online log-sum-exp
accumulation of the weighted gradient, so the memory is that of ONE child and no per-child
gradient is stored. The DARTS baseline (`darts_step`) relaxes the same space: softmax over all ops
(and candidate inputs), all computed, first-order bilevel updates.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from metanas.nas import cell_net
from metanas.nas import cell_space

State = dict  # {"params", "pi", "opt_w", "opt_pi"}


def child_loglik(spec: cell_net.NetSpec, params, arch, x, y) -> jax.Array:
  """log p(y | X, w, alpha) summed over the batch (scalar); x [B, H, W, C], y int[B]."""
  return cell_net.log_likelihood(cell_net.apply_child(spec, params, arch, x), y)


def weighted_grad(spec: cell_net.NetSpec, params, archs, x, y):
  """sum_k omega_k grad_w loglik_k with children run sequentially (memory of one child).

  Args:
    spec: network spec.
    params: shared weights w.
    archs: K architectures, op int[K, E], inp int[K, N, 2].
    x, y: the minibatch [B, H, W, C], int[B].

  Returns:
    (logliks f32[K], grad pytree like params = sum_k omega_k grad loglik_k).
  """
  value_and_grad = jax.value_and_grad(child_loglik, argnums=1)

  def body(carry, arch):
    m, z, g = carry
    l, gk = value_and_grad(spec, params, arch, x, y)
    m_new = jnp.maximum(m, l)
    old, new = jnp.exp(m - m_new), jnp.exp(l - m_new)  # Rescale to the running max (stable).
    g = jax.tree.map(lambda a, b: a * old + b * new, g, gk)
    return (m_new, z * old + new, g), l

  init = (jnp.array(-jnp.inf), jnp.array(0.0), jax.tree.map(jnp.zeros_like, params))
  (_, z, g), logliks = jax.lax.scan(body, init, archs)
  return logliks, jax.tree.map(lambda a: a / z, g)


def children_logliks(spec: cell_net.NetSpec, params, archs, x, y) -> jax.Array:
  """f32[K] log-likelihoods of K children, evaluated one after another (forward only)."""
  return jax.lax.map(lambda a: child_loglik(spec, params, a, x, y), archs)


def pi_gradient(space: cell_space.CellSpace, pi, archs, logliks):
  """Monte-Carlo grad_pi log p^(y | X, w, pi) = sum_k omega_k grad log p(alpha_k | pi) (Eq. 4)."""
  omega = jax.nn.softmax(logliks)

  def surrogate(p):
    lp = jax.vmap(lambda a: cell_space.log_prob(space, p, a))(archs)
    return jnp.sum(jax.lax.stop_gradient(omega) * lp)

  return jax.grad(surrogate)(pi)


def exact_log_marginal(space: cell_space.CellSpace, pi, all_archs, all_logliks) -> jax.Array:
  """log sum_alpha p(alpha | pi) p(y | X, w, alpha) over an enumerated space (ground truth)."""
  lp = jax.vmap(lambda a: cell_space.log_prob(space, pi, a))(all_archs)
  return jax.nn.logsumexp(lp + all_logliks)


def effective_sample_size(logliks: jax.Array) -> jax.Array:
  omega = jax.nn.softmax(logliks)
  return 1.0 / jnp.sum(omega ** 2)


def make_optimizers(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Adam for w and pi (config: w_lr, pi_lr, grad_clip)."""
  w_opt = optax.adam(config.w_lr)
  if config.grad_clip > 0:
    w_opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), w_opt)
  return w_opt, optax.adam(config.pi_lr)


def init_state(spec: cell_net.NetSpec, rng, w_opt, pi_opt, pi=None) -> State:
  """Fresh shared weights; pi uniform unless given (transfer: a pi learnt elsewhere)."""
  params = cell_net.init(spec, rng)
  pi = cell_space.uniform_logits(spec.space) if pi is None else cell_space.mask_logits(
      spec.space, pi)
  return {"params": params, "pi": pi, "opt_w": w_opt.init(params), "opt_pi": pi_opt.init(pi)}


def parsec_step(state: State, batch: dict, rng: jax.Array, *, spec: cell_net.NetSpec,
                w_opt, pi_opt, num_samples: int, cost_weight: float = 0.0,
                op_costs=None) -> tuple[State, dict[str, Any]]:
  """One alternating PARSEC update: w on the train half of `batch`, then pi on the val half.

  Args:
    state: {"params", "pi", "opt_w", "opt_pi"}.
    batch: {"x_train" [B, H, W, C], "y_train" int[B], "x_val", "y_val"}.
    rng: this step's key.
    spec, w_opt, pi_opt: static.
    num_samples: K.
    cost_weight: lambda of the optional cost term lambda * E_pi[MFLOPs] subtracted from the pi
      objective (0 = the paper's plain empirical Bayes).
    op_costs: f32[num_ops] MFLOPs per op (needed when cost_weight > 0).

  Returns:
    (new state, metrics).
  """
  space = spec.space
  k_w, k_pi = jax.random.split(rng)
  # w step (train split).
  archs = cell_space.sample(space, state["pi"], k_w, num_samples)
  logliks, g = weighted_grad(spec, state["params"], archs, batch["x_train"], batch["y_train"])
  b = batch["y_train"].shape[0]
  g = jax.tree.map(lambda t: -t / b, g)  # Minimise -(1/B) log p^.
  upd, opt_w = w_opt.update(g, state["opt_w"], state["params"])
  params = optax.apply_updates(state["params"], upd)
  # pi step (validation split), with the updated w.
  archs_v = cell_space.sample(space, state["pi"], k_pi, num_samples)
  logliks_v = children_logliks(spec, params, archs_v, batch["x_val"], batch["y_val"])
  g_pi = jax.tree.map(jnp.negative, pi_gradient(space, state["pi"], archs_v, logliks_v))
  if cost_weight:
    g_cost = jax.grad(lambda p: cell_space.expected_cost(space, p, op_costs))(state["pi"])
    g_pi = jax.tree.map(lambda a, c: a + cost_weight * c, g_pi, g_cost)
  upd_pi, opt_pi = pi_opt.update(g_pi, state["opt_pi"], state["pi"])
  pi = cell_space.mask_logits(space, optax.apply_updates(state["pi"], upd_pi))
  log_k = jnp.log(num_samples)
  metrics = {
      "loss": -(jax.nn.logsumexp(logliks) - log_k) / b,
      "val_log_marginal": (jax.nn.logsumexp(logliks_v) - log_k) / batch["y_val"].shape[0],
      "mean_child_nll": -jnp.mean(logliks) / b,
      "ess_train": effective_sample_size(logliks),
      "ess_val": effective_sample_size(logliks_v),
      "entropy": cell_space.entropy(space, pi),
  }
  if op_costs is not None:
    metrics["expected_mflops"] = cell_space.expected_cost(space, pi, op_costs)
  return {"params": params, "pi": pi, "opt_w": opt_w, "opt_pi": opt_pi}, metrics


def mixed_loglik(spec: cell_net.NetSpec, params, logits, x, y) -> jax.Array:
  weights = cell_space.probabilities(spec.space, logits)
  return cell_net.log_likelihood(cell_net.apply_mixed(spec, params, weights, x), y)


def darts_step(state: State, batch: dict, rng: jax.Array, *, spec: cell_net.NetSpec,
               w_opt, pi_opt) -> tuple[State, dict[str, Any]]:
  """First-order DARTS on the same space: w on train, architecture logits on val."""
  del rng
  b = batch["y_train"].shape[0]
  nll = lambda p, a, x, y: -mixed_loglik(spec, p, a, x, y) / y.shape[0]
  loss, g = jax.value_and_grad(nll)(state["params"], state["pi"], batch["x_train"],
                                    batch["y_train"])
  upd, opt_w = w_opt.update(g, state["opt_w"], state["params"])
  params = optax.apply_updates(state["params"], upd)
  val_loss, g_a = jax.value_and_grad(nll, argnums=1)(params, state["pi"], batch["x_val"],
                                                     batch["y_val"])
  upd_a, opt_pi = pi_opt.update(g_a, state["opt_pi"], state["pi"])
  pi = cell_space.mask_logits(spec.space, optax.apply_updates(state["pi"], upd_a))
  del b
  metrics = {"loss": loss, "val_nll": val_loss, "entropy": cell_space.entropy(spec.space, pi)}
  return {"params": params, "pi": pi, "opt_w": opt_w, "opt_pi": opt_pi}, metrics


def warmup_step(state: State, batch: dict, rng: jax.Array, *, spec: cell_net.NetSpec, w_opt,
                method: str) -> tuple[State, dict[str, Any]]:
  """Weight warm-up: one update of the shared w on the train split, architecture logits frozen.

  Before pi is learnt, the shared weights are trained with architectures from the fixed (initial)
  distribution, so that the likelihoods that rank children are not those of untrained convs
  (which favour parameter-free ops; the DARTS-family warm-up). PARSEC: one child alpha ~ p(alpha |
  pi) per step (uniform single-path training; K = 1, so omega = 1). DARTS: the mixed network at
  the current softmax weights. The validation half of `batch` is not used.
  """
  x, y = batch["x_train"], batch["y_train"]
  b = y.shape[0]
  if method == "parsec":
    arch = jax.tree.map(lambda a: a[0], cell_space.sample(spec.space, state["pi"], rng, 1))
    nll = lambda p: -child_loglik(spec, p, arch, x, y) / b
  elif method == "darts":
    nll = lambda p: -mixed_loglik(spec, p, state["pi"], x, y) / b
  else:
    raise ValueError(f"Unknown search method {method!r}; use 'parsec' or 'darts'.")
  loss, g = jax.value_and_grad(nll)(state["params"])
  upd, opt_w = w_opt.update(g, state["opt_w"], state["params"])
  params = optax.apply_updates(state["params"], upd)
  return ({**state, "params": params, "opt_w": opt_w},
          {"loss": loss, "entropy": cell_space.entropy(spec.space, state["pi"])})


def make_step(method: str, spec: cell_net.NetSpec, w_opt, pi_opt, num_samples: int,
              cost_weight: float = 0.0, op_costs=None):
  """The pure step for `train.Task`: method "parsec" or "darts"."""
  if method == "parsec":
    costs = None if op_costs is None else jnp.asarray(op_costs)
    return functools.partial(parsec_step, spec=spec, w_opt=w_opt, pi_opt=pi_opt,
                             num_samples=num_samples, cost_weight=cost_weight, op_costs=costs)
  if method == "darts":
    return functools.partial(darts_step, spec=spec, w_opt=w_opt, pi_opt=pi_opt)
  raise ValueError(f"Unknown search method {method!r}; use 'parsec' or 'darts'.")
