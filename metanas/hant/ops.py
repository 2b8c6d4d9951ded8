"""Candidate operations for HANT (arXiv 2107.10624, Sec. 3.1): a registry `name -> constructor`.

Every candidate maps a layer input [batch, h, w, c_in] to the layer output [batch, ceil(h/s),
ceil(w/s), c_out] (post-ReLU, like the teacher's conv + ReLU layers), so any candidate can replace
the teacher's operation in that layer. A candidate is a short list of primitive stages
(convolutions, possibly grouped / depthwise / dilated / factorised, and pooling) plus an optional
residual connection; `init`, `apply` and the costs are derived generically from the stages.

Names encode the hyper-parameters, e.g. `conv_k3`, `dws_k5_d2` (depthwise-separable 5x5 dilated
2), `ir_e6_k7` (inverted residual, expansion 6, kernel 7), `bn_r4_k3` (bottleneck, reduction 4),
`gc_g4_k5` (grouped conv, 4 groups), `lr_r2_k3` (low-rank conv), `fac_k5` (5x1 then 1x5),
`pool_max_k3` (pool + 1x1), `skip` (identity).
"""

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from metanas.models import conv as conv_lib


@dataclasses.dataclass(frozen=True)
class Conv:
  """One convolution stage (+ bias, + optional ReLU)."""
  kh: int
  kw: int
  c_out: int
  stride: int = 1
  groups: int = 1
  dilation: int = 1
  relu: bool = True


@dataclasses.dataclass(frozen=True)
class Pool:
  """Max or average pooling stage ('SAME' padding)."""
  kind: str
  k: int
  stride: int


@dataclasses.dataclass(frozen=True)
class Op:
  """A concrete candidate for one layer: stages plus an optional residual from the input."""
  name: str
  c_in: int
  c_out: int
  stride: int
  stages: tuple
  residual: bool = False


