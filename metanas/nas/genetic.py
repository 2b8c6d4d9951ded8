"""Constrained genetic search over the gene encoding of `search_space` (H-Meta-NAS Sec. 3.4).

Host-side NumPy. The caller supplies
- `fitness_fn(genes [n, num_genes]) -> [n]` (higher is better; H-Meta-NAS: few-shot accuracy after
  inner-loop adaptation on meta-validation tasks, evaluated for a whole population at once), and
- `cost_fn(genes [num_genes]) -> float` (latency from a lookup table, model size, MACs),
and a budget. Only architectures with cost <= budget are ever evaluated or returned: a child that
breaks the budget is re-drawn (crossover + mutation again) up to `max_retries` times and otherwise
rejected (replaced by a copy of its feasible better parent).

`allowed` (bool [num_genes, max_choices]) restricts the choices, e.g. to ablate Global Expansion or
Adaptive Number of Layers on the same supernet.
"""

import dataclasses
from typing import Callable

import numpy as np

from metanas.nas import search_space as ss

FitnessFn = Callable[[np.ndarray], np.ndarray]
CostFn = Callable[[np.ndarray], float]


@dataclasses.dataclass(frozen=True)
class GAConfig:
  pop_size: int = 16
  generations: int = 8
  tournament_size: int = 3
  crossover_prob: float = 0.9
  mutation_prob: float = 0.15  # Per gene.
  max_retries: int = 20
  init_tries: int = 2000


@dataclasses.dataclass
class SearchResult:
  genes: np.ndarray          # [num_genes], the best feasible architecture.
  fitness: float
  cost: float
  history: list[float]       # Best fitness after each generation (index 0 = initial population).
  num_evaluations: int       # Distinct architectures scored.
  evaluated: dict            # tuple(genes) -> fitness of every scored architecture.


def full_allowed(space: ss.SearchSpace) -> np.ndarray:
  """bool [num_genes, max_choices]: every choice allowed."""
  sizes = space.gene_sizes()
  return np.arange(sizes.max())[None, :] < sizes[:, None]


def restrict(space: ss.SearchSpace, global_multipliers=None, depth_choices=None) -> np.ndarray:
  """`allowed` mask with the GE multiplier and/or depth limited to the given values (ablations)."""
  allowed = full_allowed(space)
  if global_multipliers is not None:
    allowed[0] &= np.isin(np.arange(allowed.shape[1]),
                          [space.global_multipliers.index(g) for g in global_multipliers])
  if depth_choices is not None:
    allowed[1] &= np.isin(np.arange(allowed.shape[1]),
                          [space.depth_choices.index(d) for d in depth_choices])
  return allowed


