"""Pareto summaries and plots of an H-Meta-NAS run (accuracy vs latency per device, vs MACs)."""

import os

import numpy as np


def _front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
  """Pareto front (min cost, max accuracy) of (cost, accuracy) points, sorted by cost."""
  front, best = [], -np.inf
  for c, a in sorted(points):
    if a > best:
      front.append((c, a))
      best = a
  return front


def _front_accuracy_at(front, cost: float) -> float:
  """Best accuracy the manual front reaches at cost <= `cost` (-inf if none)."""
  accs = [a for c, a in front if c <= cost * (1 + 1e-9)]
  return max(accs) if accs else -np.inf


def pareto_summary(results: dict, accuracy_key: str = "test_accuracy") -> dict:
  """Per device: is every H-Meta-NAS point on or above the manual front at its latency? And the
  MAC reduction at each baseline's accuracy. `accuracy_key` picks the searched sub-networks'
  accuracy ("finetuned_accuracy": after meta-fine-tuning, `hmetanas_experiment.finetune_subnets`)."""
  out = {}
  base = results.get("baselines", {})
  for dev, rows in results.get("adaptation", {}).items():
    front = _front([(b["latency_ms"][dev], b["accuracy"]) for b in base.values()])
    # A point is on or above the front if no manual network is at least as fast and more accurate
    # (margin = its accuracy minus the best manual accuracy at <= its latency; None when no manual
    # network is that fast). The equal-budget margin compares with the front at the budget.
    margins, at_budget = [], []
    for r in rows:
      ref = _front_accuracy_at(front, r["latency_ms"])
      margins.append(float(r[accuracy_key] - ref) if np.isfinite(ref) else None)
      ref_b = _front_accuracy_at(front, r["budget"])
      at_budget.append(float(r[accuracy_key] - ref_b) if np.isfinite(ref_b) else None)
    ok = [m for m in margins if m is not None]
    out[dev] = {"margins_vs_manual_front": margins, "margins_at_budget": at_budget,
                "all_on_or_above": all(m >= 0 for m in ok),
                "mean_margin_at_budget": (float(np.mean([m for m in at_budget if m is not None]))
                                          if any(m is not None for m in at_budget) else None)}
  # MAC reduction: for each baseline, the cheapest H-Meta-NAS point (latency or MAC search) with
  # test accuracy >= the baseline's; None when no such point has fewer MACs than the baseline.
  points = [(r["macs"], r[accuracy_key]) for rows in results.get("adaptation", {}).values()
            for r in rows]
  points += [(r["macs"], r[accuracy_key]) for r in results.get("mac_budgets", [])
             if accuracy_key in r]
  reductions = {}
  for name, b in base.items():
    cheaper = [m for m, a in points if a >= b["accuracy"] and m < b["macs"]]
    reductions[name] = (float(1 - min(cheaper) / b["macs"]) if cheaper else None)
  out["mac_reduction_at_baseline_accuracy"] = reductions
  vals = [v for v in reductions.values() if v is not None]
  out["max_mac_reduction"] = max(vals) if vals else None
  return out


def plot_all(results: dict, workdir: str) -> list[str]:
  """pareto_<device>.png (accuracy vs predicted latency) and pareto_macs.png; returns paths."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  paths = []
  base = results.get("baselines", {})
  for dev, rows in results.get("adaptation", {}).items():
    fig, ax = plt.subplots(figsize=(5, 3.6))
    bx = [b["latency_ms"][dev] for b in base.values()]
    by = [100 * b["accuracy"] for b in base.values()]
    ax.plot(bx, by, "s", color="tab:gray", label="manual Conv-N (trained alone)")
    f = _front(list(zip(bx, by)))
    ax.plot([c for c, _ in f], [a for _, a in f], "--", color="tab:gray")
    pts = sorted((r["latency_ms"], 100 * r["test_accuracy"]) for r in rows)
    hx, hy = [p[0] for p in pts], [p[1] for p in pts]
    ax.plot(hx, hy, "o-", color="tab:red", label="H-Meta-NAS (GA on supernet)")
    ax.set_xlabel(f"predicted latency on {dev} (ms)")
    ax.set_ylabel("test accuracy (%)")
    if max(bx + hx) > 10 * min(bx + hx):
      ax.set_xscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(workdir, f"pareto_{dev}.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    paths.append(path)
  fig, ax = plt.subplots(figsize=(5, 3.6))
  ax.plot([b["macs"] / 1e6 for b in base.values()], [100 * b["accuracy"] for b in base.values()],
          "s", color="tab:gray", label="manual Conv-N")
  for dev, rows in results.get("adaptation", {}).items():
    ax.plot([r["macs"] / 1e6 for r in rows], [100 * r["test_accuracy"] for r in rows], "o",
            label=f"H-Meta-NAS ({dev} budgets)")
  mb = [r for r in results.get("mac_budgets", []) if "test_accuracy" in r]
  if mb:
    ax.plot([r["macs"] / 1e6 for r in mb], [100 * r["test_accuracy"] for r in mb], "^",
            color="k", label="H-Meta-NAS (MAC budgets)")
  ax.set_xlabel("MMACs per image")
  ax.set_ylabel("test accuracy (%)")
  ax.set_xscale("log")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  path = os.path.join(workdir, "pareto_macs.png")
  fig.savefig(path, dpi=120)
  plt.close(fig)
  paths.append(path)
  return paths
