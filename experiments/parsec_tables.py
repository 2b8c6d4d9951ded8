r"""Merges the PARSEC `:cpu` runs (possibly split over processes) into the tables of parsec.md.

  python experiments/parsec_tables.py --runs DIR1 DIR2 ... [--plot experiments/parsec/entropy.png]

Each DIR is the --workdir of a `configs/parsec_fashion_mnist.py:cpu` run (its summary.json and
search_*/metrics.jsonl). Parts found in several dirs must not overlap (e.g. one dir with the
PARSEC search, one with DARTS, two with random-architecture shards). Prints markdown tables; every
number is read from the runs.
"""

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from metanas import metric_writer  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.nas import parsec_experiment  # pylint: disable=g-import-not-at-top,wrong-import-position


def _load(dirs):
  merged = {"retrain": {}}
  random_ids, random_accs, random_geno = [], [], []
  for d in dirs:
    with open(os.path.join(d, "summary.json")) as f:
      s = json.load(f)
    for key in ("space", "parsec", "darts"):
      if key in s:
        merged[key] = s[key]
        if key in ("parsec", "darts"):
          merged[key]["dir"] = d
    for name, r in s.get("retrain", {}).items():
      if name == "random":
        random_ids += r["ids"]
        random_accs += r["all"]
        random_geno += r["genotypes"]
      elif name != "seconds":  # parsec / darts, possibly split over seed shards.
        cur = merged["retrain"].setdefault(name, {"seeds": [], "all": []})
        cur["seeds"] += r.get("seeds", list(range(len(r["all"]))))
        cur["all"] += r["all"]
    merged.setdefault("retrain_seconds", []).append(s.get("retrain", {}).get("seconds", 0.0))
  if len(set(random_ids)) != len(random_ids):
    raise ValueError(f"Random-architecture shards overlap: ids {sorted(random_ids)}.")
  for name, r in merged["retrain"].items():
    if len(set(r["seeds"])) != len(r["seeds"]):
      raise ValueError(f"Retrain seed shards of {name} overlap: {sorted(r['seeds'])}.")
  order = np.argsort(random_ids)
  merged["random"] = {"ids": [random_ids[i] for i in order],
                      "all": [random_accs[i] for i in order],
                      "genotypes": [random_geno[i] for i in order]}
  return merged


def _curve(d, sub, key):
  recs = [r for r in metric_writer.read_metrics(os.path.join(d, sub)) if key in r]
  return {r["step"]: r[key] for r in recs}


def _fmt(a):
  a = np.asarray(a)
  return f"{a.mean():.4f} +- {a.std():.4f} ({', '.join(f'{v:.4f}' for v in a)})"


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--runs", nargs="+", required=True)
  ap.add_argument("--plot", default=None)
  ap.add_argument("--every", type=int, default=25)
  args = ap.parse_args()
  m = _load(args.runs)
  out = []
  if "parsec" in m or "darts" in m:
    rows = {}
    if "parsec" in m:
      d = m["parsec"]["dir"]
      rows["PARSEC entropy (nats; uniform %.2f)" % m["space"]["max_entropy"]] = _curve(
          d, "search_parsec", "train/entropy")
      rows["PARSEC val log marginal / example"] = _curve(d, "search_parsec",
                                                         "train/val_log_marginal")
      rows["PARSEC ESS of omega (train, of K)"] = _curve(d, "search_parsec", "train/ess_train")
    if "darts" in m:
      rows["DARTS softmax entropy (nats)"] = _curve(m["darts"]["dir"], "search_darts",
                                                    "train/entropy")
      rows["DARTS val NLL"] = _curve(m["darts"]["dir"], "search_darts", "train/val_nll")
    steps = sorted({s for c in rows.values() for s in c if s % args.every == 0})
    out.append("| step | " + " | ".join(map(str, steps)) + " |")
    out.append("|---|" + "---|" * len(steps))
    for name, c in rows.items():
      out.append(f"| {name} | " + " | ".join(f"{c[s]:.2f}" if s in c else "-" for s in steps)
                 + " |")
    out.append("")
    for key in ("parsec", "darts"):
      if key in m:
        out.append(f"{key} genotype: {'; '.join(m[key]['genotype'])} "
                   f"(search incl. warm-up and compilation: {m[key]['search_seconds']:.0f} s)")
    if "parsec" in m:
      out.append(f"parsec final entropy: {m['parsec']['final_entropy']:.3f}")
    out.append("")
  if args.plot:
    curves = {}
    for key, sub, label in (("parsec", "search_parsec", "PARSEC"),
                            ("darts", "search_darts", "DARTS (softmax entropy)")):
      if key in m:
        c = _curve(m[key]["dir"], sub, "train/entropy")
        curves[label] = (sorted(c), [c[s] for s in sorted(c)])
    parsec_experiment._plot_entropy(curves, m["space"]["max_entropy"], args.plot)  # pylint: disable=protected-access
  ret = m["retrain"]
  out.append("| architecture | test accuracy |")
  out.append("|---|---|")
  for name in ("parsec", "darts"):
    if name in ret:
      out.append(f"| {name} ({len(ret[name]['all'])} seeds) | {_fmt(ret[name]['all'])} |")
  ra = np.asarray(m["random"]["all"])
  if ra.size:
    out.append(f"| {ra.size} random archs (1 seed each) | median {np.median(ra):.4f}, mean "
               f"{ra.mean():.4f} +- {ra.std():.4f}, range {ra.min():.4f}-{ra.max():.4f} |")
  out.append("")
  for i, a, g in zip(m["random"]["ids"], m["random"]["all"], m["random"]["genotypes"]):
    out.append(f"random {i}: {a:.4f}  {'; '.join(g)}")
  if "parsec" in ret and ra.size:
    p = np.mean(ret["parsec"]["all"])
    out.append(f"\nPARSEC mean - random median: {p - np.median(ra):+.4f}; fraction of random archs "
               f"below PARSEC mean: {np.mean(ra < p):.2f}")
    if "darts" in ret:
      out.append(f"PARSEC mean - DARTS mean: {p - np.mean(ret['darts']['all']):+.4f}")
  print("\n".join(out))


if __name__ == "__main__":
  main()