def _sample(allowed: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
  """Uniform over the allowed choices of each gene, int32 [n, num_genes]."""
  out = np.empty((n, allowed.shape[0]), np.int32)
  for i, row in enumerate(allowed):
    out[:, i] = rng.choice(np.flatnonzero(row), n)
  return out


def feasible_population(space, cost_fn, budget, rng, n, allowed, tries) -> np.ndarray:
  """n distinct feasible architectures drawn uniformly by rejection (fewer if the space is small).

  Raises:
    ValueError: no feasible architecture found in `tries` draws.
  """
  pool: dict[tuple, np.ndarray] = {}
  for _ in range(max(1, tries // 64)):
    cand = ss.canonical(space, _sample(allowed, rng, 64))
    for g in cand:
      if len(pool) < n and tuple(g) not in pool and cost_fn(g) <= budget:
        pool[tuple(g)] = g
    if len(pool) >= n:
      break
  if not pool:
    raise ValueError(f"No architecture with cost <= {budget} found in {tries} random draws.")
  return np.stack(list(pool.values()))


def _tournament(fit: np.ndarray, rng, k: int) -> int:
  idx = rng.choice(fit.size, size=min(k, fit.size), replace=False)
  return int(idx[np.argmax(fit[idx])])


def _mutate(genes, allowed, rng, p):
  genes = genes.copy()
  for i in np.flatnonzero(rng.random(genes.size) < p):
    genes[i] = rng.choice(np.flatnonzero(allowed[i]))
  return genes


def evolve(space: ss.SearchSpace, fitness_fn: FitnessFn, cost_fn: CostFn, budget: float,
           rng: np.random.Generator, config: GAConfig = GAConfig(),
           allowed: np.ndarray | None = None) -> SearchResult:
  """Tournament-selection GA with uniform crossover, per-gene mutation and (mu + lambda) survival.

  Args:
    space: the search space (gene layout).
    fitness_fn: scores a batch of architectures, higher is better; called once per generation.
    cost_fn: cost of one architecture, compared with `budget`.
    budget: the hardware constraint (same unit as `cost_fn`).
    rng: NumPy generator (all randomness).
    config: pool size, generations and operator rates.
    allowed: optional bool [num_genes, max_choices] restriction (`restrict`).

  Returns:
    The best feasible architecture found and the search trace.
  """
  allowed = full_allowed(space) if allowed is None else allowed
  evaluated: dict[tuple, float] = {}
  costs: dict[tuple, float] = {}

  def cost(g):
    t = tuple(int(v) for v in g)
    if t not in costs:
      costs[t] = float(cost_fn(np.asarray(g)))
    return costs[t]

  def score(pop):
    new = [g for g in {tuple(int(v) for v in g): None for g in pop} if g not in evaluated]
    if new:
      vals = np.asarray(fitness_fn(np.array(new, np.int32)), np.float64)
      evaluated.update(zip(new, vals.tolist()))
    return np.array([evaluated[tuple(int(v) for v in g)] for g in pop])

  pop = feasible_population(space, cost, budget, rng, config.pop_size, allowed, config.init_tries)
  fit = score(pop)
  history = [float(fit.max())]
  for _ in range(config.generations):
    children = []
    for _ in range(config.pop_size):
      a, b = _tournament(fit, rng, config.tournament_size), _tournament(fit, rng,
                                                                      config.tournament_size)
      child = None
      for _ in range(config.max_retries):
        if rng.random() < config.crossover_prob:
          c = np.where(rng.random(pop.shape[1]) < 0.5, pop[a], pop[b])
        else:
          c = pop[a].copy()
        c = ss.canonical(space, _mutate(c, allowed, rng, config.mutation_prob))
        if cost(c) <= budget:
          child = c
          break
      if child is None:  # Rejected: keep the better parent (feasible by construction).
        child = pop[a] if fit[a] >= fit[b] else pop[b]
      children.append(child)
    union = np.concatenate([pop, np.stack(children)])
    _, first = np.unique(union, axis=0, return_index=True)
    union = union[np.sort(first)]
    ufit = score(union)
    keep = np.argsort(-ufit, kind="stable")[:config.pop_size]
    pop, fit = union[keep], ufit[keep]
    history.append(float(fit.max()))
  best = int(np.argmax(fit))
  return SearchResult(genes=pop[best], fitness=float(fit[best]), cost=cost(pop[best]),
                      history=history, num_evaluations=len(evaluated), evaluated=evaluated)


def random_search(space: ss.SearchSpace, fitness_fn: FitnessFn, cost_fn: CostFn, budget: float,
                  rng: np.random.Generator, num_evaluations: int,
                  allowed: np.ndarray | None = None, init_tries: int = 20000) -> SearchResult:
  """Baseline: score `num_evaluations` distinct random feasible architectures, keep the best."""
  allowed = full_allowed(space) if allowed is None else allowed
  pop = feasible_population(space, cost_fn, budget, rng, num_evaluations, allowed, init_tries)
  fit = np.asarray(fitness_fn(pop), np.float64)
  best = int(np.argmax(fit))
  return SearchResult(genes=pop[best], fitness=float(fit[best]), cost=float(cost_fn(pop[best])),
                      history=[float(fit.max())], num_evaluations=len(pop),
                      evaluated={tuple(int(v) for v in g): float(f) for g, f in zip(pop, fit)})
