r"""Reads the 20-seed Feature Gradients selection runs by the rule in RULE.md (next to this file).

  python experiments/feature_gradients/seeds20/read.py /work/runs/fg_s20_{dataset} \
      [/work/runs/fg_ce_{dataset}]

Per k: the 20-seed means of FG, f_classif, mutual_info and all features, FG minus the best filter
(by mean) and minus all features, each with the paired standard error over seeds. With a second
workdir (the 5-seed run), also checks that seeds 0-4 reproduce its FG / f_classif / all rows.
"""

import json
import os
import sys

import numpy as np

FILTERS = ("f_classif", "mutual_info")


def paired(a, b):
  d = np.asarray(a) - np.asarray(b)
  return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))


def read(workdir: str) -> dict:
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


def table(res: dict) -> list[dict]:
  acc = res["accuracy_per_seed"]
  fg, everything = acc["feature_gradients"], acc["all"]["all"]
  rows = []
  for k in map(str, res["ks"]):
    best = max(FILTERS, key=lambda m: np.mean(acc[m][k]))
    d_best, se_best = paired(fg[k], acc[best][k])
    d_all, se_all = paired(fg[k], everything)
    rows.append(dict(k=int(k), n=len(fg[k]), fg=float(np.mean(fg[k])),
                     **{m: float(np.mean(acc[m][k])) for m in FILTERS},
                     all=float(np.mean(everything)), best=best, d_best=d_best, se_best=se_best,
                     d_all=d_all, se_all=se_all, at_least_best=d_best >= 0, above_all=d_all > 0))
  return rows


def check_first_seeds(res: dict, ref: dict) -> bool:
  """Seeds 0..n-1 of `res` reproduce the n-seed run `ref` (FG, f_classif, all)."""
  a, b = res["accuracy_per_seed"], ref["accuracy_per_seed"]
  for m in ("feature_gradients", "f_classif", "all"):
    for k, v in b[m].items():
      if not np.allclose(a[m][k][:len(v)], v, atol=1e-12):
        return False
  return True


def main(workdir: str, ref: str | None = None) -> None:
  res = read(workdir)
  print(f"{res['dataset']}: {len(res['accuracy_per_seed']['all']['all'])} seeds")
  if ref:
    print("seeds 0-4 reproduce the 5-seed run:", check_first_seeds(res, read(ref)))
  print_table(res)


def print_table(res: dict) -> None:
  """Prints `table(res)` as markdown."""
  print("| k | FG | f_classif | mutual_info | all | FG - best filter (paired SE) | "
        "FG - all (paired SE) |")
  print("|---|---|---|---|---|---|---|")
  for r in table(res):
    print(f"| {r['k']} | {r['fg']:.3f} | {r['f_classif']:.3f} | {r['mutual_info']:.3f} | "
          f"{r['all']:.3f} | {r['d_best']:+.3f} ± {r['se_best']:.3f} ({r['best']}) | "
          f"{r['d_all']:+.3f} ± {r['se_all']:.3f} |")


if __name__ == "__main__":
  main(*sys.argv[1:3])