def _group_conv(x, kernel, stride, groups, dilation, impl):
  """'SAME' NHWC convolution with groups and dilation.

  Args:
    x: [batch, h, w, c_in].
    kernel: [kh, kw, c_in // groups, c_out] (lax HWIO layout with feature groups).
    stride, groups, dilation: as in `lax.conv_general_dilated`.
    impl: "lax" (XLA convolution), "taps" (shifted slices + matmuls / products, whose gradients
      run much faster on CPU for grouped and depthwise convs) or "fast" (taps, except XLA for dense
      dilated convs; the training choice on CPU).

  Returns:
    [batch, ceil(h / stride), ceil(w / stride), c_out].
  """
  kh, kw, cg, c_out = kernel.shape
  c_in = x.shape[-1]
  if impl == "lax" or (impl == "fast" and groups == 1 and dilation > 1):
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), "SAME", rhs_dilation=(dilation, dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
  if groups == 1 and dilation == 1:
    return conv_lib.conv2d(x, kernel, stride, "SAME", impl="im2col")
  n, h, w, _ = x.shape
  ekh, ekw = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
  ph, pw = conv_lib._same_padding(h, ekh, stride), conv_lib._same_padding(w, ekw, stride)  # pylint: disable=protected-access
  xp = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
  oh, ow = -(-h // stride), -(-w // stride)
  out = 0.0
  depthwise = groups == c_in and cg == 1
  for i in range(kh):
    for j in range(kw):
      sl = lax.slice(xp, (0, i * dilation, j * dilation, 0),
                     (n, i * dilation + (oh - 1) * stride + 1, j * dilation + (ow - 1) * stride + 1,
                      c_in), (1, stride, stride, 1))
      k = kernel[i, j]  # [c_in // groups, c_out]
      if depthwise:  # c_out = m * c_in; output channel o reads input channel o // m.
        m = c_out // c_in
        out = out + jnp.repeat(sl, m, axis=-1) * k[0]
      elif groups == 1:
        out = out + sl @ k
      else:
        kg = k.reshape(cg, groups, c_out // groups).transpose(1, 0, 2)
        y = jnp.einsum("nhwgc,gcd->nhwgd", sl.reshape(n, oh, ow, groups, cg), kg)
        out = out + y.reshape(n, oh, ow, c_out)
  return out


def _pool(x, kind, k, stride):
  pad = [(0, 0)] + [conv_lib._same_padding(s, k, stride) for s in x.shape[1:3]] + [(0, 0)]  # pylint: disable=protected-access
  if kind == "max":
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, k, k, 1), (1, stride, stride, 1), pad)
  total = lax.reduce_window(x, 0.0, lax.add, (1, k, k, 1), (1, stride, stride, 1), pad)
  count = lax.reduce_window(jnp.ones_like(x[..., :1]), 0.0, lax.add, (1, k, k, 1),
                            (1, stride, stride, 1), pad)
  return total / count


def init(op: Op, rng: jax.Array) -> list:
  """He-normal kernels and zero biases, one dict per conv stage (None for pooling stages)."""
  params, c = [], op.c_in
  for i, st in enumerate(op.stages):
    if isinstance(st, Pool):
      params.append(None)
      continue
    fan_in = st.kh * st.kw * (c // st.groups)
    std = math.sqrt(2.0 / fan_in) if st.relu else math.sqrt(1.0 / fan_in)
    kernel = std * jax.random.normal(jax.random.fold_in(rng, i),
                                     (st.kh, st.kw, c // st.groups, st.c_out))
    params.append({"kernel": kernel, "bias": jnp.zeros((st.c_out,))})
    c = st.c_out
  return params


def apply(op: Op, params: list, x: jax.Array, impl: str = "lax") -> jax.Array:
  """Runs the candidate: [batch, h, w, c_in] -> [batch, h / stride, w / stride, c_out]."""
  y = x
  for st, p in zip(op.stages, params):
    if isinstance(st, Pool):
      y = _pool(y, st.kind, st.k, st.stride)
      continue
    y = _group_conv(y, p["kernel"], st.stride, st.groups, st.dilation, impl) + p["bias"]
    if st.relu:
      y = jax.nn.relu(y)
  if op.residual:
    y = jax.nn.relu(y + x)
  return y


def cost(op: Op, h: int, w: int) -> dict:
  """Per-example multiply-adds (x2 = FLOPs), parameters and activation bytes of the candidate."""
  macs, n_params, act, c = 0, 0, h * w * op.c_in, op.c_in
  for st in op.stages:
    s = st.stride
    h, w = -(-h // s), -(-w // s)
    if isinstance(st, Conv):
      macs += h * w * st.c_out * (c // st.groups) * st.kh * st.kw
      n_params += st.kh * st.kw * (c // st.groups) * st.c_out + st.c_out
      c = st.c_out
    act += h * w * c
  return {"flops": 2.0 * macs, "params": n_params, "act_bytes": 4.0 * act}


def rf_growth(op: Op) -> int:
  """Pixels (of the op's input grid) the op adds to the receptive field, along its narrower axis.

  Stages in sequence: a k x k stage with dilation d adds (k - 1) d times the spacing of its input
  (the product of the earlier stages' strides). A residual (or `skip`) adds nothing to the widest
  path. The receptive field of a layered network is additive in these (`network.receptive_field`).
  """
  grow_h = grow_w = 0
  jump = 1
  for st in op.stages:
    if isinstance(st, Pool):
      kh = kw = (st.k - 1)
    else:
      kh, kw = (st.kh - 1) * st.dilation, (st.kw - 1) * st.dilation
    grow_h += kh * jump
    grow_w += kw * jump
    jump *= st.stride
  return min(grow_h, grow_w)


# ----- Registry -----------------------------------------------------------------------------------

def _conv(k, d=1):
  def make(ci, co, s):
    return (Conv(k, k, co, s, dilation=d),)
  return make


def _fac(k):
  def make(ci, co, s):
    return (Conv(k, 1, co, s), Conv(1, k, co))
  return make


def _dws(k, d=1):
  def make(ci, co, s):
    return (Conv(k, k, ci, s, groups=ci, dilation=d), Conv(1, 1, co))
  return make


def _dw(k):
  def make(ci, co, s):
    if co % ci:
      return None
    return (Conv(k, k, co, s, groups=ci),)
  return make


def _ir(e, k):
  def make(ci, co, s):
    hidden = ci * e
    stages = () if e == 1 else (Conv(1, 1, hidden),)
    return stages + (Conv(k, k, hidden, s, groups=hidden), Conv(1, 1, co, relu=False))
  return make


def _bottleneck(r, k, depthwise=False):
  def make(ci, co, s):
    mid = max(co // r, 1)
    return (Conv(1, 1, mid), Conv(k, k, mid, s, groups=mid if depthwise else 1), Conv(1, 1, co))
  return make


def _grouped(g, k):
  def make(ci, co, s):
    if ci % g or co % g:
      return None
    return (Conv(k, k, co, s, groups=g),)
  return make


def _lowrank(r, k):
  def make(ci, co, s):
    return (Conv(k, k, max(co // r, 1), s, relu=False), Conv(1, 1, co))
  return make


def _pool_proj(kind):
  def make(ci, co, s):
    return (Pool(kind, 3, s), Conv(1, 1, co))
  return make


def _skip(ci, co, s):
  return () if (ci == co and s == 1) else None


REGISTRY: dict[str, Callable] = {}
for _k in (1, 3, 5, 7):
  REGISTRY[f"conv_k{_k}"] = _conv(_k)
for _d in (2, 3):
  REGISTRY[f"conv_k3_d{_d}"] = _conv(3, _d)
for _k in (3, 5, 7):
  REGISTRY[f"fac_k{_k}"] = _fac(_k)
for _k in (3, 5, 7):
  for _d in (1, 2):
    REGISTRY[f"dws_k{_k}_d{_d}"] = _dws(_k, _d)
for _k in (3, 5):
  REGISTRY[f"dw_k{_k}"] = _dw(_k)
for _e in (1, 2, 3, 4, 6):
  for _k in (3, 5, 7):
    REGISTRY[f"ir_e{_e}_k{_k}"] = _ir(_e, _k)
for _r in (2, 4, 8):
  for _k in (3, 5):
    REGISTRY[f"bn_r{_r}_k{_k}"] = _bottleneck(_r, _k)
for _r in (2, 4):
  for _k in (3, 5):
    REGISTRY[f"bndw_r{_r}_k{_k}"] = _bottleneck(_r, _k, depthwise=True)
for _g in (2, 4, 8):
  for _k in (3, 5):
    REGISTRY[f"gc_g{_g}_k{_k}"] = _grouped(_g, _k)
for _r in (2, 4):
  for _k in (3, 5):
    REGISTRY[f"lr_r{_r}_k{_k}"] = _lowrank(_r, _k)
for _kind in ("avg", "max"):
  REGISTRY[f"pool_{_kind}_k3"] = _pool_proj(_kind)
REGISTRY["skip"] = _skip


def make_op(name: str, c_in: int, c_out: int, stride: int) -> Op | None:
  """The candidate `name` for a layer (c_in -> c_out, stride), or None if shapes do not allow it."""
  if name not in REGISTRY:
    raise ValueError(f"Unknown candidate op {name!r}; known ops: {', '.join(REGISTRY)} "
                     "(metanas/hant/ops.py REGISTRY).")
  stages = REGISTRY[name](c_in, c_out, stride)
  if stages is None:
    return None
  residual = name.startswith("ir_") and c_in == c_out and stride == 1
  return Op(name, c_in, c_out, stride, tuple(stages), residual)


def candidates(names, c_in: int, c_out: int, stride: int) -> list[Op]:
  """All ops from `names` (or every registered op for names=None) that fit the layer's shapes."""
  names = list(REGISTRY) if names is None else list(names)
  ops = [make_op(n, c_in, c_out, stride) for n in names]
  return [op for op in ops if op is not None]
