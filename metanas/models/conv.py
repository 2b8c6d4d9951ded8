"""2-D convolution with selectable lowering, and a batch-statistics normalisation.

XLA's CPU convolution (and especially its second-order gradients) is slow, so the same convolution
can be lowered three ways, all with identical parameters `kernel [kh, kw, c_in, c_out]`:

- "lax":     `lax.conv_general_dilated` (best on GPU/TPU).
- "im2col":  shifted strided slices concatenated into patches, then one matmul. Its gradients are
             slices, pads and matmuls, which XLA:CPU runs fast, also at second order.
- "taps":    one matmul per kernel tap on a shifted strided slice, summed (no patch tensor).
- "patches": `lax.conv_general_dilated_patches` + matmul.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

CONV_IMPLS = ("lax", "im2col", "taps", "patches")


def _same_padding(size: int, k: int, stride: int) -> tuple[int, int]:
  out = -(-size // stride)
  total = max((out - 1) * stride + k - size, 0)
  return total // 2, total - total // 2


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: str = "SAME",
           impl: str = "lax") -> jax.Array:
  """NHWC convolution.

  Args:
    x: [batch, height, width, c_in].
    kernel: [kh, kw, c_in, c_out].
    stride: the same stride along both spatial axes.
    padding: "SAME" or "VALID".
    impl: one of CONV_IMPLS; all give the same result up to float rounding.

  Returns:
    [batch, out_height, out_width, c_out].
  """
  kh, kw, c_in, c_out = kernel.shape
  if impl == "lax":
    return lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if impl == "patches":
    patches = lax.conv_general_dilated_patches(
        x, (kh, kw), (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # Patch features are ordered (c_in, kh, kw).
    w = jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c_in * kh * kw, c_out)
    return patches @ w
  if impl not in ("im2col", "taps"):
    raise ValueError(f"Unknown conv impl {impl!r}; choose one of {CONV_IMPLS}.")
  _, h, w_, _ = x.shape
  if padding == "SAME":
    ph, pw = _same_padding(h, kh, stride), _same_padding(w_, kw, stride)
    x = jnp.pad(x, ((0, 0), ph, pw, (0, 0)))
  elif padding != "VALID":
    raise ValueError(f"Unknown padding {padding!r}.")
  hp, wp = x.shape[1], x.shape[2]
  oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1
  cols = [lax.slice(x, (0, i, j, 0), (x.shape[0], i + (oh - 1) * stride + 1,
                                      j + (ow - 1) * stride + 1, c_in), (1, stride, stride, 1))
          for i in range(kh) for j in range(kw)]
  if impl == "taps":
    return sum(col @ kernel[i // kw, i % kw] for i, col in enumerate(cols))
  patches = jnp.concatenate(cols, axis=-1)  # Features ordered (kh, kw, c_in).
  return patches @ kernel.reshape(kh * kw * c_in, c_out)


class Conv(nn.Module):
  """`nn.Conv`-compatible parameters with a selectable lowering (see module doc)."""
  features: int
  kernel_size: int = 3
  stride: int = 1
  padding: str = "SAME"
  impl: str = "lax"
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
    y = conv2d(x, kernel, self.stride, self.padding, self.impl)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return y


class BatchStatNorm(nn.Module):
  """Normalisation by the statistics of the current batch, with a learnable scale and shift.

  This is MAML's choice for batch norm inside the inner loop: statistics always come from the batch
  being processed (the support set during adaptation, the query set when evaluating) and no running
  averages are kept, so the model stays a pure function of (params, inputs) and the same code runs
  at meta-train and meta-test time. Scale and shift are adapted in the inner loop like any weight.
  """
  epsilon: float = 1e-5
  axes: Sequence[int] = (0, 1, 2)

  @nn.compact
  def __call__(self, x):
    mean = jnp.mean(x, axis=tuple(self.axes), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=tuple(self.axes), keepdims=True)
    y = (x - mean) * lax.rsqrt(var + self.epsilon)
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    return y * scale + bias
