"""Candidate operations of the cell (DARTS/PARSEC op set), as pure `(params, x) -> y` functions.

All ops map [batch, H, W, C] -> [batch, H, W, C] (stride 1, SAME padding) so that any of them can
sit on any edge. Each op is one or two XLA primitives (grouped conv, reduce_window), which keeps
the compiled switch over all ops small: tap-by-tap versions compiled for minutes. Normalisation uses
the statistics of the current batch without affine parameters, as in DARTS's search phase, so a
network is a pure function of (params, inputs). Simplification vs DARTS: each separable conv is
applied once, not twice.
"""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from metanas.models import conv as conv_lib

OpFn = Callable[[dict, jax.Array], jax.Array]


def batch_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Normalises each channel by its batch statistics; x [B, H, W, C]."""
  mean = jnp.mean(x, axis=(0, 1, 2), keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)


def depthwise_conv(x: jax.Array, kernel: jax.Array, dilation: int = 1) -> jax.Array:
  """Depthwise conv, SAME padding; x [B, H, W, C], kernel [k, k, C]."""
  c = x.shape[-1]
  return jax.lax.conv_general_dilated(
      x, kernel[:, :, None, :], (1, 1), "SAME", rhs_dilation=(dilation, dilation),
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)


def max_pool(x: jax.Array, k: int = 3) -> jax.Array:
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, 1, 1, 1), "SAME")


def avg_pool(x: jax.Array, k: int = 3) -> jax.Array:
  """Average over the window, not counting padding (as DARTS's count_include_pad=False)."""
  h, w = x.shape[1], x.shape[2]
  p = (k - 1) // 2
  ones = np.pad(np.ones((h, w), np.float32), p)
  count = sum(ones[i:i + h, j:j + w] for i in range(k) for j in range(k))[None, :, :, None]
  total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, k, k, 1), (1, 1, 1, 1), "SAME")
  return total / count


def _sep(k: int, dilation: int) -> OpFn:
  def fn(p, x):
    y = depthwise_conv(jax.nn.relu(x), p["dw"], dilation)
    return batch_norm(y @ p["pw"])
  return fn


def _conv(k: int, impl: str = "lax") -> OpFn:
  def fn(p, x):
    return batch_norm(conv_lib.conv2d(jax.nn.relu(x), p["w"], 1, "SAME", impl))
  return fn


OPS: dict[str, OpFn] = {
    "sep_conv_3x3": _sep(3, 1),
    "sep_conv_5x5": _sep(5, 1),
    "sep_conv_7x7": _sep(7, 1),
    "dil_conv_3x3": _sep(3, 2),
    "dil_conv_5x5": _sep(5, 2),
    "dil_conv_7x7": _sep(7, 2),
    "conv_1x1": _conv(1),
    "conv_3x3": _conv(3),
    "max_pool_3x3": lambda p, x: batch_norm(max_pool(x, 3)),
    "avg_pool_3x3": lambda p, x: batch_norm(avg_pool(x, 3)),
    "skip_connect": lambda p, x: x,
}


def _kernel_size(name: str) -> int:
  return int(name.rsplit("_", 1)[1].split("x")[0])


def init_op(name: str, rng: jax.Array, channels: int) -> dict:
  """Parameters of one op (empty dict for parameter-free ops)."""
  if name.startswith(("sep_conv", "dil_conv")):
    k = _kernel_size(name)
    k1, k2 = jax.random.split(rng)
    return {"dw": jax.random.normal(k1, (k, k, channels)) / k,
            "pw": jax.random.normal(k2, (channels, channels)) / np.sqrt(channels)}
  if name.startswith("conv_"):
    k = _kernel_size(name)
    return {"w": jax.random.normal(rng, (k, k, channels, channels)) / np.sqrt(k * k * channels)}
  if name in OPS:
    return {}
  raise ValueError(f"Unknown op {name!r}; choose from {sorted(OPS)}.")


def op_mflops(name: str, height: int, width: int, channels: int) -> float:
  """Multiply-adds (millions) of one op on one example, for the optional cost term."""
  hw = height * width
  if name.startswith(("sep_conv", "dil_conv")):
    k = _kernel_size(name)
    return hw * channels * (k * k + channels) / 1e6
  if name.startswith("conv_"):
    k = _kernel_size(name)
    return hw * channels * channels * k * k / 1e6
  if name.endswith("pool_3x3"):
    return hw * channels * 9 / 1e6
  return 0.0
