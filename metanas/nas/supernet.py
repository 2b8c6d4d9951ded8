"""A weight-sharing Conv-N supernet whose sub-networks run inside ONE compiled function.

H-Meta-NAS (arXiv 2109.04925, Sec. 3.2) meta-trains a supernet in which every sub-network is a
slice of shared weights. Here the architecture is a traced input (`arch`, see
`search_space.decode`), so one `jit` serves all sub-networks:

- kernel size: the weights are 5x5; a 3x3 layer multiplies them by a mask that keeps the centre 3x3
  (with SAME padding at stride 2 this equals the 3x3 convolution with the cropped weights);
- width: a channel mask zeroes the output channels >= c_l after norm and ReLU, so the next layer
  sees zeros there and the masked weights receive zero gradient;
- depth (Adaptive Number of Layers): every block is computed but the head reads the globally
  average-pooled features of block `depth` only (a 0/1 selection, no `lax.cond`), so dropped blocks
  affect neither the output nor the gradients. With `head_per_depth=True` every depth has its own
  linear head (block-2 and block-4 features are different things; one shared head must serve
  both, and that conflict costs every sub-network accuracy, see experiments/hmetanas.md).

`slice_params` cuts the weights of one architecture out of the supernet and `plain_apply` runs them
as an ordinary network of that shape; the tests check the two agree.

Parameters are a plain pytree:
  {"blocks": [{"kernel": [5, 5, c_in_max, c_max], "bias": [c_max], "scale": [c_max],
               "shift": [c_max]}, ...],
   "head": {"w": [c_max, num_classes], "b": [num_classes]}}
  or, with one head per depth, "head": {"w": [max_depth, c_max, num_classes],
  "b": [max_depth, num_classes]}.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from metanas.models import conv
from metanas.nas import search_space as ss

Params = dict
KMAX = 5


def _lecun(rng, shape, fan_in):
  return jax.random.normal(rng, shape, jnp.float32) / np.sqrt(fan_in)


def init(space: ss.SearchSpace, rng: jax.Array, head_per_depth: bool = False) -> Params:
  """Supernet parameters sized for the largest choice of every layer (`head_per_depth`: one
  linear head per depth choice instead of one shared head)."""
  c_max = space.max_channels
  keys = jax.random.split(rng, space.max_depth + 1)
  blocks = []
  c_in = space.in_channels
  for l in range(space.max_depth):
    blocks.append({
        "kernel": _lecun(keys[l], (KMAX, KMAX, c_in, c_max), 9 * c_in),
        "bias": jnp.zeros((c_max,)), "scale": jnp.ones((c_max,)), "shift": jnp.zeros((c_max,))})
    c_in = c_max
  lead = (space.max_depth,) if head_per_depth else ()
  head = {"w": _lecun(keys[-1], lead + (c_max, space.num_classes), c_max),
          "b": jnp.zeros(lead + (space.num_classes,))}
  return {"blocks": blocks, "head": head}


def kernel_mask(kernel_size: jax.Array) -> jax.Array:
  """[5, 5] 0/1 mask keeping the centre `kernel_size` x `kernel_size` taps (traced scalar ok)."""
  d = jnp.abs(jnp.arange(KMAX) - KMAX // 2)
  inside = d <= kernel_size // 2
  return (inside[:, None] & inside[None, :]).astype(jnp.float32)


def _norm_relu(y, scale, shift, epsilon=1e-5):
  """Batch-statistics norm over (batch, h, w) per channel (MAML's choice), then ReLU."""
  mean = jnp.mean(y, axis=(0, 1, 2), keepdims=True)
  var = jnp.mean(jnp.square(y - mean), axis=(0, 1, 2), keepdims=True)
  return jax.nn.relu((y - mean) * lax.rsqrt(var + epsilon) * scale + shift)


def apply(params: Params, x: jax.Array, arch: dict, conv_impl: str = "im2col") -> jax.Array:
  """Logits of the sub-network `arch` (traced) on a batch.

  Args:
    params: supernet parameters (see `init`).
    x: images [batch, height, width, in_channels].
    arch: {"depth": int [], "kernel": int [L], "channels": int [L]} (`search_space.decode`),
      jnp or np arrays; traced values are fine (one compilation for all sub-networks).
    conv_impl: convolution lowering (`metanas.models.conv.CONV_IMPLS`).

  Returns:
    logits [batch, num_classes].
  """
  blocks = params["blocks"]
  c_max = blocks[0]["kernel"].shape[-1]
  channel_ids = jnp.arange(c_max)
  head = params["head"]
  per_depth = head["w"].ndim == 3
  feats = jnp.zeros((x.shape[0], c_max), x.dtype)
  logits = 0.0
  for l, blk in enumerate(blocks):
    cmask = (channel_ids < arch["channels"][l]).astype(x.dtype)
    w = blk["kernel"] * kernel_mask(arch["kernel"][l])[:, :, None, None]
    y = conv.conv2d(x, w, stride=2, padding="SAME", impl=conv_impl) + blk["bias"]
    x = _norm_relu(y, blk["scale"], blk["shift"]) * cmask
    is_last = (arch["depth"] == l + 1).astype(x.dtype)
    if per_depth:
      logits = logits + is_last * (jnp.mean(x, axis=(1, 2)) @ head["w"][l] + head["b"][l])
    else:
      feats = feats + is_last * jnp.mean(x, axis=(1, 2))
  return logits if per_depth else feats @ head["w"] + head["b"]


def slice_params(params: Params, space: ss.SearchSpace, genes: np.ndarray) -> Params:
  """The weights of one architecture with their real shapes (centre-cropped, channel-sliced).

  Returns:
    {"blocks": [{"kernel": [k, k, c_in, c_out], "bias"/"scale"/"shift": [c_out]}] (depth entries),
     "head": {"w": [c_last, num_classes], "b": [num_classes]}}.
  """
  blocks = []
  for l, (k, ci, co, _) in enumerate(ss.layers(space, genes)):
    b = params["blocks"][l]
    lo = (KMAX - k) // 2
    blocks.append({"kernel": b["kernel"][lo:lo + k, lo:lo + k, :ci, :co], "bias": b["bias"][:co],
                   "scale": b["scale"][:co], "shift": b["shift"][:co]})
  c_last = blocks[-1]["bias"].shape[0]
  w, b = params["head"]["w"], params["head"]["b"]
  if w.ndim == 3:  # One head per depth: the one of this architecture's depth.
    w, b = w[len(blocks) - 1], b[len(blocks) - 1]
  return {"blocks": blocks, "head": {"w": w[:c_last], "b": b}}


def plain_init(space: ss.SearchSpace, genes: np.ndarray, rng: jax.Array) -> Params:
  """Fresh weights of one fixed architecture (the manual-baseline networks)."""
  ls = ss.layers(space, genes)
  keys = jax.random.split(rng, len(ls) + 1)
  blocks = [{"kernel": _lecun(keys[l], (k, k, ci, co), k * k * ci), "bias": jnp.zeros((co,)),
             "scale": jnp.ones((co,)), "shift": jnp.zeros((co,))}
            for l, (k, ci, co, _) in enumerate(ls)]
  c_last = ls[-1][2]
  return {"blocks": blocks, "head": {"w": _lecun(keys[-1], (c_last, space.num_classes), c_last),
                                     "b": jnp.zeros((space.num_classes,))}}


def plain_apply(params: Params, x: jax.Array, conv_impl: str = "im2col") -> jax.Array:
  """An ordinary Conv-N network with the shapes found in `params` (from `slice_params` or
  `plain_init`). x [batch, h, w, c] -> logits [batch, num_classes]."""
  for blk in params["blocks"]:
    y = conv.conv2d(x, blk["kernel"], stride=2, padding="SAME", impl=conv_impl) + blk["bias"]
    x = _norm_relu(y, blk["scale"], blk["shift"])
  return jnp.mean(x, axis=(1, 2)) @ params["head"]["w"] + params["head"]["b"]


def arch_arrays(space: ss.SearchSpace, genes: np.ndarray | Sequence[int]) -> dict:
  """`search_space.decode` as jnp arrays (a pytree that can be vmapped over a leading axis)."""
  return {k: jnp.asarray(v) for k, v in ss.decode(space, np.asarray(genes)).items()}
