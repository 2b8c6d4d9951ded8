"""A small DARTS-style cell network whose cell architecture is an input, in three forms.

- `apply_child(spec, params, arch, x)`: a sampled child alpha (integer arrays, traced). Each edge
  runs only its chosen op through `lax.switch`, so one compilation serves every architecture and
  the compute/memory are those of one architecture (PARSEC).
- `apply_mixed(spec, params, weights, x)`: DARTS's continuous relaxation; every edge computes all
  ops and mixes them (and its candidate inputs) with the given probabilities.
- `apply_fixed(spec, params, arch, x)`: a plain network for a concrete (Python int) arch, with no
  switch or mixing; the ground truth the other two must reproduce at one-hot choices.

Network: stem conv3x3 + norm -> cells (all normal cells share one architecture, as in DARTS), with
fixed reduction blocks (ReLU, conv3x3 stride 2 doubling channels, norm) before the cells listed in
`reduce_before`; global average pooling -> linear classifier. A cell reads the two previous cell
outputs, computes `num_nodes` nodes (each the sum of two edges) and outputs
norm(concat(nodes) @ W_out). Simplification vs the paper: reduction cells are fixed, not searched.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from metanas.models import conv as conv_lib
from metanas.nas import cell_ops
from metanas.nas import cell_space

Params = dict


@dataclasses.dataclass(frozen=True)
class NetSpec:
  """Network sizes. `space` fixes the cell's nodes and candidate ops."""
  space: cell_space.CellSpace
  in_channels: int = 1
  num_classes: int = 10
  channels: int = 16
  num_cells: int = 3
  reduce_before: tuple[int, ...] = (1, 2)

  def __post_init__(self):
    bad = [r for r in self.reduce_before if not 0 <= r < self.num_cells]
    if bad:
      raise ValueError(f"reduce_before {self.reduce_before} must index cells in [0, "
                       f"{self.num_cells}); got {bad}.")


def init(spec: NetSpec, rng: jax.Array) -> Params:
  """Shared weights w for every op of every edge of every cell."""
  space = spec.space
  keys = iter(jax.random.split(rng, 4 + spec.num_cells * (space.num_edges * space.num_ops + 1)))
  c = spec.channels
  params = {"stem": jax.random.normal(next(keys), (3, 3, spec.in_channels, c)) /
                    np.sqrt(9 * spec.in_channels),
            "cells": [], "reduce": []}
  for cell in range(spec.num_cells):
    if cell in spec.reduce_before:
      params["reduce"].append(jax.random.normal(next(keys), (3, 3, c, 2 * c)) / np.sqrt(9 * c))
      c *= 2
    edges = [{o: cell_ops.init_op(o, next(keys), c) for o in space.ops}
             for _ in range(space.num_edges)]
    out = jax.random.normal(next(keys), (space.num_nodes * c, c)) / np.sqrt(space.num_nodes * c)
    params["cells"].append({"edges": edges, "out": out})
  params["head"] = {"w": jax.random.normal(next(keys), (c, spec.num_classes)) / np.sqrt(c),
                    "b": jnp.zeros((spec.num_classes,))}
  return params


EdgeFn = Callable[[dict, list, int, int], jax.Array]


def _forward(spec: NetSpec, params: Params, x: jax.Array, edge_fn: EdgeFn) -> jax.Array:
  """x [B, H, W, in_channels] -> logits [B, num_classes]."""
  if x.ndim != 4 or x.shape[-1] != spec.in_channels:
    raise ValueError(f"Expected images [batch, H, W, {spec.in_channels}], got {x.shape}.")
  s = cell_ops.batch_norm(conv_lib.conv2d(x, params["stem"], 1, "SAME", "lax"))
  s0 = s1 = s
  reduce_iter = iter(params["reduce"])
  for cell, cp in enumerate(params["cells"]):
    if cell in spec.reduce_before:
      r = cell_ops.batch_norm(conv_lib.conv2d(jax.nn.relu(s1), next(reduce_iter), 2, "SAME",
                                              "lax"))
      s0 = s1 = r
    states = [s0, s1]
    for node in range(spec.space.num_nodes):
      states.append(edge_fn(cp["edges"], states, node, 0) + edge_fn(cp["edges"], states, node, 1))
    out = cell_ops.batch_norm(jnp.concatenate(states[2:], axis=-1) @ cp["out"])
    s0, s1 = s1, out
  pooled = jnp.mean(s1, axis=(1, 2))
  return pooled @ params["head"]["w"] + params["head"]["b"]


