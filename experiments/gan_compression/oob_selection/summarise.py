"""Tabulates validation runs named <dataset>_<setting>_s<seed> (see RULE.md in this folder).

Usage:
  python experiments/gan_compression/oob_selection/summarise.py /work/runs/gan_oob/val
Prints, per setting and dataset, the per-seed 1-tree gap closed by train+GAN, its mean +- s.e.,
the 5/10/20-tree means, and the rule's score (min over datasets of the 1-tree mean).
"""
import collections
import glob
import json
import os
import re
import sys

import numpy as np

from metanas.compression import score

STUDENTS = ("rf1", "rf5", "rf10", "rf20")


def main(root: str) -> None:
  runs = collections.defaultdict(dict)   # (setting, dataset) -> {seed: per-seed result}
  for path in glob.glob(os.path.join(root, "*", "results.json")):
    m = re.fullmatch(r"(adult|magic)_(.+)_s(\d+)", os.path.basename(os.path.dirname(path)))
    if not m:
      continue
    ds, setting, seed = m.group(1), m.group(2), int(m.group(3))
    runs[(setting, ds)][seed] = json.load(open(path))["per_seed"][ds][0]
  rows, means = [], collections.defaultdict(dict)
  for (setting, ds), per_seed in sorted(runs.items()):
    gaps = {s: [] for s in STUDENTS}
    for seed in sorted(per_seed):
      r = per_seed[seed]
      for s in STUDENTS:
        gap = r["teacher"] - r["train"][s]
        gaps[s].append((r["train+gan"][s] - r["train"][s]) / gap if gap > 1e-3 else np.nan)
    cells = []
    for s in STUDENTS:
      g = np.asarray(gaps[s])
      g = g[np.isfinite(g)]
      mean, se = score.mean_and_se(g) if g.size else (np.nan, np.nan)
      cells.append(f"{mean:.2f} ± {se:.2f}" + ("" if g.size == len(per_seed) else f" ({g.size})"))
      if s == "rf1":
        means[setting][ds] = (mean, len(per_seed))
    per = ", ".join(f"{x:.2f}" for x in gaps["rf1"])
    train1 = np.mean([per_seed[k]["train"]["rf1"] for k in per_seed])
    tg1 = np.mean([per_seed[k]["train+gan"]["rf1"] for k in per_seed])
    rows.append(f"| {setting} | {ds} | {','.join(map(str, sorted(per_seed)))} | {train1:.4f} | "
                f"{tg1:.4f} | {per} | " + " | ".join(cells) + " |")
  print("| setting | dataset | seeds | train rf1 AUC | train+gan rf1 AUC | rf1 gap per seed | "
        "rf1 | rf5 | rf10 | rf20 |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  print("\n".join(rows))
  print("\nRule score (min over datasets of the rf1 mean; settings with both datasets):")
  for setting, d in sorted(means.items(), key=lambda kv: -min(v[0] for v in kv[1].values())):
    if len(d) == 2:
      print(f"  {setting}: {min(v[0] for v in d.values()):.3f}  "
            + "  ".join(f"{k} {v[0]:.3f} ({v[1]} seeds)" for k, v in sorted(d.items())))


if __name__ == "__main__":
  main(sys.argv[1])
