"""User-facing HANT: `accelerate(teacher, data, device, budget)` (arXiv 2107.10624, Fig. 1).

1. candidates for every layer are distilled from the teacher's cached activations (`distill`),
2. each is scored by the teacher's validation loss with only that layer swapped,
3. latencies come from a measured lookup table for the device (`latency_tables`),
4. the integer program picks one candidate per layer under the budget (`solver`),
5. the assembled student is fine-tuned end to end with distillation (`training`).
Steps 1-2 do not depend on the device or budget, so `prepare_candidates` runs them once and many
`accelerate` calls (budgets, devices) reuse the result.
"""

import dataclasses
from typing import Any, Callable

import jax
import numpy as np

from metanas.hant import distill
from metanas.hant import latency_tables
from metanas.hant import network
from metanas.hant import solver
from metanas.hant import training
from metanas.hardware import latency as hw


@dataclasses.dataclass
class Teacher:
  arch: network.Arch
  params: dict


@dataclasses.dataclass
class Candidates:
  """Distilled candidates (`bank`) and their scores (`distill.score_bank` output)."""
  bank: list
  scores: dict
  history: dict


def prepare_candidates(teacher: Teacher, data: dict, names, distill_cfg, rng: jax.Array,
                       log: Callable | None = None) -> Candidates:
  """Steps 1-2: distil all candidates of all layers and score them.

  Args:
    teacher: the trained network.
    data: {"x_train", "y_train", "x_val", "y_val"} float images [N, hw, hw, c] and int labels.
    names: candidate op names (None = the whole registry).
    distill_cfg: has num_images, steps, batch_size, learning_rate, num_val.
    rng: PRNG key.
  """
  arch, params = teacher.arch, teacher.params
  n = min(int(distill_cfg.num_images), len(data["x_train"]))
  acts = distill.layer_io(arch, params, data["x_train"][:n])
  nv = min(int(distill_cfg.num_val), len(data["x_val"]))
  acts_val = distill.layer_io(arch, params, data["x_val"][:nv])
  bank = distill.init_bank(arch, names, params, jax.random.fold_in(rng, 0))
  bank, history = distill.distill_bank(arch, bank, acts, distill_cfg.steps, distill_cfg.batch_size,
                                       distill_cfg.learning_rate, jax.random.fold_in(rng, 1),
                                       log=log)
  scores = distill.score_bank(arch, params, bank, acts_val, data["y_val"][:nv])
  return Candidates(bank, scores, history)


def selection_problem(arch: network.Arch, cands: Candidates, table: hw.LatencyTable,
                      score_kind: str = "single"):
  """Per-layer (names, scores, latencies) for the integer program; score = -(val loss increase).

  score_kind: "single" (the paper's: the teacher with only that layer swapped) or "fit" (the
  increases fitted to fine-tuned random students, `fit_scores`, stored in cands.scores["fit"]).
  """
  names = cands.scores["names"]
  if score_kind == "single":
    scores = [-(np.asarray(l) - cands.scores["teacher_loss"]) for l in cands.scores["loss"]]
  elif score_kind == "fit":
    if "fit" not in cands.scores:
      raise ValueError("score_kind='fit' needs fitted scores (cands.scores['fit'], see "
                       "metanas/hant/fit_scores.py); none were computed.")
    scores = [-np.asarray(inc) for inc in cands.scores["fit"]]
  else:
    raise ValueError(f"Unknown score_kind {score_kind!r}; use 'single' or 'fit'.")
  lats = [np.array([table[latency_tables.layer_key(n, layer)] for n in ns])
          for ns, layer in zip(names, arch.layers)]
  return names, scores, lats


def fastest_latency(arch, cands, table) -> float:
  _, _, lats = selection_problem(arch, cands, table)
  return float(table["stem_head"] + sum(t.min() for t in lats))


def rf_floor_problem(arch: network.Arch, names, lats, layer_budget: float, min_rf: int,
                     time_limit_s: float = 10.0) -> tuple[list, int]:
  """Per-layer receptive-field contributions and the floor on their sum for a budget.

  The floor is min(min_rf, the largest receptive field any selection within the budget reaches)
  minus the stem's share, so a floor above what the budget allows never makes it infeasible.
  """
  rf = network.rf_contributions(arch, names)
  # 1 ns units: the budget's rounding slack (solver.solve) is negligible, so random draws within
  # the exact budget can reach this field too.
  widest = solver.solve(rf, lats, layer_budget, latency_resolution_ms=1e-6,
                        time_limit_s=time_limit_s)
  return rf, int(min(min_rf - network.STEM_RF, round(widest.score)))


