"""The H-Meta-NAS search space: gene encoding, decoding and per-layer cost keys.

An architecture is a Conv-N few-shot backbone (Zhao et al., "Rapid Model Architecture Adaption for
Meta-Learning", NeurIPS 2022, arXiv 2109.04925, Sec. 3). Its choices are

- **Global Expansion** (GE): a multiplier `g` of `base_width` applied to every layer, so capacity can
  change drastically with one gene;
- **Adaptive Number of Layers** (ANL): the depth `d`; blocks after the d-th are dropped;
- per-layer kernel size `k_l` in {3, 5} (weight-shared: the 3x3 kernel is the centre of the 5x5);
- per-layer width ratio `r_l`, so layer l has `round(base_width * g * r_l)` channels.

Genes are small integers (indices into the choice tuples), laid out as
`[g_idx, depth_idx, k_idx_0..k_idx_{L-1}, r_idx_0..r_idx_{L-1}]` with L = max depth, so a population
is an int32 array [pop, num_genes]. Genes of dropped layers do not matter; `canonical` zeroes them so
that equal networks have equal genes.

Every layer is a block [conv k x k, stride 2, SAME] -> batch-stat norm -> ReLU; the head is global
average pooling and a dense layer, so its input width is the last block's width at every depth.
"""

import dataclasses
import itertools

