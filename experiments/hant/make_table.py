"""Prints the markdown tables of experiments/hant.md from a HANT workdir (sweep.json, results.json).

Usage: python experiments/hant/make_table.py /work/runs/hant_cpu2 [remeasured]
(`remeasured`: the tables from remeasure.py's sweep_remeasured.json / results_remeasured.json; a run
stopped before its end is read from sweep_partial.json / results_partial.json).
"""

import json
import os
import sys


def main(workdir: str, variant: str = "") -> None:
  suffix = f"_{variant}" if variant else ""
  path = os.path.join(workdir, f"results{suffix}.json")
  if not os.path.exists(path):
    path = os.path.join(workdir, "results_partial.json")
  with open(path) as f:
    res = json.load(f)
  path = os.path.join(workdir, f"sweep{suffix}.json")
  if not os.path.exists(path):
    path = os.path.join(workdir, "sweep_partial.json")
  with open(path) as f:
    sweep = json.load(f)
  t_acc = res["teacher_test_acc"]
  for dev in sorted({r["device"] for r in sweep}):
    t_ms = res.get(f"{dev}/teacher_measured_ms")
    print(f"\n### {dev} (teacher: {100 * t_acc:.2f}% test acc, measured "
          f"{t_ms if t_ms is None else round(t_ms, 3)} ms, predicted "
          f"{res[f'{dev}/teacher_predicted_ms']:.3f} ms)\n")
    print("| budget (% of teacher pred.) | method | predicted ms | measured ms | speed-up | acc before "
          "fine-tune | test acc | acc loss (pts) | solve s | RF |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in sweep:
      if r["device"] != dev:
        continue
      if r["method"] in ("width", "width_kd"):
        kd = " + KD" if r["method"] == "width_kd" else ""
        print(f"| - | width x{r['width_mult']}{kd} | - | {r['measured_ms']:.3f} | "
              f"{r['speedup']:.2f}x | "
              f"- | {100 * r['test_acc']:.2f} | {100 * (t_acc - r['test_acc']):.2f} | - | - |")
      elif "infeasible" in r:
        print(f"| {100 * r['frac']:.0f}% | {r['method']} | infeasible | | | | | | | |")
      else:
        m = r.get("measured_ms")
        sp = r.get("speedup")
        print(f"| {100 * r['frac']:.0f}% | {r['method']} | {r['predicted_ms']:.3f} | "
              f"{'-' if m is None else f'{m:.3f}'} | {'-' if sp is None else f'{sp:.2f}x'} | "
              f"{100 * r['acc_before']:.2f} | {100 * r['test_acc']:.2f} | "
              f"{100 * (t_acc - r['test_acc']):.2f} | {r['solve_time_s']:.2f} | "
              f"{r.get('receptive_field', '-')} |")


if __name__ == "__main__":
  main(*sys.argv[1:3])
