"""Layered CNNs whose swappable layers are candidate ops (HANT, arXiv 2107.10624, Sec. 3).

A network is a fixed stem (3x3 conv + ReLU), a sequence of swappable layers and a fixed head
(optional 1x1 conv, global average pool, dense). Each layer is described by `Layer` (shapes) and
runs one op from `metanas.hant.ops`; a network is a tuple of op names, one per layer. The teacher
is the same network with its original ops (plain 3x3 convs for the Fashion-MNIST CNN, MBConv for
EfficientNet). Parameters are plain pytrees: {"stem", "layers": [per-layer op params], "head"}.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from metanas.hant import ops as ops_lib


@dataclasses.dataclass(frozen=True)
class Layer:
  """Shapes of one swappable layer: input [h, w, c_in] -> output [h / stride, w / stride, c_out]."""
  c_in: int
  c_out: int
  stride: int
  h: int
  w: int

  @property
  def signature(self) -> str:
    return f"{self.h}x{self.w}x{self.c_in}-{self.c_out}s{self.stride}"


@dataclasses.dataclass(frozen=True)
class Arch:
  """A whole architecture: input shape, stem width, layers, head, and the teacher's ops."""
  image_hw: int
  image_c: int
  stem_c: int
  stem_stride: int
  layers: tuple
  teacher_ops: tuple
  head_c: int
  num_classes: int