import numpy as np


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """Choices of the supernet (defaults: the Omniglot `:cpu` space).

  Attributes:
    max_depth: L, the number of blocks of the largest network.
    depth_choices: allowed depths (<= max_depth).
    kernel_choices: allowed kernel sizes (odd, <= 5).
    width_ratios: per-layer width ratios r_l.
    global_multipliers: Global Expansion multipliers g.
    base_width: channels of a layer with g = r = 1.
    in_channels: image channels (1 Omniglot, 3 Mini-ImageNet).
    image_size: input height = width.
    num_classes: n-way.
  """
  max_depth: int = 5
  depth_choices: tuple[int, ...] = (2, 3, 4, 5)
  kernel_choices: tuple[int, ...] = (3, 5)
  width_ratios: tuple[float, ...] = (0.5, 0.75, 1.0)
  global_multipliers: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0)
  base_width: int = 16
  in_channels: int = 1
  image_size: int = 28
  num_classes: int = 5

  def __post_init__(self):
    if not self.depth_choices or max(self.depth_choices) > self.max_depth or min(
        self.depth_choices) < 1:
      raise ValueError(f"depth_choices {self.depth_choices} must lie in 1..max_depth="
                       f"{self.max_depth}.")
    if any(k % 2 == 0 or k > 5 or k < 1 for k in self.kernel_choices):
      raise ValueError(f"kernel_choices {self.kernel_choices} must be odd and <= 5.")
    if min(self.channel_table().ravel()) < 1:
      raise ValueError("Some width choice rounds to 0 channels; raise base_width.")

  @property
  def num_genes(self) -> int:
    return 2 + 2 * self.max_depth

  @property
  def max_kernel(self) -> int:
    return 5

  def channel_table(self) -> np.ndarray:
    """int [num_multipliers, num_ratios]: channels for each (g, r) choice."""
    return np.array([[max(1, int(round(self.base_width * g * r))) for r in self.width_ratios]
                     for g in self.global_multipliers], np.int32)

  @property
  def max_channels(self) -> int:
    return int(self.channel_table().max())

  def gene_sizes(self) -> np.ndarray:
    """int [num_genes]: number of choices of each gene."""
    return np.array([len(self.global_multipliers), len(self.depth_choices)]
                    + [len(self.kernel_choices)] * self.max_depth
                    + [len(self.width_ratios)] * self.max_depth, np.int32)

  def spatial_sizes(self) -> list[int]:
    """Input height of each block (stride-2 SAME convolutions): [L + 1] incl. the final map."""
    sizes = [self.image_size]
    for _ in range(self.max_depth):
      sizes.append(-(-sizes[-1] // 2))
    return sizes


def canonical(space: SearchSpace, genes: np.ndarray) -> np.ndarray:
  """Zeroes the genes of dropped layers. genes [..., num_genes] -> same shape."""
  genes = np.array(genes, np.int32, copy=True)
  depth = np.asarray(space.depth_choices)[genes[..., 1]]
  layer = np.arange(space.max_depth)
  dropped = layer >= depth[..., None]
  L = space.max_depth
  genes[..., 2:2 + L] = np.where(dropped, 0, genes[..., 2:2 + L])
  genes[..., 2 + L:] = np.where(dropped, 0, genes[..., 2 + L:])
  return genes


def random_genes(space: SearchSpace, rng: np.random.Generator, n: int) -> np.ndarray:
  """n uniformly sampled architectures (uniform over each gene), int32 [n, num_genes]."""
  sizes = space.gene_sizes()
  return canonical(space, (rng.random((n, sizes.size)) * sizes).astype(np.int32))


def largest(space: SearchSpace) -> np.ndarray:
  """Genes of the largest network (max multiplier, depth, kernels and ratios), [num_genes]."""
  g = np.argmax(space.global_multipliers)
  d = np.argmax(space.depth_choices)
  k = np.argmax(space.kernel_choices)
  r = np.argmax(space.width_ratios)
  return np.array([g, d] + [k] * space.max_depth + [r] * space.max_depth, np.int32)


def smallest(space: SearchSpace) -> np.ndarray:
  """Genes of the smallest network, [num_genes]."""
  g = np.argmin(space.global_multipliers)
  d = np.argmin(space.depth_choices)
  k = np.argmin(space.kernel_choices)
  r = np.argmin(space.width_ratios)
  return canonical(space, np.array([g, d] + [k] * space.max_depth + [r] * space.max_depth,
                                   np.int32))


def decode(space: SearchSpace, genes: np.ndarray) -> dict[str, np.ndarray]:
  """Genes -> the numbers the supernet reads (works for one arch or a batch).

  Args:
    genes: int [..., num_genes].

  Returns:
    dict with depth int32 [...], kernel int32 [..., L], channels int32 [..., L] (channels and
    kernels of dropped layers are those of their genes; the supernet ignores them).
  """
  genes = np.asarray(genes, np.int32)
  L = space.max_depth
  table = space.channel_table()
  g = genes[..., 0]
  return {
      "depth": np.asarray(space.depth_choices, np.int32)[genes[..., 1]],
      "kernel": np.asarray(space.kernel_choices, np.int32)[genes[..., 2:2 + L]],
      "channels": table[g[..., None], genes[..., 2 + L:]].astype(np.int32),
  }


def layers(space: SearchSpace, genes: np.ndarray) -> list[tuple[int, int, int, int]]:
  """The active blocks of one architecture as (kernel, c_in, c_out, input_size) tuples."""
  arch = decode(space, genes)
  sizes = space.spatial_sizes()
  out, c_in = [], space.in_channels
  for l in range(int(arch["depth"])):
    k, c = int(arch["kernel"][l]), int(arch["channels"][l])
    out.append((k, c_in, c, sizes[l]))
    c_in = c
  return out


def layer_key(kernel: int, c_in: int, c_out: int, size: int) -> str:
  """Latency-table key of one block (conv + norm + ReLU at stride 2)."""
  return f"conv_k{kernel}_cin{c_in}_cout{c_out}_hw{size}"


def head_key(c_in: int, size: int, num_classes: int) -> str:
  """Latency-table key of the head (global average pool over size x size, then dense)."""
  return f"head_cin{c_in}_hw{size}_out{num_classes}"


DISPATCH_KEY = "dispatch"


def cost_keys(space: SearchSpace, genes: np.ndarray) -> list[str]:
  """Latency-table keys whose sum is the network's latency (paper Sec. 3.3, layer-wise profile):
  its blocks, its head and one per-network dispatch cost."""
  ls = layers(space, genes)
  keys = [layer_key(*l) for l in ls]
  last_c = ls[-1][2]
  keys.append(head_key(last_c, space.spatial_sizes()[len(ls)], space.num_classes))
  keys.append(DISPATCH_KEY)
  return keys


def all_layer_specs(space: SearchSpace) -> list[dict]:
  """Every distinct (block or head) configuration any sub-network can contain, as dicts."""
  table = space.channel_table()
  sizes = space.spatial_sizes()
  specs = {}
  for gi in range(len(space.global_multipliers)):
    chans = sorted(set(table[gi].tolist()))
    for l in range(space.max_depth):
      c_ins = [space.in_channels] if l == 0 else chans
      for k, ci, co in itertools.product(space.kernel_choices, c_ins, chans):
        specs[layer_key(k, ci, co, sizes[l])] = dict(kind="conv", kernel=k, c_in=ci, c_out=co,
                                                     size=sizes[l])
      if l + 1 in space.depth_choices:
        for co in chans:
          specs[head_key(co, sizes[l + 1], space.num_classes)] = dict(
              kind="head", c_in=co, size=sizes[l + 1], num_classes=space.num_classes)
  return [dict(v, key=k) for k, v in sorted(specs.items())]


def macs(space: SearchSpace, genes: np.ndarray) -> int:
  """Multiply-accumulates of one forward pass of one image."""
  total = 0
  sizes = space.spatial_sizes()
  ls = layers(space, genes)
  for l, (k, ci, co, _) in enumerate(ls):
    total += sizes[l + 1] ** 2 * k * k * ci * co
  total += ls[-1][2] * space.num_classes
  return int(total)


def num_params(space: SearchSpace, genes: np.ndarray) -> int:
  """Parameters of the sub-network (conv kernels and biases, norm scale/shift, head)."""
  total = 0
  ls = layers(space, genes)
  for k, ci, co, _ in ls:
    total += k * k * ci * co + 3 * co
  total += ls[-1][2] * space.num_classes + space.num_classes
  return int(total)


def enumerate_all(space: SearchSpace, limit: int = 200_000) -> np.ndarray:
  """All distinct canonical architectures, int32 [n, num_genes] (small spaces only)."""
  sizes = space.gene_sizes()
  if np.prod(sizes.astype(np.float64)) > limit:
    raise ValueError(f"Search space has {np.prod(sizes.astype(np.float64)):.3g} gene settings; "
                     f"enumerate_all is for spaces with at most {limit}.")
  grid = np.array(list(itertools.product(*[range(s) for s in sizes])), np.int32)
  return np.unique(canonical(space, grid), axis=0)


def describe(space: SearchSpace, genes: np.ndarray) -> str:
  """Readable form, e.g. 'g1.5 d3 [k3c24 k5c18 k3c24]'."""
  ls = layers(space, genes)
  g = space.global_multipliers[int(np.asarray(genes)[0])]
  return f"g{g} d{len(ls)} [" + " ".join(f"k{k}c{co}" for k, _, co, _ in ls) + "]"
