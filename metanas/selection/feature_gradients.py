"""Feature Gradients: feature selection by gradient descent on a relaxed learnability estimate.

Sheth & Fusi, "Differentiable Feature Selection by Discrete Relaxation", AISTATS 2020
(arXiv 1908.10382), Sec. 3-4. The 0/1 subset is relaxed to weights s = sigmoid(2 z) in (0, 1)^D,
X -> X diag(s), and the logits z minimise

  L(z) = (1 - w) * (1 - EV(X diag(s), y)) + w * mean(s)                      (S&F eq. 6)

where EV is Kong & Valiant's estimate of the explained variance (`learnability.explained_variance`)
averaged over mini-batches (unbiased per mini-batch, so the average is too). With
`objective="classification_error"` the first term is instead the estimated error of the best
linear classifier, (1 - sqrt(EV_c)) / 2 per one-vs-rest class column c, averaged over classes and
mini-batches (`learnability.linear_classification_error`; a per-mini-batch nonlinearity, so not
unbiased). One step takes `minibatches_per_step` mini-batches, sharded over the devices of a mesh
(gradient accumulation by the mean over them), clips the gradient and applies Adam. Features are then chosen by top-k,
a threshold on s, or the elbow of the learnability curve.
"""

import dataclasses
import math
import time
from typing import Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas import parallel
from metanas.selection import learnability


@dataclasses.dataclass(frozen=True)
class Hparams:
  """Optimisation settings (mirrors `config.fg` in configs/feature_gradients.py)."""
  order: int = 2
  sparsity: float = 0.3           # w in eq. 6.
  learning_rate: float = 0.01
  grad_clip: float = 1.0
  num_epochs: int = 50
  batch_size: int = 16            # rows per mini-batch; 0 = all rows in one mini-batch.
  minibatches_per_step: int = 1   # accumulated (and sharded over devices) per step.
  init_logit: float = 0.0
  # "adam" (S&F) or "normalized_sgd" (heavy-ball SGD on g / ||g||_2). Adam's per-coordinate scaling
  # moves every feature whose gradient keeps its sign by ~learning_rate per step, so with a large or
  # full batch the weights tie and top-k falls back to the column order; the normalised gradient
  # keeps the features' relative gradient magnitudes, i.e. their estimated contributions to EV.
  optimizer: str = "adam"
  num_restarts: int = 1           # independent mini-batch orders; their weights s are averaged.
  # "explained_variance" (1 - EV; any target) or "classification_error" ((1 - sqrt(EV)) / 2 per
  # one-vs-rest column; labels only; the selection experiments' config and the selector's "auto"
  # use it for labels).
  objective: str = "explained_variance"


@flax.struct.dataclass
class State:
  logits: jax.Array           # [D]
  opt_state: optax.OptState


def feature_weights(logits: jax.Array) -> jax.Array:
  """The relaxed subset s = sigmoid(2 z), [D] -> [D]."""
  return jax.nn.sigmoid(2.0 * logits)


