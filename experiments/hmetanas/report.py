r"""Markdown tables of an H-Meta-NAS run: python experiments/hmetanas/report.py WORKDIR [NAME].

Also re-draws the Pareto plots in WORKDIR. Prints the tables pasted into experiments/hmetanas.md (baselines, per-device adaptation, MAC
budgets, latency-table validation, ablations, search cost) from WORKDIR/results.json.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from metanas.nas import hmetanas_plots  # pylint: disable=g-import-not-at-top,wrong-import-position


def _pct(x):
  return "-" if x is None else f"{100 * x:.1f}"


def _plot_validation(vals: dict, workdir: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(vals), figsize=(4.2 * len(vals), 3.6), squeeze=False)
  for ax, (name, v) in zip(axes[0], vals.items()):
    ax.loglog(v["measured_ms"], v["predicted_ms"], "o", ms=4)
    lo = min(v["measured_ms"] + v["predicted_ms"])
    hi = max(v["measured_ms"] + v["predicted_ms"])
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("measured whole-network latency (ms)")
    ax.set_ylabel("table prediction (ms)")
    ax.set_title(f"{name}: r={v['pearson']:.2f}, rho={v['spearman']:.2f}", fontsize=9)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "latency_validation.png"), dpi=120)
  plt.close(fig)


def _train_min(b):
  return b.get("train_log", {}).get("train_time_from_log_sec", b["train_wall_time_sec"]) / 60


def main(workdir: str, name: str = "") -> None:
  with open(os.path.join(workdir, "results.json")) as f:
    r = json.load(f)
  r["summary"] = hmetanas_plots.pareto_summary(r)  # Recomputed with the current code.
  for dev in ("cpu_1t_b1", "cpu_all_b25"):  # Validations measured by a separate process.
    path = os.path.join(workdir, f"latency_validation_{dev}.json")
    if not r.get("latency_validation", {}).get(dev) and os.path.exists(path):
      with open(path) as f:
        r.setdefault("latency_validation", {})[dev] = json.load(f)
  hmetanas_plots.plot_all(r, workdir)
  devs = list(r["adaptation"])
  print(f"### {name or workdir}\n")
  st = r["supernet_train"]
  st_min = st.get("train_time_from_log_sec", st["wall_time_sec"]) / 60
  print(f"Supernet: {r['search_space']['num_architectures']} architectures, "
        f"{st.get('steps', '?')} steps, meta-training {st_min:.1f} min (compile excluded), final "
        "train query accuracy (sampled sub-networks) "
        f"{_pct(st.get('train/accuracy'))}%. Test tasks: {r.get('num_test_tasks', '?')}.\n")
  print("| manual baseline (trained alone) | MMACs | params | " +
        " | ".join(f"{d} ms" for d in devs) + " | test acc % (95% CI) | same arch in supernet % |"
        " train min |")
  print("|---|---|---|" + "---|" * len(devs) + "---|---|---|")
  for b in r["baselines"].values():
    lat = " | ".join(f"{b['latency_ms'][d]:.4g}" for d in devs)
    print(f"| {b['arch']} | {b['macs'] / 1e6:.3f} | {b['params']} | {lat} | "
          f"{_pct(b['accuracy'])} +- {_pct(b['ci95'])} | {_pct(b['supernet_accuracy'])} | "
          f"{_train_min(b):.1f} |")
  print()
  for d in devs:
    summ = r["summary"][d]
    print(f"**{d}** (budgets = baseline latencies; all points on/above manual front: "
          f"{summ['all_on_or_above']})\n")
    print("| budget ms | chosen arch | predicted ms | MMACs | val acc % | test acc % (95% CI) | "
          "margin vs manual front at its latency / at the budget (pts) | GA evals | GA sec |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row, m, mb in zip(r["adaptation"][d], summ["margins_vs_manual_front"],
                          summ["margins_at_budget"]):
      print(f"| {row['budget']:.4g} | {row['arch']} | {row['latency_ms']:.4g} | "
            f"{row['macs'] / 1e6:.3f} | {_pct(row['val_accuracy'])} | "
            f"{_pct(row['test_accuracy'])} +- {_pct(row['test_ci95'])} | "
            f"{'-' if m is None else f'{100 * m:+.1f}'} / "
            f"{'-' if mb is None else f'{100 * mb:+.1f}'} | {row['num_evaluations']} | "
            f"{row['wall_time_sec']:.0f} |")
    print()
  print("| MAC budget (x baseline) | baseline | baseline acc % | chosen arch | MMACs | test acc % |")
  print("|---|---|---|---|---|---|")
  for row in r["mac_budgets"]:
    if "error" in row:
      print(f"| {row['budget'] / 1e6:.3f}M | {row['baseline']} | {_pct(row['baseline_accuracy'])} |"
            f" infeasible | - | - |")
      continue
    print(f"| {row['budget'] / 1e6:.3f}M | {row['baseline']} | {_pct(row['baseline_accuracy'])} | "
          f"{row['arch']} | {row['macs'] / 1e6:.3f} | {_pct(row['test_accuracy'])} |")
  print()
  red = r["summary"]["mac_reduction_at_baseline_accuracy"]
  print("MAC reduction at each baseline's accuracy (cheapest H-Meta-NAS point at >= its "
        "accuracy): " + ", ".join(f"{k}: {'none' if v is None else f'{100 * v:.0f}%'}"
                                  for k, v in red.items()) + "\n")
  if r.get("latency_validation"):
    _plot_validation(r["latency_validation"], workdir)
    print("| device | #nets | Pearson | Spearman | mean abs err ms | mean rel err |")
    print("|---|---|---|---|---|---|")
    for d, v in r["latency_validation"].items():
      print(f"| {d} | {len(v['measured_ms'])} | {v['pearson']:.3f} | {v['spearman']:.3f} | "
            f"{v['mean_abs_error_ms']:.4f} | {100 * v['mean_rel_error']:.1f}% |")
    print()
  ab = r.get("ablations")
  if ab and "error" not in ab:
    print(f"Ablations on {ab['device']} at budget {ab['budget_ms']:.4g} ms:\n")
    print("| variant | chosen arch | val acc % | test acc % | evals |")
    print("|---|---|---|---|---|")
    for k in ("full", "no_global_expansion", "no_adaptive_layers", "random_search"):
      v = ab[k]
      if "error" in v:
        print(f"| {k} | {v['error'][:80]} | - | - | - |")
      else:
        print(f"| {k} | {v['arch']} | {_pct(v['val_accuracy'])} | {_pct(v['test_accuracy'])} | "
              f"{v['num_evaluations']} |")
    print()
    print("| GA pool | generations | evals | val acc % | test acc % | sec |")
    print("|---|---|---|---|---|---|")
    for v in ab["ga_sweep"]:
      print(f"| {v['pop_size']} | {v['generations']} | {v['num_evaluations']} | "
            f"{_pct(v['val_accuracy'])} | {_pct(v['test_accuracy'])} | {v['wall_time_sec']:.0f} |")
    print()
  c = r.get("search_cost")
  if not c:
    return
  print(f"Search cost: supernet {st_min:.1f} min once; one adaptation "
        f"{c['mean_adaptation_sec']:.0f} s on average; manual baselines "
        f"{sum(_train_min(b) for b in r['baselines'].values()):.1f} min for "
        f"{len(r['baselines'])} networks (training times from the step rate in metrics.jsonl, "
        "compile excluded).")


if __name__ == "__main__":
  main(*sys.argv[1:])
