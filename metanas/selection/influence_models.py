"""Candidate models for influence-guided subsampling (Raj et al. 2020, arXiv 2010.10218, Sec. 5).

The candidate family is logistic / softmax regression on a feature map (raw, degree-2 polynomial or
random Fourier features) times an L2 strength, plus one-hidden-layer MLPs times a weight decay.
Candidates that share a structure (feature map, kind, width) differ only in `l2`, which is passed as
a traced scalar so one compiled fit serves the whole L2 grid (vmapped).

Every fit minimises the weighted regularised empirical risk (paper Eq. 1 with weights, Eq. 6)

  L_w(theta) = sum_i w_i * loss(z_i; theta) + (l2 / 2) * ||theta||^2,

where the caller normalises the weights (w_i = 1/n for the plain fit, w_j = 1/(m N p_j) for the
inverse-probability-weighted refit). All parameters, biases included, are penalised so that the
Hessian is positive definite for any `l2 > 0`.
"""

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

Params = Any

FEATURE_MAPS = ("linear", "poly2", "rff")
KINDS = ("linear", "mlp")


@dataclasses.dataclass(frozen=True)
class Structure:
  """What a compiled fit depends on: everything about a candidate except its L2 strength.

  Attributes:
    feature_map: one of FEATURE_MAPS ("linear" = the standardised inputs as they are).
    kind: "linear" (logistic/softmax regression on the features) or "mlp" (one tanh hidden layer).
    hidden: MLP width (0 for linear models).
  """
  feature_map: str
  kind: str
  hidden: int = 0

  def __post_init__(self):
    if self.feature_map not in FEATURE_MAPS:
      raise ValueError(f"Unknown feature map {self.feature_map!r}; choose one of {FEATURE_MAPS}.")
    if self.kind not in KINDS:
      raise ValueError(f"Unknown model kind {self.kind!r}; choose one of {KINDS}.")
    if (self.kind == "mlp") != (self.hidden > 0):
      raise ValueError(f"hidden={self.hidden} with kind={self.kind!r}: MLPs need hidden > 0 and "
                       "linear models hidden = 0.")

  @property
  def name(self) -> str:
    if self.kind == "mlp":
      return f"mlp{self.hidden}-{self.feature_map}"
    return f"logreg-{self.feature_map}"


@dataclasses.dataclass(frozen=True)
class Candidate:
  structure: Structure
  l2: float

  @property
  def name(self) -> str:
    return f"{self.structure.name}-l2={self.l2:g}"


def candidate_grid(feature_maps: Sequence[str], linear_l2: Sequence[float],
                   mlp_hidden: Sequence[int], mlp_l2: Sequence[float]) -> list[Candidate]:
  """The candidate family: (feature map x linear L2) + (MLP width x weight decay) on raw inputs."""
  cands = [Candidate(Structure(fm, "linear"), float(l2)) for fm in feature_maps for l2 in linear_l2]
  cands += [Candidate(Structure("linear", "mlp", int(h)), float(l2))
            for h in mlp_hidden for l2 in mlp_l2]
  if len({c.name for c in cands}) != len(cands):
    raise ValueError("Duplicate candidates: the config lists a feature map, width or L2 twice.")
  return cands


# ---------------------------------------------------------------------------------------------
# Feature maps (host-side NumPy, computed once per dataset).


def feature_map(name: str, x: np.ndarray, poly_dims: int = 8, rff_dim: int = 128,
                rff_bandwidth: float = 1.0, seed: int = 0) -> np.ndarray:
  """Maps standardised inputs `x` [n, d] to features [n, D] (no bias column; models add one).

  poly2 appends all degree-2 monomials of the first `poly_dims` inputs (callers put the numeric
  inputs first). rff is sqrt(2/D) cos(x W / bandwidth + b) with W ~ N(0, 1/d) per entry (Rahimi &
  Recht 2007), drawn from `seed` so the same map is used on every split.
  """
  x = np.asarray(x, np.float32)
  if name == "linear":
    return x
  if name == "poly2":
    k = min(poly_dims, x.shape[1])
    iu, ju = np.triu_indices(k)
    return np.concatenate([x, x[:, iu] * x[:, ju]], axis=1).astype(np.float32)
  if name == "rff":
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(x.shape[1], rff_dim)) / np.sqrt(x.shape[1])
    b = rng.uniform(0, 2 * np.pi, size=rff_dim)
    return (np.sqrt(2.0 / rff_dim) * np.cos(x @ w / rff_bandwidth + b)).astype(np.float32)
  raise ValueError(f"Unknown feature map {name!r}; choose one of {FEATURE_MAPS}.")


# ---------------------------------------------------------------------------------------------
# Models as pure functions of a params pytree.


def num_outputs(num_classes: int) -> int:
  """One logit (sigmoid) for binary problems, `num_classes` logits (softmax) otherwise."""
  if num_classes < 2:
    raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
  return 1 if num_classes == 2 else num_classes