def _switch_op(ops: tuple[str, ...]):
  """y = OPS[ops[index]](params[op], x), running only the chosen op, forward and backward.

  A custom VJP keeps only (index, params, x) as residuals and recomputes the chosen op inside a
  second switch in the backward pass. Differentiating `lax.switch` directly makes JAX join the
  residuals of every branch, which compiled for minutes on CPU for a few cells.
  """
  fwd_branches = [lambda p, h, o=o: cell_ops.OPS[o](p[o], h) for o in ops]

  @jax.custom_vjp
  def op(index, p, h):
    return lax.switch(index, fwd_branches, p, h)

  def fwd(index, p, h):
    return op(index, p, h), (index, p, h)

  def bwd(res, g):
    index, p, h = res
    bwd_branches = [lambda p, h, g, f=f: jax.vjp(f, p, h)[1](g) for f in fwd_branches]
    gp, gh = lax.switch(index, bwd_branches, p, h, g)
    return None, gp, gh

  op.defvjp(fwd, bwd)
  return op


def apply_child(spec: NetSpec, params: Params, arch: cell_space.Arch, x: jax.Array) -> jax.Array:
  """Logits of child alpha = arch (int32 arrays, may be traced): only chosen ops run (lax.switch).

  The input of each edge is picked with a dynamic index into the stacked earlier states.
  """
  op = _switch_op(spec.space.ops)

  def edge_fn(edges, states, node, slot):
    e = 2 * node + slot
    h = jnp.stack(states)[arch["inp"][node, slot]]
    return op(arch["op"][e], edges[e], h)

  return _forward(spec, params, x, edge_fn)


def apply_mixed(spec: NetSpec, params: Params, weights: cell_space.Logits,
                x: jax.Array) -> jax.Array:
  """DARTS mixed-op network: weights are probabilities shaped like pi (see cell_space)."""
  ops = spec.space.ops

  def edge_fn(edges, states, node, slot):
    e = 2 * node + slot
    h = sum(weights["inp"][node, slot, j] * states[j] for j in range(node + 2))
    return sum(weights["op"][e, o] * cell_ops.OPS[name](edges[e][name], h)
               for o, name in enumerate(ops))

  return _forward(spec, params, x, edge_fn)


def apply_fixed(spec: NetSpec, params: Params, arch: dict, x: jax.Array) -> jax.Array:
  """The plain network of one concrete architecture (host ints; retraced per arch)."""
  op = np.asarray(arch["op"])
  inp = np.asarray(arch["inp"])

  def edge_fn(edges, states, node, slot):
    e = 2 * node + slot
    name = spec.space.ops[int(op[e])]
    return cell_ops.OPS[name](edges[e][name], states[int(inp[node, slot])])

  return _forward(spec, params, x, edge_fn)


def log_likelihood(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """sum_n log p(y_n | x_n, w, alpha); logits [B, classes], labels int[B] -> scalar."""
  lp = jax.nn.log_softmax(logits, axis=-1)
  return jnp.take_along_axis(lp, labels[:, None], axis=-1).sum()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return jnp.mean(jnp.argmax(logits, -1) == labels)


def cell_resolutions(spec: NetSpec, height: int, width: int) -> list[tuple[int, int, int]]:
  """(H, W, C) seen by each cell, for the analytic cost term."""
  out, h, w, c = [], height, width, spec.channels
  for cell in range(spec.num_cells):
    if cell in spec.reduce_before:
      h, w, c = -(-h // 2), -(-w // 2), 2 * c
    out.append((h, w, c))
  return out


def op_costs_mflops(spec: NetSpec, height: int, width: int) -> np.ndarray:
  """f32[num_ops]: per-edge MFLOPs of each op summed over all cells (the cost term's table)."""
  res = cell_resolutions(spec, height, width)
  return np.array([sum(cell_ops.op_mflops(o, h, w, c) for h, w, c in res)
                   for o in spec.space.ops], np.float32)
