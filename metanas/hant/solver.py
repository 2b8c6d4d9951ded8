"""Choosing one candidate per layer: the multiple-choice knapsack of HANT (arXiv 2107.10624, Eq. 3).

    max_x  sum_{l,c} s_{l,c} x_{l,c}   s.t.  sum_c x_{l,c} = 1  (each layer l),
                                            sum_{l,c} t_{l,c} x_{l,c} <= T  (latency budget),
                                            optional  sum f_{l,c} x_{l,c} <= F  (FLOPs / params),
    x_{l,c} in {0, 1}.

Solved on the host with OR-Tools CP-SAT, which needs integers. Scaling (documented, exact up to the
stated resolution): latencies and the budget are in units of `latency_resolution_ms` (default
1e-3 ms = 1 us); a latency is rounded to the nearest unit and the budget gets L/2 units of slack
(rounded down), so any selection that fits the real-valued budget stays feasible (e.g. the teacher at
a budget equal to its own latency) and a chosen one exceeds it by at most L * resolution. Scores are shifted per layer so the
best candidate is 0 and multiplied by `score_scale` (default: 1e6 / max |score|, i.e. a relative
resolution of 1e-6) then rounded. Candidates dominated within their layer (no faster and no better
than another) are removed first; this keeps the optimum and shrinks the model a lot.

Also here: brute force (for tests), greedy and random-feasible baselines.
"""

import dataclasses
import itertools
import time

import numpy as np


class InfeasibleBudgetError(ValueError):
  """No selection meets the budget; the message names the fastest achievable latency."""


@dataclasses.dataclass
class Solution:
  choice: np.ndarray        # [L] chosen candidate index per layer.
  score: float              # Summed real-valued score.
  latency: float            # Summed real-valued latency (ms).
  solve_time_s: float
  status: str               # "OPTIMAL", "FEASIBLE", "BRUTE", "GREEDY", "RANDOM".


def _check(scores, lats, budget):
  if len(scores) != len(lats):
    raise ValueError(f"scores has {len(scores)} layers but latencies has {len(lats)}.")
  for l, (s, t) in enumerate(zip(scores, lats)):
    if len(s) != len(t) or len(s) == 0:
      raise ValueError(f"Layer {l}: {len(s)} scores vs {len(t)} latencies (need equal, >= 1).")
  fastest = float(sum(np.min(t) for t in lats))
  if budget < fastest - 1e-9:
    raise InfeasibleBudgetError(
        f"Latency budget {budget:.4f} ms is infeasible: the fastest achievable network with these "
        f"candidates takes {fastest:.4f} ms. Raise the budget to at least {fastest:.4f} ms or add "
        "faster candidate ops.")
  return fastest


def _total(values, choice):
  return float(sum(v[c] for v, c in zip(values, choice)))


def _pareto(s: np.ndarray, t: np.ndarray) -> np.ndarray:
  """Indices of the candidates not dominated (another at least as fast and at least as good)."""
  order = np.lexsort((-s, t))  # By latency, ties: best score first.
  keep, best = [], -np.inf
  for i in order:
    if s[i] > best:
      keep.append(i)
      best = s[i]
  return np.array(sorted(keep))


def solve(scores, latencies, budget: float, extra=None, latency_resolution_ms: float = 1e-3,
          score_scale: float | None = None, time_limit_s: float = 10.0,
          num_workers: int = 2, at_least=None) -> Solution:
  """Maximises the summed score under the latency budget with CP-SAT.

  Args:
    scores: per layer, [n_l] candidate scores (higher is better).
    latencies: per layer, [n_l] latencies (ms), same shapes.
    budget: latency budget (ms).
    extra: optional list of (per-layer values, budget) pairs, e.g. FLOPs or parameter budgets
      (integerised with a relative resolution of 1e-6 of the budget, rounded up: conservative).
    at_least: optional list of (per-layer integer values, minimum) pairs: lower bounds, e.g. a
      receptive-field floor (`network.rf_contributions`).
    latency_resolution_ms, score_scale: integer scaling (module docstring).
    time_limit_s, num_workers: CP-SAT parameters.

  Returns:
    The `Solution`; raises `InfeasibleBudgetError` naming the fastest latency if none exists.
  """
  from ortools.sat.python import cp_model  # pylint: disable=g-import-not-at-top
  scores = [np.asarray(s, np.float64) for s in scores]
  lats = [np.asarray(t, np.float64) for t in latencies]
  _check(scores, lats, budget)
  start = time.perf_counter()
  prune = not extra and not at_least  # Dominance is only about score and latency.
  keep = [_pareto(s, t) if prune else np.arange(len(s)) for s, t in zip(scores, lats)]
  rel = [s - s.max() for s in scores]
  span = max(max(float(np.max(-r)) for r in rel), 1e-12)
  scale = score_scale if score_scale is not None else 1e6 / span
  model = cp_model.CpModel()
  xs, lat_terms, obj_terms = [], [], []
  extra_terms = [[] for _ in (extra or [])]
  for l, idx in enumerate(keep):
    x = [model.NewBoolVar(f"x_{l}_{c}") for c in idx]
    model.AddExactlyOne(x)
    xs.append(x)
    for v, c in zip(x, idx):
      lat_terms.append(int(round(lats[l][c] / latency_resolution_ms)) * v)
      obj_terms.append(int(round(rel[l][c] * scale)) * v)
      for e, (vals, e_budget) in enumerate(extra or []):
        res = max(float(e_budget), 1e-12) * 1e-6
        extra_terms[e].append(int(np.ceil(vals[l][c] / res)) * v)
  slack = len(lats) / 2
  model.Add(sum(lat_terms) <= int(np.floor(budget / latency_resolution_ms + slack + 1e-9)))
  for e, (_, e_budget) in enumerate(extra or []):
    model.Add(sum(extra_terms[e]) <= int(np.floor(1e6 + 1e-9)))
  for vals, minimum in at_least or []:
    model.Add(sum(int(vals[l][c]) * v for l, (x, idx) in enumerate(zip(xs, keep))
                  for v, c in zip(x, idx)) >= int(np.ceil(minimum)))
  model.Maximize(sum(obj_terms))
  solver = cp_model.CpSolver()
  solver.parameters.max_time_in_seconds = time_limit_s
  solver.parameters.num_workers = num_workers
  status = solver.Solve(model)
  elapsed = time.perf_counter() - start
  if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
    fastest = float(sum(np.min(t) for t in lats))
    if at_least:
      raise InfeasibleBudgetError(
          f"CP-SAT found no selection within {budget:.4f} ms that also meets the lower bounds "
          f"{[m for _, m in at_least]} ({solver.StatusName(status)}); the fastest achievable "
          f"latency without them is {fastest:.4f} ms. Raise the budget or lower the bounds.")
    raise InfeasibleBudgetError(
        f"CP-SAT found no selection within {budget:.4f} ms ({solver.StatusName(status)}); the "
        f"fastest achievable latency is {fastest:.4f} ms (after rounding to "
        f"{latency_resolution_ms} ms units). Raise the budget.")
  choice = np.array([idx[[solver.Value(v) for v in x].index(1)] for x, idx in zip(xs, keep)])
  return Solution(choice, _total(scores, choice), _total(lats, choice), elapsed,
                  solver.StatusName(status))


