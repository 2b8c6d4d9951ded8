"""Layer-wise feature-map distillation of every candidate, and their scores (HANT Sec. 3.1-3.2).

Every candidate op of layer l is trained to reproduce the teacher's output of layer l from the
teacher's input to layer l (Eq. 1 of arXiv 2107.10624: min_w ||f_l^teacher(x_l) - o_{l,c}(x_l; w)||^2,
x_l cached teacher activations). The problems are independent, so all are trained at once: layers
with the same shapes ("signature") form a group whose candidate parameters are stacked along a layer
axis and run with `jax.vmap`; the loss of one jitted step is the sum over all candidates of the group,
whose gradients (and Adam updates, which are elementwise) are exactly the per-candidate ones.

Scores (Sec. 3.2): the teacher's validation loss and accuracy with only layer l swapped for candidate
c; `score = -(loss_swapped - loss_teacher)` is what the integer program adds up.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas.hant import network
from metanas.hant import ops as ops_lib


@dataclasses.dataclass
class Group:
  """Candidates of the layers sharing one signature.

  Attributes:
    layers: indices of the network's layers with this signature (m of them).
    ops: the candidate ops (n of them), the same for every layer of the group.
    params: per op, its parameter pytree with a leading [m] layer axis.
    trainable: per op, [m] floats: 0 where the op is the teacher's own op of that layer (kept at the
      teacher's weights, so the teacher itself is always an exact candidate), else 1.
  """
  layers: tuple
  ops: tuple
  params: list
  trainable: tuple = ()


def init_bank(arch: network.Arch, names, teacher_params: dict, rng: jax.Array) -> list:
  """Fresh candidates for every layer; the teacher's own op starts from the teacher's weights."""
  by_sig: dict[network.Layer, list[int]] = {}
  for i, layer in enumerate(arch.layers):
    by_sig.setdefault(layer, []).append(i)
  bank = []
  for g, (layer, idx) in enumerate(by_sig.items()):
    names_g = list(names) if names is not None else None
    for i in idx:  # The teacher's own op is always a candidate.
      if names_g is not None and arch.teacher_ops[i] not in names_g:
        names_g.append(arch.teacher_ops[i])
    cands = ops_lib.candidates(names_g, layer.c_in, layer.c_out, layer.stride)
    params = []
    for c, op in enumerate(cands):
      per_layer = []
      for i in idx:
        if op.name == arch.teacher_ops[i]:
          per_layer.append(teacher_params["layers"][i])
        else:
          per_layer.append(ops_lib.init(op, jax.random.fold_in(rng, 1000 * i + c)))
      params.append(jax.tree.map(lambda *a: jnp.stack(a), *per_layer))
    trainable = tuple(np.array([float(op.name != arch.teacher_ops[i]) for i in idx], np.float32)
                      for op in cands)
    bank.append(Group(tuple(idx), tuple(cands), params, trainable))
  return bank


def _group_outputs(ops: tuple, params: list, x: jax.Array, impl: str) -> list:
  """Outputs of every candidate: x [m, batch, h, w, c_in] -> n arrays [m, batch, h', w', c_out]."""
  return [jax.vmap(lambda p, xi, op=op: ops_lib.apply(op, p, xi, impl))(p, x)
          for op, p in zip(ops, params)]


def _group_mse(ops, params, x, y, impl):
  """Per-candidate, per-layer mean squared error [n, m] (Eq. 1)."""
  outs = _group_outputs(ops, params, x, impl)
  return jnp.stack([jnp.mean(jnp.square(o - y), axis=(1, 2, 3, 4)) for o in outs])


def group_mse(group: Group, x: jax.Array, y: jax.Array, impl: str = "lax",
              chunk: int = 256) -> np.ndarray:
  """MSE [n_ops, m_layers] of a group's candidates on cached x/y [m, N, ...] (chunked over N)."""
  fn = jax.jit(lambda p, x, y: _group_mse(group.ops, p, x, y, impl))
  total, n = 0.0, x.shape[1]
  for s in range(0, n, chunk):
    xb, yb = x[:, s:s + chunk], y[:, s:s + chunk]
    total = total + np.asarray(fn(group.params, xb, yb)) * xb.shape[1]
  return total / n