def select(arch: network.Arch, cands: Candidates, table: hw.LatencyTable, budget_ms: float,
           method: str = "ip", rng: np.random.Generator | None = None, num_random: int = 20,
           time_limit_s: float = 10.0, score_kind: str = "single",
           min_rf: int = 0) -> tuple[tuple, solver.Solution]:
  """Chooses one op per layer for a whole-network latency budget (ms) on `table`'s device.

  method: "ip" (CP-SAT), "greedy", or "random" (best summed score of `num_random` feasible draws).
  score_kind: which scores are added up (see `selection_problem`).
  min_rf: receptive-field floor in input pixels (0: none; `network.default_rf_floor` is the usual
    choice), capped at the widest field the budget allows (`rf_floor_problem`). An extension, not in
    the paper: the IP carries it as a linear constraint; "random" keeps only draws that meet it.
  Raises `solver.InfeasibleBudgetError` (a ValueError) naming the fastest achievable latency.
  """
  names, scores, lats = selection_problem(arch, cands, table, score_kind)
  fixed = table["stem_head"]
  fastest = fastest_latency(arch, cands, table)
  if budget_ms < fastest - 1e-9:
    raise solver.InfeasibleBudgetError(
        f"Latency budget {budget_ms:.4f} ms on {table.device.name} is infeasible: the fastest "
        f"achievable network takes {fastest:.4f} ms (stem+head {fixed:.4f} ms + the fastest "
        "candidate of every layer). Raise the budget or add faster candidates.")
  layer_budget = budget_ms - fixed
  at_least = None
  if min_rf:
    rf, floor = rf_floor_problem(arch, names, lats, layer_budget, min_rf, time_limit_s)
    at_least = [(rf, floor)]
  if method == "ip":
    sol = solver.solve(scores, lats, layer_budget, time_limit_s=time_limit_s, at_least=at_least)
  elif method == "greedy":
    if min_rf:
      raise ValueError("greedy selection has no receptive-field floor; use min_rf=0.")
    sol = solver.greedy(scores, lats, layer_budget)
  elif method == "random":
    draws = solver.random_feasible(scores, lats, layer_budget, num_random,
                                   rng or np.random.default_rng(0), at_least=at_least)
    sol = max(draws, key=lambda s: s.score)
  else:
    raise ValueError(f"Unknown selection method {method!r}; choose ip, greedy or random.")
  ops = tuple(names[l][c] for l, c in enumerate(sol.choice))
  return ops, sol


def accelerate(teacher: Teacher, data: dict, device: str | hw.LatencyTable, budget_ms: float,
               cands: Candidates, finetune_cfg, rng: jax.Array, method: str = "ip",
               measure: bool = True, log: Callable | None = None,
               min_rf: int = 0) -> dict[str, Any]:
  """Accelerates `teacher` for `device` under a whole-network latency budget (ms).

  Args:
    teacher: trained network.
    data: {"x_train", "y_train", "x_val", "y_val", "x_test", "y_test"}.
    device: a measured device name (its table is measured now) or a ready `LatencyTable`.
    budget_ms: latency budget for the whole network at the device's batch size.
    cands: output of `prepare_candidates`.
    finetune_cfg: has steps, batch_size, learning_rate, alpha, temperature.
    rng: PRNG key for fine-tuning.
    method: selection method (see `select`).
    measure: also time the student's whole network on the device.
    log: optional callable(str).
    min_rf: receptive-field floor in input pixels (see `select`; 0 = none, the paper's IP).

  Returns:
    {"ops", "params", "receptive_field", "predicted_ms", "measured_ms", "test_acc",
     "test_acc_before_finetune", "solve_time_s", "score"}.
  """
  arch = teacher.arch
  table = device if isinstance(device, hw.LatencyTable) else latency_tables.build_table(
      arch, {i: n for i, n in enumerate(cands.scores["names"])}, device)
  ops, sol = select(arch, cands, table, budget_ms, method=method, min_rf=min_rf)
  params = distill.student_params(cands.bank, ops, teacher.params)
  before = training.evaluate(arch, ops, params, data["x_test"], data["y_test"])
  params = training.kd_finetune(arch, ops, params, teacher.params, data["x_train"],
                                data["y_train"], finetune_cfg, rng)
  after = training.evaluate(arch, ops, params, data["x_test"], data["y_test"])
  measured = None
  if measure:
    measured = latency_tables.measure_networks(arch, {"student": ops}, table.device.name)["student"]
  if log:
    log(f"{method} budget {budget_ms:.3f} ms: predicted {table.predict(latency_tables.network_keys(arch, ops)):.3f}"
        f" ms, acc {before['acc']:.4f} -> {after['acc']:.4f}")
  return {"ops": ops, "params": params, "receptive_field": network.receptive_field(arch, ops),
          "predicted_ms": table.predict(latency_tables.network_keys(arch, ops)),
          "measured_ms": measured, "test_acc": after["acc"],
          "test_acc_before_finetune": before["acc"], "solve_time_s": sol.solve_time_s,
          "score": sol.score}
