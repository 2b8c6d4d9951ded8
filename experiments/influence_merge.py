r"""Merges influence-subsampling runs that differ only in their draw block, and compares methods.

Runs of `configs/influence_subsampling.py` with the same data (`seed`) and `config.draw_round`
0, 1, ... hold disjoint, independent blocks of sampling seeds; this script concatenates their
per-seed values (tau, resolved-pair tau, regret, parameter error) and prints the usual table
(`influence_experiment.markdown_table`, mean +- standard error over all seeds) and, for each
(dataset, m), method vs baseline with z = (mean_a - mean_b) / sqrt(se_a^2 + se_b^2). The draws of
two methods at the same seed index are independent (the generator is keyed by the method), so
the two samples are unpaired and this is the standard error of the difference.

  python experiments/influence_merge.py /tmp/r4/ht_r0 /tmp/r4/ht_r1 [--method influence]
      [--baselines uniform,leverage] [--plot out.png]
"""

import argparse
import json
import os

import numpy as np

from metanas.selection import influence_experiment as ie

_KEYS = ("tau", "tau_resolved", "regret", "param_error")
# +1: higher is better; -1: lower is better.
_SIGN = {"tau": 1, "tau_resolved": 1, "regret": -1, "param_error": -1}


def merge(workdirs: list[str]) -> tuple[dict, list[int], list[str], dict]:
  """Concatenates, per (dataset, m, method), the per-seed arrays of every run that has it.

  Runs may cover different subsets of `sizes` (a draw is keyed by the value of m, so a run over
  sizes=(250,) draws exactly what a run over all sizes draws at m = 250), but must agree on
  everything else that changes the draws or the fits.
  """
  loaded = []
  for w in workdirs:
    with open(os.path.join(w, "results.json")) as f:
      loaded.append(json.load(f))
  cfg0 = loaded[0]["config"]
  methods = list(cfg0["methods"])
  for r in loaded[1:]:
    c = r["config"]
    for k in ("seed", "datasets", "methods", "pool_size", "val_size", "test_size", "candidates",
              "subsample", "fit", "synthetic", "features"):
      if c[k] != cfg0[k]:
        raise ValueError(f"Runs differ in config.{k}: {c[k]} vs {cfg0[k]}.")
  sizes = sorted({m for r in loaded for m in r["config"]["sizes"]})
  out, counts = {}, {}
  for name in cfg0["datasets"]:
    runs = {}
    for m in sizes:
      have = [r for r in loaded if m in r["config"]["sizes"]]
      rounds = [r["config"].get("draw_round", 0) for r in have]
      if len(set(rounds)) != len(rounds):
        raise ValueError(f"Runs at m={m} share a draw_round {rounds}: their seeds would be "
                         "duplicates.")
      for method in methods:
        key = f"m={m}/{method}"
        recs = [r["datasets"][name]["runs"][key] for r in have]
        n = [len(x["tau"]) for x in recs]
        rec = {k: np.concatenate([np.asarray(x[k], np.float64) for x in recs]) for k in _KEYS}
        rec["seconds_per_seed"] = float(np.average([x["seconds_per_seed"] for x in recs],
                                                   weights=n))
        runs[key] = rec
        counts[(name, m)] = {"rounds": rounds, "seeds": n}
    res = {"runs": runs, "pool_size": loaded[0]["datasets"][name]["pool_size"],
           "full_fit_seconds": float(np.mean([r["datasets"][name]["full_fit_seconds"]
                                              for r in loaded]))}
    res["summary"] = ie.summarise(res)
    out[name] = res
  info = {"per_size": counts, "total_seconds": [r["total_seconds"] for r in loaded]}
  return out, sizes, methods, info


def compare(results: dict, sizes, method: str, baseline: str) -> str:
  """Markdown table of `method` vs `baseline` per (dataset, m), in the md file's format."""
  lines = ["| dataset | m | tau | tau (resolved) | regret | param. error |",
           "|---|---|---|---|---|---|"]
  for name, res in results.items():
    for m in sizes:
      a, b = res["summary"][f"m={m}/{method}"], res["summary"][f"m={m}/{baseline}"]
      cells = []
      for k in _KEYS:
        d = a[k] - b[k]
        se = np.hypot(a[f"{k}_se"], b[f"{k}_se"])
        z = d / se if se > 0 else 0.0
        word = "equal" if d == 0 else ("better" if _SIGN[k] * d > 0 else "worse")
        fmt = ".4f" if k == "regret" else ".3f"
        cells.append(f"{a[k]:{fmt}} vs {b[k]:{fmt}}, {word}, z = {z:+.1f}")
      lines.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("workdirs", nargs="+")
  p.add_argument("--method", default="influence")
  p.add_argument("--baselines", default="uniform,leverage")
  p.add_argument("--plot", default="", help="PNG path for regret vs m and vs compute (merged)")
  args = p.parse_args()
  results, sizes, methods, info = merge(args.workdirs)
  for (name, m), c in info["per_size"].items():
    print(f"{name} m={m}: draw rounds {c['rounds']}, seeds {c['seeds']} (total {sum(c['seeds'])})")
  print(f"run wall seconds {[round(t) for t in info['total_seconds']]}")
  print(ie.markdown_table(results, sizes, methods))
  for b in args.baselines.split(","):
    print(f"{args.method} vs {b}:")
    print(compare(results, sizes, args.method, b))
  if args.plot:
    ie.plot_regret(results, os.path.dirname(os.path.abspath(args.plot)), sizes, methods,
                   filename=os.path.basename(args.plot))


if __name__ == "__main__":
  main()