def distill_group(group: Group, x: np.ndarray, y: np.ndarray, steps: int, batch_size: int,
                  learning_rate: float, rng: jax.Array, impl: str = "fast") -> tuple[Group, list]:
  """Trains all candidates of a group at once on cached teacher activations.

  Args:
    group: the candidates (their current parameters are the starting point).
    x: [m, N, h, w, c_in] teacher inputs of the group's layers.
    y: [m, N, h', w', c_out] teacher outputs of those layers.
    steps, batch_size, learning_rate: Adam schedule (cosine decay).
    rng: PRNG key for minibatch sampling.
    impl: conv lowering used for training.

  Returns:
    (group with trained parameters, list of summed training losses every 10% of the steps).
  """
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, max(steps, 1)))
  opt_state = tx.init(group.params)
  x, y = jnp.asarray(x), jnp.asarray(y)
  masks = [jnp.asarray(m) for m in (group.trainable or [np.ones(len(group.layers))] * len(group.ops))]

  def loss_fn(params, xb, yb):
    return jnp.sum(_group_mse(group.ops, params, xb, yb, impl))

  @jax.jit  # x, y are arguments, not closed-over constants (XLA would embed and fold them).
  def step(params, opt_state, x, y, idx):
    loss, grads = jax.value_and_grad(loss_fn)(params, x[:, idx], y[:, idx])
    updates, opt_state = tx.update(grads, opt_state, params)
    updates = [jax.tree.map(lambda u, m=m: u * m.reshape((-1,) + (1,) * (u.ndim - 1)), u_c)
               for u_c, m in zip(updates, masks)]
    return optax.apply_updates(params, updates), opt_state, loss

  params, history = group.params, []
  for t in range(steps):
    idx = jax.random.randint(jax.random.fold_in(rng, t), (batch_size,), 0, x.shape[1])
    params, opt_state, loss = step(params, opt_state, x, y, idx)
    if t % max(steps // 10, 1) == 0 or t == steps - 1:
      history.append(float(loss))
  return Group(group.layers, group.ops, params, group.trainable), history


def layer_io(arch: network.Arch, teacher_params: dict, images: np.ndarray,
             chunk: int = 500) -> list:
  """Cached teacher activations: L + 1 NumPy arrays (layer inputs and the final output)."""
  fn = jax.jit(lambda x: network.activations(arch, arch.teacher_ops, teacher_params, x))
  parts = [fn(jnp.asarray(images[s:s + chunk])) for s in range(0, len(images), chunk)]
  return [np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(len(arch.layers) + 1)]


def distill_bank(arch, bank, acts_train, steps, batch_size, learning_rate, rng, impl="fast",
                 log=None) -> tuple[list, dict]:
  """Distils every group; returns the new bank and {group signature: loss history}."""
  out, histories = [], {}
  for g, group in enumerate(bank):
    x = np.stack([acts_train[i] for i in group.layers])
    y = np.stack([acts_train[i + 1] for i in group.layers])
    new, hist = distill_group(group, x, y, steps, batch_size, learning_rate,
                              jax.random.fold_in(rng, g), impl)
    sig = arch.layers[group.layers[0]].signature
    histories[sig] = hist
    if log:
      log(f"distilled group {sig}: {len(group.ops)} ops x {len(group.layers)} layers, "
          f"loss {hist[0]:.4g} -> {hist[-1]:.4g}")
    out.append(new)
  return out, histories


def score_bank(arch, teacher_params, bank, acts_val, labels_val, chunk: int = 500) -> dict[str, Any]:
  """Validation loss / accuracy of the teacher with one layer swapped, for every candidate.

  Returns:
    dict with "names" (per layer: candidate names), "loss", "acc" (per layer: [n] arrays),
    "teacher_loss", "teacher_acc", and "mse" (per layer: relative MSE of each candidate on val).
  """
  labels = jnp.asarray(labels_val)

  def metrics(logits, y):
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)

  suffix = {}
  for i in range(len(arch.layers)):
    suffix[i] = jax.jit(lambda x, y, i=i: metrics(
        network.apply_from(arch, arch.teacher_ops, teacher_params, x, i + 1), y))
  t_loss, t_acc = _eval_suffix(suffix[len(arch.layers) - 1], acts_val[-1], labels, chunk)
  names, loss, acc, mse = ({} for _ in range(4))
  for group in bank:
    fwd = jax.jit(lambda p, x, group=group: _group_outputs(group.ops, p, x, "lax"))
    x = np.stack([acts_val[i] for i in group.layers])
    outs = [[] for _ in group.ops]
    for s in range(0, x.shape[1], chunk):
      for c, o in enumerate(fwd(group.params, jnp.asarray(x[:, s:s + chunk]))):
        outs[c].append(np.asarray(o))
    outs = [np.concatenate(o, axis=1) for o in outs]
    for j, i in enumerate(group.layers):
      target = acts_val[i + 1]
      var = float(np.var(target)) + 1e-12
      names[i] = [op.name for op in group.ops]
      res = [_eval_suffix(suffix[i], o[j], labels, chunk) for o in outs]
      loss[i] = np.array([r[0] for r in res])
      acc[i] = np.array([r[1] for r in res])
      mse[i] = np.array([float(np.mean((o[j] - target) ** 2)) / var for o in outs])
  n = len(arch.layers)
  return {"names": [names[i] for i in range(n)], "loss": [loss[i] for i in range(n)],
          "acc": [acc[i] for i in range(n)], "mse": [mse[i] for i in range(n)],
          "teacher_loss": t_loss, "teacher_acc": t_acc}


def _eval_suffix(fn, x, labels, chunk):
  tot_l, tot_a = 0.0, 0.0
  for s in range(0, len(x), chunk):
    l, a = fn(jnp.asarray(x[s:s + chunk]), labels[s:s + chunk])
    tot_l += float(l) * len(x[s:s + chunk])
    tot_a += float(a) * len(x[s:s + chunk])
  return tot_l / len(x), tot_a / len(x)


def student_params(bank: list, ops: tuple, teacher_params: dict) -> dict:
  """Assembles a student: the chosen distilled candidate of every layer, the teacher's stem/head."""
  layers = list(teacher_params["layers"])
  for group in bank:
    names = [op.name for op in group.ops]
    for j, i in enumerate(group.layers):
      c = names.index(ops[i])
      layers[i] = jax.tree.map(lambda a, j=j: a[j], group.params[c])
  return {"stem": teacher_params["stem"], "layers": layers, "head": teacher_params["head"]}
