"""A DARTS-style cell search space with independent categorical choices (PARSEC, arXiv 1902.05116).

A cell has `num_nodes` intermediate nodes. Node i (0-based) reads two of the 2 + i earlier states
(the two cell inputs, then nodes 0..i-1) and applies one operation to each: edge e = 2 i + s for
input slot s in {0, 1}. An architecture alpha is therefore a pair of integer arrays

  alpha = {"op": int32[num_edges], "inp": int32[num_nodes, 2]},

and the prior p(alpha | pi) of the paper (Sec. 3) is a product of independent categoricals with
logits

  pi = {"op": f32[num_edges, num_ops], "inp": f32[num_nodes, 2, max_inputs]},

where invalid input choices (j >= 2 + i) are masked to -inf. The same pytree holds DARTS's
architecture parameters, so both searches share sampling-free helpers (entropy, argmax).
"""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

# The paper's seven candidate operations, then extras used only by the memory sweep (3/5/7/11 ops).
PAPER_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
             "avg_pool_3x3", "skip_connect")
EXTRA_OPS = ("sep_conv_7x7", "dil_conv_7x7", "conv_1x1", "conv_3x3")
ALL_OPS = PAPER_OPS + EXTRA_OPS

Arch = dict  # {"op": int32[E], "inp": int32[N, 2]}
Logits = dict  # {"op": f32[E, O], "inp": f32[N, 2, M]}

_NEG = -1e9  # Finite "minus infinity": keeps softmax gradients free of NaN.


@dataclasses.dataclass(frozen=True)
class CellSpace:
  """Shape of the search space.

  Attributes:
    num_nodes: intermediate nodes per cell (the paper, like DARTS, uses 4).
    ops: candidate operation names, a subset of ALL_OPS.
  """
  num_nodes: int = 4
  ops: tuple[str, ...] = PAPER_OPS

  def __post_init__(self):
    if self.num_nodes < 1:
      raise ValueError(f"CellSpace.num_nodes must be >= 1, got {self.num_nodes}.")
    unknown = [o for o in self.ops if o not in ALL_OPS]
    if unknown or not self.ops:
      raise ValueError(f"Unknown or empty op list {self.ops!r}; choose from {ALL_OPS}.")

  @property
  def num_edges(self) -> int:
    return 2 * self.num_nodes

  @property
  def num_ops(self) -> int:
    return len(self.ops)

  @property
  def max_inputs(self) -> int:
    return self.num_nodes + 1

  def input_mask(self) -> np.ndarray:
    """bool[num_nodes, 2, max_inputs]: node i may read states 0..i+1."""
    valid = np.arange(self.max_inputs)[None, :] < (np.arange(self.num_nodes)[:, None] + 2)
    return np.repeat(valid[:, None, :], 2, axis=1)

  def num_architectures(self) -> int:
    n = self.num_ops ** self.num_edges
    for i in range(self.num_nodes):
      n *= (i + 2) ** 2
    return n


def uniform_logits(space: CellSpace) -> Logits:
  """pi with every valid choice equally likely (the paper's initialisation)."""
  return {"op": jnp.zeros((space.num_edges, space.num_ops), jnp.float32),
          "inp": jnp.where(space.input_mask(), 0.0, _NEG).astype(jnp.float32)}


def mask_logits(space: CellSpace, logits: Logits) -> Logits:
  """Re-applies the input mask (after an optimiser update or when loading a transferred pi)."""
  return {"op": logits["op"], "inp": jnp.where(space.input_mask(), logits["inp"], _NEG)}


def log_softmax(space: CellSpace, logits: Logits) -> Logits:
  masked = mask_logits(space, logits)
  return jax.tree.map(lambda l: jax.nn.log_softmax(l, axis=-1), masked)


def probabilities(space: CellSpace, logits: Logits) -> Logits:
  return jax.tree.map(jnp.exp, log_softmax(space, logits))


