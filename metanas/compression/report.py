"""Markdown tables from gan_compression results.json files.

  python -m metanas.compression.report /tmp/gan_compression_tabular/results.json \
      /tmp/gan_compression_images/results.json
Several tabular results.json files (seeds run in separate processes) are merged into one table.
"""

import json
import sys

from metanas.compression import image_experiment
from metanas.compression import tabular_experiment


def _pm(d: dict, digits: int = 4) -> str:
  return f"{d['mean']:.{digits}f} ± {d['se']:.{digits}f}"


def _order(students):
  rf = sorted((k for k in students if k.startswith("rf")), key=lambda k: int(k[2:]))
  return rf + [k for k in students if not k.startswith("rf")]


def tabular_tables(per_seed: dict) -> str:
  """One table per dataset: rows = transfer sets, columns = students; then the gap closed."""
  lines = []
  for name, runs in per_seed.items():
    s = tabular_experiment.summarise(runs)
    students = _order(s["train"])
    lines.append(f"**{name}** — teacher (500-tree RF) test AUC {_pm(s['teacher'])}\n")
    lines.append("| transfer set | " + " | ".join(students) + " |")
    lines.append("|---" * (len(students) + 1) + "|")
    for set_name in tabular_experiment.TRANSFER_SETS:
      if set_name in s:
        lines.append(f"| {set_name} | " + " | ".join(_pm(s[set_name][k]) for k in students) + " |")
    if "gap_closed" in s:
      g = s["gap_closed"]
      lines.append("| **gap closed by train+gan** (of means) | "
                   + " | ".join(f"{g[k]['of_means']:.2f}" for k in students) + " |")
      lines.append("| gap closed, per-seed mean ± s.e. (seeds where defined) | "
                   + " | ".join(f"{g[k]['per_seed_mean']:.2f} ± {g[k]['per_seed_se']:.2f} "
                                f"({g[k]['seeds_defined']})" for k in students) + " |")
    lines.append("")
  return "\n".join(lines)


def image_tables(results: dict) -> str:
  lines = [f"Teacher CNN test accuracy: {results['teacher_acc']:.4f}\n"]
  if "augmentation" in results:
    lines += ["| transfer set (student MLP) | test accuracy |", "|---|---|"]
    for k in image_experiment.AUG_SETS:
      v = results["augmentation"][k]
      lines.append(f"| {k} | {_pm(v)} |")
    lines.append("")
  if "compression_score" in results:
    lines += ["| generator | Compression Score | student acc (synthetic) | IS-style | FID-style |",
              "|---|---|---|---|---|"]
    for k in image_experiment.GENERATORS:
      v = results["compression_score"][k]
      acc = sum(v["acc_synthetic"]) / len(v["acc_synthetic"])
      lines.append(f"| {k} | {v['cs_mean']:.3f} ± {v['cs_se']:.3f} | {acc:.3f} | "
                   f"{v['is_style']:.2f} | {v['fid_style']:.1f} |")
  return "\n".join(lines)


def main(paths: list[str]) -> None:
  """Prints the image tables of each file and ONE set of tabular tables over all tabular files.

  Tabular runs split over several processes (e.g. `--config.seed=3 --config.num_seeds=2`) are
  merged: their per-seed results are concatenated per dataset, in the order given.
  """
  merged = {}
  for path in paths:
    with open(path) as f:
      results = json.load(f)
    print(f"### {path} (wall {results.get('wall_s', float('nan')):.0f} s)\n")
    if "per_seed" in results:
      for name, runs in results["per_seed"].items():
        merged.setdefault(name, []).extend(runs)
    else:
      print(image_tables(results))
  if merged:
    print(tabular_tables(merged))


if __name__ == "__main__":
  main(sys.argv[1:])
