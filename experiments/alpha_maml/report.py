"""Markdown tables for experiments/alpha_maml.md from `:cpu` run workdirs.

  python experiments/alpha_maml/report.py /tmp/am_runs2 cv_k10 cv_k5 cv_homog cv_homog_k5

Prints a summary row per run (mass on the true cluster, paired alpha - uniform differences at
fine-tune steps 0/1/5/10 with targets whose fine-tune diverged left out, the chosen bandwidth and
lambda per seed), then the per-run tables.
"""

import json
import os
import sys

import numpy as np
from scipy import stats

STEPS = (0, 1, 5, 10, 100)


def _ci(v):
  v = np.asarray(v, float)
  return v.mean(), stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))


def _f(m, h):
  m, h = float(m), float(h)
  return f"{m:.3f} ± {h:.3f}" if np.isfinite(m) and abs(m) < 1e4 else "blown up (mean)"


def _paired(c, seeds, ref, s):
  """Per-seed mean of alpha - ref over targets where neither diverged; mean ± t-interval."""
  dd = []
  for i in range(seeds):
    a, b = c[f"seed{i}_alpha"][:, s], c[f"seed{i}_{ref}"][:, s]
    keep = (a < 1e3) & (b < 1e3)
    dd.append(np.mean(a[keep] - b[keep]))
  return _ci(dd)


def _load(root, name):
  d = os.path.join(root, name)
  with open(os.path.join(d, "results.json")) as fh:
    return json.load(fh), np.load(os.path.join(d, "curves.npz"))


def summary(root, names):
  print("| run | alpha mass on true group | effective sources | alpha - uniform, step 0 | "
        "step 1 | step 5 | step 10 | (bandwidth x median, lambda) per seed | wall time |")
  print("|---|---|---|---|---|---|---|---|---|")
  for name in names:
    r, c = _load(root, name)
    seeds = r["num_seeds"]
    diffs = []
    for s in (0, 1, 5, 10):
      m, h = _paired(c, seeds, "uniform", s)
      diffs.append(f"{m:+.2f} ± {h:.2f}" + (" *" if abs(m) > h else ""))
    sel = ", ".join(f"({x['bandwidth_scale']:g}, {x['lam']:g})" for x in r.get("selection", []))
    print(f"| `{name}` | {r['alpha/mass_on_true_group']:.2f} ± "
          f"{r['alpha/mass_on_true_group_ci95']:.2f} | {r['alpha/effective_sources']:.1f} | "
          + " | ".join(diffs) + f" | {sel} | {r['wall_time_sec']:.0f} s |")


def details(root, name):
  r, c = _load(root, name)
  seeds = r["num_seeds"]
  print(f"\n#### {name}  (wall {r['wall_time_sec']:.0f} s, {seeds} seeds x "
        f"{r['num_targets']} targets)\n")
  print("| arm | step 0 | step 1 | step 5 | step 10 | step 100 | median step 1 / 10 | "
        "diverged (of all) |")
  print("|---|---|---|---|---|---|---|---|")
  for arm in ("alpha", "uniform", "oracle", "pooled", "scratch"):
    cells = [_f(r[f"{arm}/step{s}"], r[f"{arm}/step{s}_ci95"]) for s in STEPS]
    med = f"{r[f'{arm}/step1_median']:.3f} / {r[f'{arm}/step10_median']:.3f}"
    div = max(r[f"{arm}/step{s}_diverged"] for s in STEPS[1:])
    print(f"| {arm} | " + " | ".join(cells) + f" | {med} | {div} |")
  print(f"| scratch, Adam 500 steps | | | | | "
        f"{_f(r['scratch_adam/final'], r['scratch_adam/final_ci95'])} | "
        f"{r['scratch_adam/final_median']:.3f} | {r['scratch_adam/final_diverged']} |\n")
  print("| paired | step 0 | step 1 | step 5 | step 10 | step 100 |")
  print("|---|---|---|---|---|---|")
  for ref in ("uniform", "oracle"):
    cells = [_f(r[f"alpha_minus_{ref}/step{s}"], r[f"alpha_minus_{ref}/step{s}_ci95"])
             + f" ({r[f'alpha_beats_{ref}_seeds/step{s}']}/{seeds})" for s in STEPS]
    print(f"| alpha - {ref}: mean diff (seeds where alpha better) | " + " | ".join(cells) + " |")
    wins = []
    for s in STEPS:
      w = [np.mean(np.nan_to_num(c[f"seed{i}_alpha"][:, s], nan=np.inf)
                   < np.nan_to_num(c[f"seed{i}_{ref}"][:, s], nan=np.inf)) for i in range(seeds)]
      wins.append("{:.2f} ± {:.2f}".format(*_ci(w)))
    print(f"| alpha - {ref}: fraction of targets where alpha better | " + " | ".join(wins) + " |")
    ok = ["{:+.3f} ± {:.3f}".format(*_paired(c, seeds, ref, s)) for s in STEPS]
    print(f"| alpha - {ref}: mean diff without diverged targets | " + " | ".join(ok) + " |")
  a = {k: f"{r['alpha/' + k]:.3f} ± {r['alpha/' + k + '_ci95']:.3f}"
       for k in ("mass_on_true_group", "effective_sources", "l1_to_uniform")}
  print(f"\nalpha: mass on the true group {a['mass_on_true_group']}, effective number of sources "
        f"{a['effective_sources']}, L1 to uniform {a['l1_to_uniform']} (mean ± 95% t-interval "
        "over seeds).\n")
  sweep = r["lambda_sweep"]
  print("| lambda (seed 0, its bandwidth) | " + " | ".join(f"{s['lam']:g}" for s in sweep) + " |")
  print("|---|" + "---|" * len(sweep))
  for k in ("mass_on_true_group", "effective_sources", "l1_to_uniform"):
    print(f"| {k} | " + " | ".join(f"{s[k]:.3f}" for s in sweep) + " |")


if __name__ == "__main__":
  summary(sys.argv[1], sys.argv[2:])
  for run_name in sys.argv[2:]:
    details(sys.argv[1], run_name)