def sample(space: CellSpace, logits: Logits, rng: jax.Array, num: int) -> Arch:
  """Draws `num` architectures alpha_k ~ p(alpha | pi): op [num, E], inp [num, N, 2]."""
  masked = mask_logits(space, logits)
  k_op, k_inp = jax.random.split(rng)
  op = jax.random.categorical(k_op, masked["op"], axis=-1, shape=(num, space.num_edges))
  inp = jax.random.categorical(k_inp, masked["inp"], axis=-1, shape=(num, space.num_nodes, 2))
  return {"op": op.astype(jnp.int32), "inp": inp.astype(jnp.int32)}


def log_prob(space: CellSpace, logits: Logits, arch: Arch) -> jax.Array:
  """log p(alpha | pi) for one architecture (scalar); vmap over a leading batch of archs."""
  lp = log_softmax(space, logits)
  op = jnp.take_along_axis(lp["op"], arch["op"][:, None], axis=-1).sum()
  inp = jnp.take_along_axis(lp["inp"], arch["inp"][..., None], axis=-1).sum()
  return op + inp


def entropy(space: CellSpace, logits: Logits) -> jax.Array:
  """Entropy (nats) of p(alpha | pi): the sum of the independent categoricals' entropies."""
  lp = log_softmax(space, logits)
  total = 0.0
  for name in ("op", "inp"):
    p = jnp.exp(lp[name])
    total = total + jnp.sum(jnp.where(p > 0, -p * lp[name], 0.0))
  return total


def max_entropy(space: CellSpace) -> float:
  """Entropy of the uniform prior = log of the number of architectures."""
  return float(np.log(space.num_architectures()))


def most_probable(space: CellSpace, logits: Logits) -> Arch:
  """argmax_alpha p(alpha | pi) (independent choices, so a per-choice argmax)."""
  masked = mask_logits(space, logits)
  return {"op": jnp.argmax(masked["op"], -1).astype(jnp.int32),
          "inp": jnp.argmax(masked["inp"], -1).astype(jnp.int32)}


def enumerate_all(space: CellSpace) -> Arch:
  """Every architecture of a small space, stacked: op [A, E], inp [A, N, 2]."""
  if space.num_architectures() > 200_000:
    raise ValueError(f"The space has {space.num_architectures()} architectures; enumerate_all is "
                     "meant for tiny test spaces (use fewer nodes or ops).")
  inp_choices = [range(i + 2) for i in range(space.num_nodes) for _ in range(2)]
  ops, inps = [], []
  for op in itertools.product(range(space.num_ops), repeat=space.num_edges):
    for inp in itertools.product(*inp_choices):
      ops.append(op)
      inps.append(np.reshape(inp, (space.num_nodes, 2)))
  return {"op": jnp.asarray(ops, jnp.int32), "inp": jnp.asarray(np.stack(inps), jnp.int32)}


def describe(space: CellSpace, arch: Arch) -> list[str]:
  """Human-readable genotype: one 'node i: op(input), op(input)' string per node."""
  names = ["c_{k-2}", "c_{k-1}"] + [f"n{i}" for i in range(space.num_nodes)]
  op, inp = np.asarray(arch["op"]), np.asarray(arch["inp"])
  return [f"n{i} = " + " + ".join(f"{space.ops[op[2 * i + s]]}({names[inp[i, s]]})"
                                  for s in range(2)) for i in range(space.num_nodes)]


def arch_to_list(arch: Arch) -> dict:
  return {k: np.asarray(v).tolist() for k, v in arch.items()}


def expected_cost(space: CellSpace, logits: Logits, op_costs: jax.Array) -> jax.Array:
  """E_{alpha ~ p(.|pi)}[sum_e cost(op_e)] (costs are additive over edges, so this is exact).

  Args:
    space: the search space.
    logits: pi.
    op_costs: f32[num_ops], e.g. MFLOPs of each op at the cell's resolution.
  """
  p = probabilities(space, logits)["op"]
  return jnp.sum(p * op_costs[None, :])
