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

from metanas.compression import tabular_experiment

STUDENTS = ("rf1", "rf5", "rf10", "rf20")


def main(root: str) -> None:
  runs = collections.defaultdict(dict)   # (setting, dataset) -> {seed: per-seed result}
  for path in glob.glob(os.path.join(root, "*", "results.json")):
    m = re.fullmatch(r"(adult|magic)_(.+)_s(\d+)", os.path.basename(os.path.dirname(path)))
    if not m:
      continue
    ds, setting, seed = m.group(1), m.group(2), int(m.group(3))
    with open(path) as f:
      runs[(setting, ds)][seed] = json.load(f)["per_seed"][ds][0]
  rows, means = [], collections.defaultdict(dict)
  for (setting, ds), per_seed in sorted(runs.items()):
    seeds = sorted(per_seed)
    summary = tabular_experiment.summarise([per_seed[k] for k in seeds])
    gaps = summary["gap_closed"]
    cells = [f"{gaps[s]['per_seed_mean']:.2f} ± {gaps[s]['per_seed_se']:.2f}"
             + ("" if gaps[s]["seeds_defined"] == len(seeds) else f" ({gaps[s]['seeds_defined']})")
             for s in STUDENTS]
    means[setting][ds] = (gaps["rf1"]["per_seed_mean"], len(seeds))
    per = ", ".join(f"{x:.2f}" for x in gaps["rf1"]["per_seed"])
    rows.append(f"| {setting} | {ds} | {','.join(map(str, seeds))} | "
                f"{summary['train']['rf1']['mean']:.4f} | {summary['train+gan']['rf1']['mean']:.4f} | "
                f"{per} | " + " | ".join(cells) + " |")
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
