"""The MAML paper's networks: the 1-40-40-1 sinusoid MLP and the Conv-4 image backbone."""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from metanas.models import conv


class MLP(nn.Module):
  """ReLU MLP; `MLP((40, 40), 1)` is the MAML sinusoid regressor. Input [batch, d_in]."""
  hidden: Sequence[int] = (40, 40)
  out: int = 1

  @nn.compact
  def __call__(self, x):
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    return nn.Dense(self.out)(x)


class Conv4(nn.Module):
  """Four [conv3x3 -> batch-stat norm -> ReLU -> downsample] blocks and a linear head.

  Omniglot (MAML paper): 64 filters, stride-2 convolutions instead of pooling.
  Mini-ImageNet: 32 filters, 2x2 max-pooling.

  Input [batch, height, width, channels]; output logits [batch, num_classes].
  """
  num_classes: int
  filters: int = 64
  num_blocks: int = 4
  downsample: str = "stride"  # "stride" | "maxpool"
  conv_impl: str = "lax"

  @nn.compact
  def __call__(self, x):
    for _ in range(self.num_blocks):
      stride = 2 if self.downsample == "stride" else 1
      x = conv.Conv(self.filters, 3, stride=stride, impl=self.conv_impl)(x)
      x = nn.relu(conv.BatchStatNorm()(x))
      if self.downsample == "maxpool":
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
    x = jnp.reshape(x, (x.shape[0], -1))
    return nn.Dense(self.num_classes)(x)
