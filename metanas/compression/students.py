"""Teachers and students: scikit-learn forests on the host, JAX MLP / CNN classifiers.

Students learn the teacher's class probabilities q(x) on a transfer set (Bucila et al. 2006; Liu
et al. 2018 Sec. 2): random-forest regressors fit q_1(x) (binary tasks) by squared error; JAX networks
minimise the soft cross-entropy -sum_k q_k(x) log p_k(x) (Hinton et al. 2015 at temperature 1).
Hard labels are the special case q = one_hot(y) (the "no teacher" student and the teachers).
"""

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn import ensemble

from metanas.models import conv


def rf_teacher(x: np.ndarray, y: np.ndarray, num_trees: int, seed: int,
               n_jobs: int = 1, oob: bool = False) -> ensemble.RandomForestClassifier:
  """The classical teacher: a random forest classifier on [n, d] rows, [n] labels.

  With `oob=True` the forest also keeps its out-of-bag class probabilities of the training rows
  (`oob_decision_function_`); the trees are the same as with `oob=False` (same seed).
  """
  return ensemble.RandomForestClassifier(num_trees, random_state=seed, n_jobs=n_jobs,
                                         oob_score=oob).fit(x, y)


TEACHER_LABELS = ("predict", "oob")


def check_teacher_labels(labels: str) -> None:
  if labels not in TEACHER_LABELS:
    raise ValueError(f"Unknown teacher labels {labels!r}; choose from {TEACHER_LABELS}.")


def teacher_targets(teacher: ensemble.RandomForestClassifier, x: np.ndarray, num_train_rows: int,
                    labels: str = "predict") -> np.ndarray:
  """The teacher's P(y = 1 | x) for a transfer set whose first `num_train_rows` are its training rows.

  "predict": `predict_proba` everywhere. A forest's probabilities on its own training rows are
  in-bag: each row was seen by ~63% of the trees, so they sit closer to 0/1 than on any fresh row.
  "oob": the training rows get their out-of-bag probabilities (only the trees that did not see the
  row; the teacher must be fit with `oob=True`), i.e. the same kind of label as synthetic rows.
  Rows with no out-of-bag tree (possible for tiny forests) keep the in-bag probability.
  """
  check_teacher_labels(labels)
  target = teacher.predict_proba(x)[:, 1].astype(np.float32)
  if labels == "oob" and num_train_rows:
    if not hasattr(teacher, "oob_decision_function_"):
      raise ValueError("teacher_labels='oob' needs a teacher fit with oob=True.")
    oob = teacher.oob_decision_function_[:, 1]
    if len(oob) != num_train_rows:
      raise ValueError(f"The teacher was fit on {len(oob)} rows, the transfer set starts with "
                       f"{num_train_rows} training rows.")
    target[:num_train_rows] = np.where(np.isfinite(oob), oob, target[:num_train_rows])
  return target


def rf_student_scores(x: np.ndarray, target: np.ndarray, x_eval: np.ndarray,
                      tree_counts: Sequence[int], seed: int, n_jobs: int = 1) -> dict[int, np.ndarray]:
  """Random-forest regressor students with several sizes, from one forest.

  A forest of max(tree_counts) independently grown trees is fit once; the k-tree student is its first
  k trees (exactly the distribution of a separately fit k-tree forest, since trees are i.i.d.).

  Args:
    x: [n, d] transfer rows; target: [n] regression target (teacher P(y=1 | x) or 0/1 labels).
    x_eval: [m, d] rows to score.
    tree_counts: student sizes, e.g. (1, 5, 10, 20).
    seed: forest seed.

  Returns:
    {k: [m] mean prediction of the first k trees}.
  """
  if min(tree_counts) < 1:
    raise ValueError(f"Student tree counts must be >= 1, got {tuple(tree_counts)}.")
  forest = ensemble.RandomForestRegressor(max(tree_counts), random_state=seed,
                                          n_jobs=n_jobs).fit(x, target)
  per_tree = np.stack([t.predict(x_eval) for t in forest.estimators_])  # [trees, m]
  cums = np.cumsum(per_tree, axis=0)
  return {int(k): cums[k - 1] / k for k in tree_counts}


class MLP(nn.Module):
  """[B, d] (or images, flattened) -> [B, K] logits."""
  num_classes: int
  hidden: tuple[int, ...] = (64, 64)

  @nn.compact
  def __call__(self, x):
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    return nn.Dense(self.num_classes)(h)