def brute_force(scores, latencies, budget: float) -> Solution:
  """Exhaustive search (tiny instances only): the best-scoring feasible selection."""
  _check(scores, latencies, budget)
  start = time.perf_counter()
  best, best_s = None, -np.inf
  for choice in itertools.product(*[range(len(s)) for s in scores]):
    if _total(latencies, choice) <= budget + 1e-12:
      s = _total(scores, choice)
      if s > best_s:
        best, best_s = np.array(choice), s
  return Solution(best, best_s, _total(latencies, best), time.perf_counter() - start, "BRUTE")


def greedy(scores, latencies, budget: float) -> Solution:
  """Starts from the best candidate per layer; repeatedly makes the swap that loses the least score
  per unit of latency saved, until the budget is met."""
  _check(scores, latencies, budget)
  start = time.perf_counter()
  scores = [np.asarray(s, np.float64) for s in scores]
  lats = [np.asarray(t, np.float64) for t in latencies]
  choice = np.array([int(np.lexsort((t, -s))[0]) for s, t in zip(scores, lats)])
  while _total(lats, choice) > budget + 1e-12:
    best, best_ratio = None, np.inf
    for l, (s, t) in enumerate(zip(scores, lats)):
      saved = t[choice[l]] - t
      lost = s[choice[l]] - s
      for c in np.nonzero(saved > 0)[0]:
        ratio = lost[c] / saved[c]
        if ratio < best_ratio:
          best, best_ratio = (l, c), ratio
    choice[best[0]] = best[1]
  return Solution(choice, _total(scores, choice), _total(lats, choice),
                  time.perf_counter() - start, "GREEDY")


def random_feasible(scores, latencies, budget: float, num: int, rng: np.random.Generator,
                    at_least=None, max_draws_per_sample: int = 1000) -> list:
  """`num` random feasible selections: layers in random order, each candidate drawn uniformly among
  those that still leave room for the fastest choice of every remaining layer.

  at_least: optional (per-layer values, minimum) lower bounds (as in `solve`); draws that miss one
  are rejected, at most `max_draws_per_sample * num` draws in all (fewer selections are returned
  if the bounds are rarely met; none raises `InfeasibleBudgetError`).
  """
  _check(scores, latencies, budget)
  lats = [np.asarray(t, np.float64) for t in latencies]
  mins = np.array([t.min() for t in lats])
  out = []
  for _ in range(num * (max_draws_per_sample if at_least else 1)):
    start = time.perf_counter()
    choice = np.zeros(len(lats), int)
    order = rng.permutation(len(lats))
    used, rest = 0.0, float(mins.sum())
    for l in order:
      rest -= mins[l]
      ok = np.nonzero(used + lats[l] + rest <= budget + 1e-12)[0]
      choice[l] = rng.choice(ok)
      used += lats[l][choice[l]]
    if at_least and any(_total(v, choice) < m - 1e-9 for v, m in at_least):
      continue
    out.append(Solution(choice, _total(scores, choice), _total(lats, choice),
                        time.perf_counter() - start, "RANDOM"))
    if len(out) == num:
      break
  if not out:
    raise InfeasibleBudgetError(
        f"No random selection within {budget:.4f} ms met the lower bounds "
        f"{[m for _, m in at_least]} in {num * max_draws_per_sample} draws.")
  return out


def random_instance(num_layers: int, num_candidates: int, rng: np.random.Generator):
  """A random instance with a realistic trade-off: faster candidates tend to score lower."""
  lats = [rng.uniform(0.05, 1.0, num_candidates) for _ in range(num_layers)]
  scores = [-(1.0 - t) ** 2 * rng.uniform(0.5, 2.0) - rng.uniform(0, 0.2, num_candidates)
            for t in lats]
  return scores, lats