def init_params(structure: Structure, dim: int, num_classes: int, key: jax.Array) -> Params:
  """Initial parameters: zeros for linear models, Glorot-normal hidden layer for MLPs."""
  k = num_outputs(num_classes)
  if structure.kind == "linear":
    return {"w": jnp.zeros((dim, k)), "b": jnp.zeros((k,))}
  k1, k2 = jax.random.split(key)
  h = structure.hidden
  return {"w1": jax.random.normal(k1, (dim, h)) * jnp.sqrt(2.0 / (dim + h)), "b1": jnp.zeros((h,)),
          "w2": jax.random.normal(k2, (h, k)) * jnp.sqrt(2.0 / (h + k)), "b2": jnp.zeros((k,))}


def logits(structure: Structure, params: Params, x: jax.Array) -> jax.Array:
  """Logits [n, k] (k = num_outputs) of features `x` [n, D]."""
  if structure.kind == "linear":
    return x @ params["w"] + params["b"]
  return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def loss_from_logits(f: jax.Array, y: jax.Array) -> jax.Array:
  """Per-example cross-entropy [n] from logits `f` [n, k] and integer labels `y` [n]."""
  if f.shape[-1] == 1:  # Binary: log(1 + e^f) - y f.
    f = f[..., 0]
    return jax.nn.softplus(f) - y * f
  return jax.nn.logsumexp(f, axis=-1) - jnp.take_along_axis(f, y[..., None], axis=-1)[..., 0]


def example_loss(structure: Structure, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
  """Loss of ONE example: `x` [D], `y` [] -> scalar (the unit `vmap(grad)` differentiates)."""
  return loss_from_logits(logits(structure, params, x[None]), y[None])[0]


def mean_loss(structure: Structure, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.mean(loss_from_logits(logits(structure, params, x), y))


def error_rate(structure: Structure, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
  f = logits(structure, params, x)
  pred = (f[:, 0] > 0).astype(y.dtype) if f.shape[-1] == 1 else jnp.argmax(f, -1).astype(y.dtype)
  return jnp.mean(pred != y)


def objective(structure: Structure, params: Params, x: jax.Array, y: jax.Array, w: jax.Array,
              l2: jax.Array) -> jax.Array:
  """Weighted regularised risk sum_i w_i loss_i + l2/2 ||theta||^2 (caller normalises w)."""
  flat, _ = ravel_pytree(params)
  return jnp.sum(w * loss_from_logits(logits(structure, params, x), y)) + 0.5 * l2 * flat @ flat


# ---------------------------------------------------------------------------------------------
# Fitting.


@dataclasses.dataclass(frozen=True)
class FitConfig:
  """Optimiser settings: damped Newton for linear models, full-batch Adam for MLPs."""
  newton_steps: int = 20
  mlp_steps: int = 400
  mlp_lr: float = 1e-2


def newton_fit(fun: Callable[[jax.Array], jax.Array], v0: jax.Array, num_steps: int) -> jax.Array:
  """Minimises a smooth strictly convex `fun` of a flat vector by Newton steps with a step search.

  Each step tries step lengths {0, 1, 1/2, ..., 1/64} of the Newton direction and keeps the best, so
  the objective never increases (robust on heavy-tailed features where a full step overshoots).
  """
  ts = jnp.concatenate([jnp.zeros(1), 0.5 ** jnp.arange(7.0)])

  def body(_, v):
    g = jax.grad(fun)(v)
    h = jax.hessian(fun)(v)
    d = jnp.linalg.solve(h, g)
    vals = jax.vmap(lambda t: fun(v - t * d))(ts)
    vals = jnp.where(jnp.isfinite(vals), vals, jnp.inf)
    return v - ts[jnp.argmin(vals)] * d

  return jax.lax.fori_loop(0, num_steps, body, v0)


def adam_fit(fun: Callable[[jax.Array], jax.Array], v0: jax.Array, num_steps: int,
             lr: float) -> jax.Array:
  """Full-batch Adam on a flat parameter vector (`lax.scan`: compile time independent of steps)."""
  opt = optax.adam(lr)

  def step(carry, _):
    v, s = carry
    g = jax.grad(fun)(v)
    u, s = opt.update(g, s, v)
    return (optax.apply_updates(v, u), s), None

  (v, _), _ = jax.lax.scan(step, (v0, opt.init(v0)), None, length=num_steps)
  return v


def fit(structure: Structure, params0: Params, x: jax.Array, y: jax.Array, w: jax.Array,
        l2: jax.Array, cfg: FitConfig = FitConfig()) -> Params:
  """Minimises `objective` from `params0`. Pure and jittable; `l2` may be traced.

  Args:
    structure: the candidate's structure (static).
    params0: starting parameters (zeros / a fixed MLP init, or a pilot fit to warm-start).
    x: features [n, D]; y: labels [n]; w: example weights [n] (normalised by the caller).
    l2: L2 strength (scalar, > 0).
    cfg: optimiser settings.

  Returns:
    The fitted parameters (same pytree as `params0`).
  """
  v0, unravel = ravel_pytree(params0)
  fun = lambda v: objective(structure, unravel(v), x, y, w, l2)
  if structure.kind == "linear":
    return unravel(newton_fit(fun, v0, cfg.newton_steps))
  return unravel(adam_fit(fun, v0, cfg.mlp_steps, cfg.mlp_lr))