class CNN(nn.Module):
  """Image classifier [B, 28, 28, 1] -> [B, K] logits; `features` returns the penultimate layer."""
  num_classes: int = 10
  width: int = 32
  dense: int = 128
  conv_impl: str = "im2col"

  def setup(self):
    self.c1 = conv.Conv(self.width, 3, stride=2, impl=self.conv_impl)
    self.c2 = conv.Conv(2 * self.width, 3, stride=2, impl=self.conv_impl)
    self.d1 = nn.Dense(self.dense)
    self.out = nn.Dense(self.num_classes)

  def features(self, x):
    h = nn.relu(self.c2(nn.relu(self.c1(x))))
    return nn.relu(self.d1(h.reshape(x.shape[0], -1)))

  def __call__(self, x):
    return self.out(self.features(x))


def soft_cross_entropy(logits: jax.Array, q: jax.Array) -> jax.Array:
  """Mean over the batch of -sum_k q_k log softmax(logits)_k; logits, q: [B, K]."""
  return -jnp.mean(jnp.sum(q * jax.nn.log_softmax(logits), axis=-1))


def epoch_indices(n: int, batch_size: int, num_steps: int, seed: int) -> np.ndarray:
  """[num_steps, batch_size] minibatch indices from consecutive shuffled passes over n rows.

  The first floor(n / batch_size) steps are exactly one pass without replacement (what the
  Compression Score's "one pass" means).
  """
  if n < batch_size:
    raise ValueError(f"Batch size {batch_size} exceeds the {n} training rows; lower it.")
  rng = np.random.default_rng(seed)
  per_epoch = n // batch_size
  epochs = -(-num_steps // per_epoch)
  idx = np.concatenate([rng.permutation(n)[:per_epoch * batch_size] for _ in range(epochs)])
  return idx[:num_steps * batch_size].reshape(num_steps, batch_size)


def fit_soft(model: nn.Module, params: Any, x: np.ndarray, q: np.ndarray, indices: np.ndarray,
             learning_rate: float) -> Any:
  """Trains `model` by Adam on the soft cross-entropy over the given minibatch schedule.

  The whole schedule runs in one jitted `lax.scan` (compiled once per data shape).

  Args:
    model: a Flax classifier; params: its initial parameters.
    x: [n, ...] inputs; q: [n, K] target probabilities (teacher outputs or one-hot labels).
    indices: [num_steps, batch_size] rows of each step (see `epoch_indices`).
    learning_rate: Adam step size.

  Returns:
    The trained parameters.
  """
  if len(x) != len(q):
    raise ValueError(f"Inputs ({len(x)} rows) and targets ({len(q)} rows) differ in length.")
  return _fit_soft(model, float(learning_rate), params, jnp.asarray(x, jnp.float32),
                   jnp.asarray(q, jnp.float32), jnp.asarray(indices, jnp.int32))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fit_soft(model, learning_rate, params, x, q, indices):
  tx = optax.adam(learning_rate)

  def step(carry, idx):
    params, opt = carry
    loss, grads = jax.value_and_grad(
        lambda p: soft_cross_entropy(model.apply(p, x[idx]), q[idx]))(params)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), loss

  (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), indices)
  return params


def bucket(n: int, cap: int) -> int:
  """Smallest power of two >= n, capped: padding chunks to it bounds the number of compilations."""
  return min(cap, 1 << max(int(n) - 1, 0).bit_length())


def predict(apply_fn: Callable, params: Any, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
  """Softmax probabilities [n, K] of `apply_fn(params, x)` in chunks (host NumPy).

  Chunks are zero-padded to a power-of-two size so repeated calls with new lengths reuse the
  compiled function.
  """
  size = bucket(len(x), batch_size)
  out = []
  for i in range(0, len(x), size):
    chunk = np.asarray(x[i:i + size], np.float32)
    padded = np.concatenate([chunk, np.zeros((size - len(chunk),) + chunk.shape[1:], np.float32)])
    out.append(np.asarray(_predict(apply_fn, params, jnp.asarray(padded)))[:len(chunk)])
  return np.concatenate(out, axis=0)


@functools.partial(jax.jit, static_argnums=(0,))
def _predict(apply_fn, params, x):
  return jax.nn.softmax(apply_fn(params, x))


def train_network(model: nn.Module, x: np.ndarray, q: np.ndarray, num_steps: int, batch_size: int,
                  learning_rate: float, seed: int) -> Any:
  """Initialises `model` from `seed` and trains it on (x, q) with `fit_soft`."""
  params = model.init(jax.random.key(seed), jnp.asarray(x[:1], jnp.float32))
  return fit_soft(model, params, x, q, epoch_indices(len(x), batch_size, num_steps, seed),
                  learning_rate)
