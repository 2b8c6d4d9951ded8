"""Layer scores fitted to briefly fine-tuned random students (an extension of HANT's Sec. 3.2).

The paper's score of (layer l, candidate c) is the teacher's validation loss increase with only layer
l swapped, and the integer program adds these up. On our Fashion-MNIST teachers that additive model
fails at tight budgets (experiments/hant.md): when most layers are swapped, the single-swap scores
favour ops that are harmless alone (1x1 convs) but together lose the receptive field, and the
students are judged after fine-tuning, which single-swap scores do not see.

Here the scores are fitted to what is judged. `num_samples` random feasible selections (budgets
drawn uniformly from `budget_range` of the teacher's predicted latency on each device in turn) are
assembled from the distilled candidates, fine-tuned `steps` steps with the fine-tuning loss, and
their validation loss is measured. The additive model

    val_loss_m = b + sum_l [ beta * d[l, c_l] + delta[l, c_l] ]      (teacher op: 0)

(d = the single-swap loss increase) is fitted by ridge regression on delta, with b and beta free,
the ridge strength chosen by leave-one-out error (closed form). The fitted score is
-(beta * d + delta): the single-swap scores, recalibrated and corrected where the samples say so.
The same samples also give a "best sample" baseline: the feasible sample with the lowest
validation loss after its short fine-tuning.
"""

import time
from typing import Callable

import jax
import numpy as np

from metanas.hant import distill
from metanas.hant import solver
from metanas.hant import training


def sample_selections(problems: list, num: int, budget_range: tuple, rng: np.random.Generator):
  """Random feasible selections, spread over devices and budgets.

  Args:
    problems: per device, (scores, latencies, teacher_ms, fixed_ms) with per-layer arrays as in
      `accelerate.selection_problem`; teacher_ms is the teacher's predicted whole-network latency
      (stem/head included), fixed_ms the stem/head part of it.
    num: number of selections.
    budget_range: (lo, hi) fractions of the teacher's whole-network latency.
    rng: NumPy generator.

  Returns:
    list of (choice index array, device index, budget fraction).
  """
  out = []
  lo, hi = budget_range
  for m in range(num):
    d = m % len(problems)
    scores, lats, teacher_ms, fixed = problems[d]
    fastest = fixed + sum(float(t.min()) for t in lats)
    frac = float(rng.uniform(max(lo, fastest / teacher_ms + 1e-6), hi))
    sol = solver.random_feasible(scores, lats, frac * teacher_ms - fixed, 1, rng)[0]
    out.append((sol.choice, d, frac))
  return out


def evaluate_samples(arch, teacher, bank, ops_list: list, data: dict, steps: int, batch_size: int,
                     finetune_cfg, rng: jax.Array, log: Callable | None = None) -> dict:
  """Fine-tunes every student of `ops_list` for `steps` steps; validation loss / accuracy after."""
  val_loss, val_acc, secs = [], [], []
  for m, ops in enumerate(ops_list):
    t0 = time.time()
    params = distill.student_params(bank, ops, teacher.params)
    params = training.kd_finetune(arch, ops, params, teacher.params, data["x_train"],
                                  data["y_train"], finetune_cfg, jax.random.fold_in(rng, m),
                                  steps=steps, batch_size=batch_size)
    ev = training.evaluate(arch, ops, params, data["x_val"], data["y_val"])
    val_loss.append(ev["loss"])
    val_acc.append(ev["acc"])
    secs.append(time.time() - t0)
    if log:
      log(f"fit sample {m + 1}/{len(ops_list)}: val loss {ev['loss']:.4f}, acc {ev['acc']:.4f} "
          f"({secs[-1]:.0f} s)")
  return {"val_loss": np.array(val_loss), "val_acc": np.array(val_acc), "seconds": np.array(secs)}


def fit_additive(choices: list, y: np.ndarray, single: list, teacher_idx: list,
                 lambdas=tuple(10.0 ** np.arange(-4, 4.5, 0.5))) -> dict:
  """Ridge fit of y_m = b + sum_l [beta * single[l][c] + delta[l][c]] with LOO-chosen strength.

  Args:
    choices: M index arrays (one candidate index per layer).
    y: [M] targets (validation loss after the short fine-tuning).
    single: per layer, the single-swap loss increase of every candidate (0 for the teacher's op).
    teacher_idx: per layer, the index of the teacher's own op (its delta is fixed at 0).
    lambdas: ridge strengths tried.

  Returns:
    {"increase": per-layer fitted loss increases (teacher op 0), "beta", "intercept", "lambda",
     "loo_rmse", "train_rmse", "loo_rmse_single" (the same LOO error of the model with delta = 0)}.
  """
  y = np.asarray(y, np.float64)
  cols = [(l, c) for l, s in enumerate(single) for c in range(len(s)) if c != teacher_idx[l]]
  index = {lc: j for j, lc in enumerate(cols)}
  m = len(choices)
  onehot = np.zeros((m, len(cols)))
  z = np.zeros(m)
  for i, ch in enumerate(choices):
    for l, c in enumerate(ch):
      z[i] += single[l][c]
      if c != teacher_idx[l]:
        onehot[i, index[(l, c)]] = 1.0
  base = np.stack([np.ones(m), z], 1)
  a = np.concatenate([base, onehot], 1)

  fits = [(_ridge_loo(a, y, np.concatenate([[0.0, 0.0], np.full(len(cols), lam)])), lam)
          for lam in lambdas]
  (w, loo), lam = min(fits, key=lambda f: f[0][1])
  _, loo0 = _ridge_loo(base, y, np.zeros(2))
  increase = []
  for l, s in enumerate(single):
    inc = w[1] * np.asarray(s, np.float64)
    for c in range(len(s)):
      if c != teacher_idx[l]:
        inc[c] += w[2 + index[(l, c)]]
    inc[teacher_idx[l]] = 0.0
    increase.append(inc)
  return {"increase": increase, "beta": float(w[1]), "intercept": float(w[0]), "lambda": lam,
          "loo_rmse": loo, "train_rmse": float(np.sqrt(np.mean((y - a @ w) ** 2))),
          "loo_rmse_single": loo0}


def _ridge_loo(a: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> tuple[np.ndarray, float]:
  """Weights of min |y - a w|^2 + sum_j penalty_j w_j^2 and their leave-one-out RMSE (closed form)."""
  inv = np.linalg.pinv(a.T @ a + np.diag(penalty))
  w = inv @ a.T @ y
  hat = np.einsum("ij,jk,ik->i", a, inv, a)
  loo = (y - a @ w) / np.maximum(1.0 - hat, 1e-9)
  return w, float(np.sqrt(np.mean(loo ** 2)))
