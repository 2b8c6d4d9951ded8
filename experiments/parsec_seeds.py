r"""Search-to-search variance of PARSEC vs DARTS: merges `:cpu` runs with different search seeds.

  python experiments/parsec_seeds.py --runs DIR1 DIR2 ... [--random_median 0.7266]

Each DIR is the --workdir of one `configs/parsec_fashion_mnist.py:cpu` run with one search method
enabled and its own --config.train.seed (the seed of the warm-up and search: initial weights,
minibatches, sampled architectures; the data split and the retrain seeds stay fixed). Prints, per
run, the genotype, the final entropy and the retrained accuracy (mean +- sd over the retrain
seeds), then per method the mean over search seeds of those means and their sd across search
seeds. Every number is read from the runs (summary.json, config.json).
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from metanas import metric_writer  # pylint: disable=g-import-not-at-top,wrong-import-position

_SHORT = {"sep_conv_3x3": "sep3", "sep_conv_5x5": "sep5", "dil_conv_3x3": "dil3",
          "dil_conv_5x5": "dil5", "max_pool_3x3": "max3", "avg_pool_3x3": "avg3",
          "skip_connect": "skip"}


def _short(genotype):
  text = "; ".join(genotype)
  for k, v in _SHORT.items():
    text = text.replace(k, v)
  return text


def load_run(d):
  """One row per search method found in run dir `d`."""
  with open(os.path.join(d, "summary.json")) as f:
    s = json.load(f)
  seed = None
  cfg_path = os.path.join(d, "results.json")
  if os.path.exists(cfg_path):
    with open(cfg_path) as f:
      seed = json.load(f).get("config", {}).get("train", {}).get("seed")
  rows = []
  for key in ("parsec", "darts"):
    if key not in s:
      continue
    r = s[key]
    final = r.get("final", {})
    entropy = r.get("final_entropy", final.get("eval/entropy", final.get("entropy")))
    logs = [m for m in metric_writer.read_metrics(os.path.join(d, f"search_{key}"))
            if "train/loss" in m]
    acc = s.get("retrain", {}).get(key, {}).get("all", [])
    rows.append({"method": key, "seed": seed, "dir": d, "genotype": _short(r["genotype"]),
                 "entropy": entropy, "ess": logs[-1].get("train/ess_train") if logs else None, "accs": acc,
                 "search_seconds": r["search_seconds"],
                 "retrain_seconds": s.get("retrain", {}).get("seconds")})
  return rows


def summarise(rows):
  """Per method: the per-seed retrain means, their mean and sd across search seeds."""
  out = {}
  for key in [k for k in ("parsec", "darts") if any(r["method"] == k for r in rows)]:
    means = np.asarray([np.mean(r["accs"]) for r in rows if r["method"] == key and r["accs"]])
    pooled = np.concatenate([r["accs"] for r in rows if r["method"] == key and r["accs"]])
    out[key] = {"seed_means": means.tolist(), "mean": float(means.mean()),
                "sd_across_seeds": float(means.std(ddof=1)) if means.size > 1 else float("nan"),
                "pooled_mean": float(pooled.mean()), "pooled_sd": float(pooled.std(ddof=1))}
  return out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--runs", nargs="+", required=True)
  ap.add_argument("--random_median", type=float, default=None)
  ap.add_argument("--random_runs", nargs="*", default=(),
                  help="workdirs of random-architecture retrains (random_shard runs); their median "
                       "replaces --random_median")
  args = ap.parse_args()
  if args.random_runs:
    rand = []
    for d in args.random_runs:
      with open(os.path.join(d, "summary.json")) as f:
        rand += json.load(f)["retrain"]["random"]["all"]
    args.random_median = float(np.median(rand))
    print(f"{len(rand)} random architectures: median {args.random_median:.4f}, mean "
          f"{np.mean(rand):.4f} +- {np.std(rand):.4f}, range {min(rand):.4f}-{max(rand):.4f} "
          f"({', '.join(f'{v:.4f}' for v in rand)})\n")
  rows = [row for d in args.runs for row in load_run(d)]
  rows.sort(key=lambda r: (r["method"] != "parsec", r["seed"] if r["seed"] is not None else -1))
  print("| method | search seed | genotype | final entropy (nats) | final ESS (train) | "
        "retrained test acc (retrain seeds) | search / retrain wall (s) |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    a = np.asarray(r["accs"])
    acc = (f"{a.mean():.4f} +- {a.std():.4f} ({', '.join(f'{v:.4f}' for v in a)})" if a.size
           else "-")
    ess = f"{r['ess']:.1f}" if r["ess"] is not None else "-"
    ret = f"{r['retrain_seconds']:.0f}" if r["retrain_seconds"] is not None else "-"
    print(f"| {r['method'].upper()} | {r['seed']} | `{r['genotype']}` | {r['entropy']:.2f} | "
          f"{ess} | {acc} | {r['search_seconds']:.0f} / {ret} |")
  print()
  summ = summarise(rows)
  print("| method | search seeds | mean of per-seed means | sd across search seeds | "
        "pooled mean +- sd (all retrains) |")
  print("|---|---|---|---|---|")
  for key, v in summ.items():
    print(f"| {key.upper()} | {len(v['seed_means'])} | {v['mean']:.4f} | "
          f"{v['sd_across_seeds']:.4f} | {v['pooled_mean']:.4f} +- {v['pooled_sd']:.4f} |")
  if "parsec" in summ and "darts" in summ:
    p, d = summ["parsec"], summ["darts"]
    diff = p["mean"] - d["mean"]
    se = np.sqrt(p["sd_across_seeds"] ** 2 / len(p["seed_means"])
                 + d["sd_across_seeds"] ** 2 / len(d["seed_means"]))
    print(f"\nPARSEC - DARTS (means over search seeds): {diff:+.4f}, standard error {se:.4f} "
          f"(from the sd across search seeds); PARSEC at most one standard error below DARTS "
          f"(rule of experiments/parsec/long/RULE.md): {'yes' if diff >= -se else 'no'}")
  if args.random_median is not None:
    for key, v in summ.items():
      above = np.mean(np.asarray(v["seed_means"]) > args.random_median)
      print(f"{key}: mean - random median {v['mean'] - args.random_median:+.4f}; "
            f"search seeds above the random median: {above:.2f}")


if __name__ == "__main__":
  main()