def cnn_arch(widths=(16, 32, 64), depths=(3, 3, 3), image_hw: int = 28, image_c: int = 1,
             num_classes: int = 10, width_mult: float = 1.0) -> Arch:
  """The Fashion-MNIST teacher: stem + sum(depths) 3x3 conv layers, stride 2 at each new stage.

  With the defaults: 1 stem conv + 8 swappable conv layers + dense head (9 conv layers).
  """
  widths = tuple(max(4, int(round(w * width_mult / 4)) * 4) for w in widths)
  layers, c, hw = [], widths[0], image_hw
  for stage, (wd, dp) in enumerate(zip(widths, depths)):
    for i in range(dp):
      if stage == 0 and i == 0:
        continue  # The stem is this stage's first conv.
      stride = 2 if (i == 0 and stage > 0) else 1
      layers.append(Layer(c, wd, stride, hw, hw))
      hw, c = -(-hw // stride), wd
  return Arch(image_hw, image_c, widths[0], 1, tuple(layers), ("conv_k3",) * len(layers), 0,
              num_classes)


# EfficientNet-B0 stages (expansion, kernel, stride, channels, repeats) and B0..B4 scaling
# (width, depth, resolution), Tan & Le 2019, Table 1 / Sec. 3.3. Squeeze-excite is omitted.
_B0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
              (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
EFFICIENTNET_SCALING = {"b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 260),
                        "b3": (1.2, 1.4, 300), "b4": (1.4, 1.8, 380)}


def _round_channels(c: float) -> int:
  return max(8, int(c + 4) // 8 * 8)


def efficientnet_arch(variant: str = "b0", num_classes: int = 1000, image_hw: int | None = None,
                      width_mult: float = 1.0, num_stages: int = 7) -> Arch:
  """EfficientNet-B0..B4 as an `Arch` (MBConv layers = `ir_e{e}_k{k}` ops, without SE).

  `num_stages` < 7 keeps only the first MBConv stages (tiny stand-ins for tests).
  """
  if variant not in EFFICIENTNET_SCALING:
    raise ValueError(f"Unknown EfficientNet variant {variant!r}; choose one of "
                     f"{', '.join(EFFICIENTNET_SCALING)}.")
  wm, dm, res = EFFICIENTNET_SCALING[variant]
  wm *= width_mult
  hw = image_hw or res
  stem = _round_channels(32 * wm)
  c, h = stem, -(-hw // 2)
  layers, teacher = [], []
  for e, k, s, ch, reps in _B0_STAGES[:num_stages]:
    co = _round_channels(ch * wm)
    for i in range(int(math.ceil(reps * dm))):
      stride = s if i == 0 else 1
      layers.append(Layer(c, co, stride, h, h))
      teacher.append(f"ir_e{e}_k{k}")
      c, h = co, -(-h // stride)
  return Arch(hw, 3, stem, 2, tuple(layers), tuple(teacher), _round_channels(1280 * wm),
              num_classes)


def layer_ops(arch: Arch, ops: tuple) -> list:
  """The concrete `ops_lib.Op` for every layer; errors name a layer whose shapes reject the op."""
  if len(ops) != len(arch.layers):
    raise ValueError(f"Got {len(ops)} ops for {len(arch.layers)} layers.")
  out = []
  for i, (name, layer) in enumerate(zip(ops, arch.layers)):
    op = ops_lib.make_op(name, layer.c_in, layer.c_out, layer.stride)
    if op is None:
      raise ValueError(f"Op {name!r} does not fit layer {i} ({layer.signature}).")
    out.append(op)
  return out


def layer_jumps(arch: Arch) -> list[int]:
  """Spacing, in input pixels, of every swappable layer's input grid (the stem's and the earlier
  layers' strides multiplied)."""
  jumps, j = [], arch.stem_stride
  for layer in arch.layers:
    jumps.append(j)
    j *= layer.stride
  return jumps


def rf_contributions(arch: Arch, names) -> list[np.ndarray]:
  """Pixels (of the input image) each candidate adds to the network's receptive field.

  names: per layer, the candidate op names. Returns per layer an int array, one entry per name
  (the op's `ops_lib.rf_growth` times the spacing of the layer's input grid, `layer_jumps`).
  """
  out = []
  for i, (ns, layer, jump) in enumerate(zip(names, arch.layers, layer_jumps(arch))):
    ops = [ops_lib.make_op(n, layer.c_in, layer.c_out, layer.stride) for n in ns]
    for n, op in zip(ns, ops):
      if op is None:
        raise ValueError(f"Op {n!r} does not fit layer {i} ({layer.signature}).")
    out.append(np.array([ops_lib.rf_growth(op) * jump for op in ops], int))
  return out


STEM_RF = 3  # The stem's 3x3 conv.


def receptive_field(arch: Arch, ops: tuple) -> int:
  """Receptive field (input pixels, narrower axis) of one output unit of the last layer: the stem's
  3x3 conv plus what every layer's op adds (`rf_contributions`; the head's 1x1 conv and global
  pool add none). The Fashion-MNIST teacher's is 37; a network of 1x1 convs sees only the stem's 3
  pixels."""
  return STEM_RF + sum(ops_lib.rf_growth(op) * jump
                       for op, jump in zip(layer_ops(arch, ops), layer_jumps(arch)))


def default_rf_floor(arch: Arch) -> int:
  """min(input size, the teacher's receptive field): every output unit of the student sees the
  whole image, or as much of it as the teacher's do."""
  return min(arch.image_hw, receptive_field(arch, arch.teacher_ops))


def init(arch: Arch, ops: tuple, rng: jax.Array) -> dict:
  """Parameters {"stem", "layers", "head"} of the network running `ops`."""
  r_stem, r_layers, r_head, r_dense = jax.random.split(rng, 4)
  stem = ops_lib.make_op("conv_k3", arch.image_c, arch.stem_c, arch.stem_stride)
  layers = [ops_lib.init(op, jax.random.fold_in(r_layers, i))
            for i, op in enumerate(layer_ops(arch, ops))]
  c_last = arch.layers[-1].c_out if arch.layers else arch.stem_c
  head = {}
  if arch.head_c:
    head["conv"] = ops_lib.init(ops_lib.make_op("conv_k1", c_last, arch.head_c, 1), r_head)
    c_last = arch.head_c
  head["dense"] = {"w": jax.random.normal(r_dense, (c_last, arch.num_classes)) / math.sqrt(c_last),
                   "b": jnp.zeros((arch.num_classes,))}
  return {"stem": ops_lib.init(stem, r_stem), "layers": layers, "head": head}


def stem_apply(arch: Arch, params: dict, images: jax.Array, impl: str = "lax") -> jax.Array:
  """[batch, hw, hw, image_c] images (float, normalised) -> input of layer 0."""
  stem = ops_lib.make_op("conv_k3", arch.image_c, arch.stem_c, arch.stem_stride)
  return ops_lib.apply(stem, params["stem"], images, impl)


def head_apply(arch: Arch, params: dict, x: jax.Array, impl: str = "lax") -> jax.Array:
  """Output of the last layer [batch, h, w, c] -> logits [batch, num_classes]."""
  if arch.head_c:
    c = arch.layers[-1].c_out if arch.layers else arch.stem_c
    x = ops_lib.apply(ops_lib.make_op("conv_k1", c, arch.head_c, 1), params["head"]["conv"], x,
                      impl)
  x = jnp.mean(x, axis=(1, 2))
  return x @ params["head"]["dense"]["w"] + params["head"]["dense"]["b"]


def apply_from(arch: Arch, ops: tuple, params: dict, x: jax.Array, start: int,
               impl: str = "lax") -> jax.Array:
  """Runs layers start.. and the head on the input of layer `start` -> logits."""
  concrete = layer_ops(arch, ops)
  for i in range(start, len(arch.layers)):
    x = ops_lib.apply(concrete[i], params["layers"][i], x, impl)
  return head_apply(arch, params, x, impl)


def apply(arch: Arch, ops: tuple, params: dict, images: jax.Array, impl: str = "lax") -> jax.Array:
  """Images [batch, hw, hw, c] -> logits [batch, num_classes]."""
  return apply_from(arch, ops, params, stem_apply(arch, params, images, impl), 0, impl)


def activations(arch: Arch, ops: tuple, params: dict, images: jax.Array,
                impl: str = "lax") -> list:
  """Inputs of every layer and the last output: L + 1 arrays [batch, h_i, w_i, c_i]."""
  concrete = layer_ops(arch, ops)
  xs = [stem_apply(arch, params, images, impl)]
  for i, op in enumerate(concrete):
    xs.append(ops_lib.apply(op, params["layers"][i], xs[-1], impl))
  return xs


def costs(arch: Arch, ops: tuple) -> dict:
  """Per-example FLOPs and parameter count of the swappable layers (stem/head excluded)."""
  total = {"flops": 0.0, "params": 0}
  for op, layer in zip(layer_ops(arch, ops), arch.layers):
    c = ops_lib.cost(op, layer.h, layer.w)
    total["flops"] += c["flops"]
    total["params"] += c["params"]
  return total