def loss_fn(logits: jax.Array, x: jax.Array, y: jax.Array, coeffs: jax.Array,
            sparsity: float, objective: str = "explained_variance"
            ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Eq. 6 averaged over mini-batches.

  Args:
    logits: [D].
    x: [M, B, D] mini-batches.
    y: [M, B, C] unit-variance targets.
    coeffs: [K] polynomial coefficients.
    sparsity: w in [0, 1).
    objective: "explained_variance" (first term 1 - EV) or "classification_error" (first term
      the mean over columns and mini-batches of (1 - sqrt(EV_c)) / 2).

  Returns:
    (loss, metrics).
  """
  s = feature_weights(logits)
  evs = jax.vmap(lambda xb, yb: learnability.column_explained_variance(xb, yb, coeffs, s))(x, y)
  ev = jnp.mean(evs)
  if objective == "explained_variance":
    term = 1.0 - ev
  elif objective == "classification_error":
    term = jnp.mean(learnability.linear_classification_error(evs))
  else:
    raise ValueError(f"objective must be 'explained_variance' or 'classification_error', got "
                     f"{objective!r}.")
  loss = (1.0 - sparsity) * term + sparsity * jnp.mean(s)
  return loss, {"loss": loss, "explained_variance": ev, "mean_weight": jnp.mean(s)}


OPTIMIZERS = {
    "adam": lambda lr: optax.adam(lr),
    "normalized_sgd": lambda lr: optax.chain(optax.normalize_by_update_norm(scale_factor=1.0),
                                             optax.sgd(lr, momentum=0.9)),
}


def make_optimizer(hp: Hparams) -> optax.GradientTransformation:
  if hp.optimizer not in OPTIMIZERS:
    raise ValueError(f"Unknown optimizer {hp.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
  chain = [optax.clip_by_global_norm(hp.grad_clip)] if hp.grad_clip > 0 else []
  return optax.chain(*chain, OPTIMIZERS[hp.optimizer](hp.learning_rate))


def init_state(num_features: int, hp: Hparams) -> State:
  logits = jnp.full((num_features,), hp.init_logit, jnp.float32)
  return State(logits=logits, opt_state=make_optimizer(hp).init(logits))


def train_step(state: State, batch: dict, coeffs: jax.Array, hp: Hparams) -> tuple[State, dict]:
  """One pure Adam step on eq. 6; batch = {"x": [M, B, D], "y": [M, B, C]}, coeffs [K]."""
  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.logits, batch["x"], batch["y"], coeffs,
                                                   hp.sparsity, hp.objective)
  updates, opt_state = make_optimizer(hp).update(grads, state.opt_state, state.logits)
  metrics["grad_norm"] = optax.tree.norm(grads)
  return State(optax.apply_updates(state.logits, updates), opt_state), metrics


# Jitted once at import; recompiles only for new shapes or new (hashable, static) hyperparameters,
# so repeated fits (cross-validation folds, seeds) reuse the executable.
jit_train_step = jax.jit(train_step, static_argnames="hp", donate_argnums=0)


def batch_plan(num_rows: int, hp: Hparams) -> tuple[int, int, int]:
  """(batch size B, mini-batches per step M, steps per epoch) for `num_rows` rows."""
  b = num_rows if hp.batch_size in (0, None) or hp.batch_size > num_rows else hp.batch_size
  if b < hp.order + 1:
    raise ValueError(f"Batch size {b} is too small for order {hp.order}: the estimator needs at "
                     f"least order + 1 = {hp.order + 1} rows per mini-batch. Use more rows, a "
                     "larger batch_size or a lower order.")
  m = hp.minibatches_per_step
  num_mb = num_rows // b
  if num_mb < m:
    raise ValueError(f"{num_rows} rows give only {num_mb} mini-batches of {b}, fewer than "
                     f"minibatches_per_step={m}; lower minibatches_per_step or batch_size.")
  return b, m, num_mb // m


def mesh_for(m: int, max_devices: int = 0) -> jax.sharding.Mesh:
  """A mesh over the largest number of devices that divides the M mini-batches of a step."""
  avail = len(jax.devices()) if max_devices <= 0 else min(max_devices, len(jax.devices()))
  return parallel.make_mesh(max(d for d in range(1, avail + 1) if m % d == 0))


@dataclasses.dataclass
class FitResult:
  weights: np.ndarray           # [D] final s.
  logits: np.ndarray            # [D]
  history: list[dict]           # per-epoch metrics (means over the epoch).
  coeffs: np.ndarray            # [K]
  seconds: float


def fit(x: np.ndarray, y: np.ndarray, hp: Hparams, seed: int = 0,
        mesh: jax.sharding.Mesh | None = None,
        log_fn: Callable[[int, dict], None] | None = None) -> FitResult:
  """Runs Feature Gradients on prepared data.

  With `hp.num_restarts` = R > 1 the optimisation is repeated from the same start with R mini-batch
  orders and their logits z are averaged (the estimate is unbiased for every order, so the average
  only removes the order's noise from the ranking).

  Args:
    x: [N, D] float32 from `learnability.prepare_features`.
    y: [N, C] float32 from `learnability.prepare_targets`.
    hp: optimisation settings.
    seed: shuffling seed (restart r, epoch e uses the permutation of NumPy generator [seed, e] for
      r = 0 and [seed, e, r] otherwise).
    mesh: devices to shard the mini-batches over (default: `mesh_for(M)`).
    log_fn: optional `(epoch, metrics)` callback on the host (first restart only).

  Returns:
    A `FitResult` (logits: mean over restarts, weights: sigmoid(2 logits), history: the first
    restart's);
    raises FloatingPointError if the loss becomes non-finite.
  """
  if hp.num_restarts < 1:
    raise ValueError(f"num_restarts must be >= 1, got {hp.num_restarts}.")
  t0 = time.time()
  runs = [_fit_once(x, y, hp, seed, r, mesh, log_fn if r == 0 else None)
          for r in range(hp.num_restarts)]
  logits = np.mean([z for z, _ in runs], axis=0)
  coeffs, _ = learnability.minimax_coefficients(hp.order)
  return FitResult(weights=np.asarray(feature_weights(jnp.asarray(logits))), logits=logits,
                   history=runs[0][1], coeffs=coeffs,
                   seconds=time.time() - t0)


def _fit_once(x, y, hp: Hparams, seed: int, restart: int, mesh, log_fn):
  """One optimisation run; returns ([D] final logits z, per-epoch history)."""
  n, d = x.shape
  b, m, steps_per_epoch = batch_plan(n, hp)
  mesh = mesh or mesh_for(m)
  coeffs, _ = learnability.minimax_coefficients(hp.order)
  coeffs_dev = parallel.replicate(jnp.asarray(coeffs, jnp.float32), mesh)
  state = parallel.replicate(init_state(d, hp), mesh)
  history = []
  for epoch in range(hp.num_epochs):
    key = [seed, epoch] if restart == 0 else [seed, epoch, restart]
    perm = np.random.default_rng(key).permutation(n)
    window = []
    for i in range(steps_per_epoch):
      idx = perm[i * m * b:(i + 1) * m * b].reshape(m, b)
      batch = parallel.shard_batch({"x": x[idx], "y": y[idx]}, mesh)
      state, metrics = jit_train_step(state, batch, coeffs_dev, hp=hp)
      window.append(metrics)
    metrics = {k: float(np.mean([jax.device_get(w[k]) for w in window])) for k in window[0]}
    if not math.isfinite(metrics["loss"]):
      raise FloatingPointError(f"Feature Gradients loss is {metrics['loss']} at epoch {epoch}; "
                               "lower the learning rate or the order, or enable grad_clip.")
    metrics["epoch"] = epoch + 1
    history.append(metrics)
    if log_fn is not None:
      log_fn(epoch + 1, metrics)
  return np.asarray(jax.device_get(state.logits)), history


# ---------------------------------------------------------------------------------------------
# Selection rules.


def select_top_k(weights: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k largest weights (ties by index), [k]."""
  if not 1 <= k <= weights.shape[0]:
    raise ValueError(f"k must be in 1..{weights.shape[0]} (the number of features), got {k}.")
  return np.sort(np.argsort(-weights, kind="stable")[:k])


def select_threshold(weights: np.ndarray, threshold: float) -> np.ndarray:
  """Indices with weight > threshold (at least the single best one)."""
  idx = np.flatnonzero(weights > threshold)
  return idx if idx.size else np.argsort(-weights, kind="stable")[:1]


def learnability_curve(x: np.ndarray, y: np.ndarray, weights: np.ndarray, sizes, order: int,
                       batch_size: int = 1024) -> np.ndarray:
  """Estimated explained variance of the top-k features (hard 0/1 subset) for each k in `sizes`.

  Args:
    x: [N, D], y: [N, C] prepared data.
    weights: [D] feature scores.
    sizes: iterable of subset sizes.
    order: estimator order K.
    batch_size: rows per mini-batch (the estimate is averaged over consecutive mini-batches).

  Returns:
    [len(sizes)] estimates.
  """
  n, d = x.shape
  b = min(batch_size, n)
  num_mb = n // b
  coeffs = jnp.asarray(learnability.minimax_coefficients(order)[0], jnp.float32)
  xb = jnp.asarray(x[:num_mb * b].reshape(num_mb, b, d))
  yb = jnp.asarray(y[:num_mb * b].reshape(num_mb, b, -1))

  @jax.jit
  def ev(mask):
    return jnp.mean(jax.lax.map(
        lambda xy: learnability.explained_variance(xy[0], xy[1], coeffs, mask), (xb, yb)))

  order_idx = np.argsort(-weights, kind="stable")
  out = []
  for k in sizes:
    mask = np.zeros(d, np.float32)
    mask[order_idx[:k]] = 1.0
    out.append(float(ev(jnp.asarray(mask))))
  return np.asarray(out)


def elbow(sizes, curve) -> int:
  """The subset size at the knee of an increasing curve: max distance above the chord."""
  sizes = np.asarray(sizes, np.float64)
  curve = np.maximum.accumulate(np.asarray(curve, np.float64))
  if sizes.size < 3 or curve[-1] - curve[0] <= 0:
    return int(sizes[-1])
  xs = (sizes - sizes[0]) / (sizes[-1] - sizes[0])
  ys = (curve - curve[0]) / (curve[-1] - curve[0])
  return int(sizes[int(np.argmax(ys - xs))])


def select_elbow(x: np.ndarray, y: np.ndarray, weights: np.ndarray, order: int,
                 max_features: int | None = None, num_sizes: int = 20) -> np.ndarray:
  """Indices of the top-k features with k at the elbow of the learnability curve."""
  d = weights.shape[0]
  top = min(d, max_features or d)
  sizes = np.unique(np.geomspace(1, top, num_sizes).round().astype(int))
  k = elbow(sizes, learnability_curve(x, y, weights, sizes, order))
  return select_top_k(weights, k)
