r"""Markdown tables from the warped-LMM results.json files (for experiments/warped_lmm.md).

  python -m metanas.lmm.report --sim /tmp/warped_lmm_sim --mice /tmp/warped_lmm_mice \
      --wheat /tmp/warped_lmm_wheat
"""

import argparse
import json
import os


def _load(workdir):
  with open(os.path.join(workdir, "results.json")) as f:
    return json.load(f)


_TRANSFORMS = ("exp", "logistic", "cube", "mixture")
_METHODS = ("oracle", "raw", "rank_int", "box_cox", "warped")


def _sim_rows(res: dict):
  """(transform, method, row) in the paper's order (results.json stores the keys sorted)."""
  order = lambda k: tuple(  # Unknown names go last, alphabetically.
      (lst.index(v) if v in lst else len(lst), v)
      for lst, v in zip((_TRANSFORMS, _METHODS), k.split("/")))
  for key in sorted(res["table"], key=order):
    t, m = key.split("/")
    yield t, m, res["table"][key]


def sim_table(res: dict) -> str:
  fprs = res["fprs"]
  head = ("| transform | method | " + " | ".join(f"power @ FPR {f:g}" for f in fprs) +
          " | lambda_GC (mean +- sd over reps) | h2 (mean +- sd) | h2 - oracle (mean +- se) |")
  lines = [head, "|" + "---|" * (5 + len(fprs))]
  for t, m, row in _sim_rows(res):
    powers = " | ".join(f"{row[f'power@{f:g}']:.3f} +- {row[f'power_se@{f:g}']:.3f}" for f in fprs)
    lines.append(f"| {t} | {m} | {powers} | "
                 f"{row['lambda_gc_mean']:.3f} +- {row['lambda_gc_sd']:.3f}"
                 f" | {row['h2_mean']:.3f} +- {row['h2_sd']:.3f} | "
                 f"{row['h2_minus_oracle_mean']:+.3f} +- {row['h2_minus_oracle_se']:.3f} |")
  return "\n".join(lines)


def sim_paired_table(res: dict, ref: str = "raw") -> str:
  """Paired comparison of each method with `ref` ("raw" or "oracle") on the same causal SNPs.

  Columns: mean paired difference of -log10 p (SE clustered by replicate; naive SE over all pairs)
  and, per FPR, McNemar's test on detections (gain / loss = detected only by the method / only by
  `ref`, paired power difference +- SE, exact two-sided p).
  """
  fprs = res["fprs"]
  head = (f"| transform | method | -log10 p - {ref} (mean +- se by rep.; se pairs) | " +
          " | ".join(f"McNemar vs {ref} @ {f:g}: gain/loss, dpower +- se, p" for f in fprs) + " |")
  lines = [head, "|" + "---|" * (3 + len(fprs))]
  for t, m, row in _sim_rows(res):
    if f"dlog10p_vs_{ref}_mean" not in row:
      continue
    cells = []
    for f in fprs:
      mc = row[f"mcnemar_vs_{ref}@{f:g}"]
      cells.append(f"{mc['gain']}/{mc['loss']}, {mc['power_diff']:+.3f} +- {mc['se']:.3f}, "
                   f"p={mc['pval']:.2g}")
    lines.append(f"| {t} | {m} | {row[f'dlog10p_vs_{ref}_mean']:+.3f} +- "
                 f"{row[f'dlog10p_vs_{ref}_se']:.3f}; {row[f'dlog10p_vs_{ref}_se_pairs']:.3f} | " +
                 " | ".join(cells) + " |")
  return "\n".join(lines)


def mice_table(res: dict) -> str:
  lines = ["| trait | N (dropped NaN) | h2 LMM | h2 warped | sig. SNPs LMM / warped | "
           "loci LMM / warped | lambda_GC LMM / warped |", "|---|---|---|---|---|---|---|"]
  for trait, row in res["traits"].items():
    a, b = row["lmm"], row["warped_lmm"]
    lines.append(f"| {trait} | {row['num_individuals']} ({row['num_dropped_missing']}) | "
                 f"{a['h2']:.3f} | {b['h2']:.3f} | {a['num_significant_snps']} / "
                 f"{b['num_significant_snps']} | {a['num_loci']} / {b['num_loci']} | "
                 f"{a['lambda_gc']:.3f} / {b['lambda_gc']:.3f} |")
  return "\n".join(lines)


def wheat_table(res: dict) -> str:
  lines = ["| trait | method | Pearson r (mean +- se over folds) | MSE | mean log pred. density |",
           "|---|---|---|---|---|"]
  for trait, row in res["traits"].items():
    for m in ("lmm", "warped_median", "warped_mean"):
      r = row[m]
      lines.append(f"| {trait} | {m} | {r['r_mean']:.3f} +- {r['r_se']:.3f} | "
                   f"{r['mse_mean']:.3f} +- {r['mse_se']:.3f} | "
                   f"{r['log_density_mean']:.3f} +- {r['log_density_se']:.3f} |")
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--sim")
  parser.add_argument("--mice")
  parser.add_argument("--wheat")
  args = parser.parse_args()
  if args.sim:
    res = _load(args.sim)
    print(f"LOCO: {res.get('loco', False)}; replicates {res.get('num_replicates_done', '?')}/"
          f"{res['num_replicates']}; wall {res['wall_time_sec']:.0f} s\n")
    print(sim_table(res), "\n")
    for ref in ("raw", "oracle"):
      print(sim_paired_table(res, ref), "\n")
  if args.mice:
    res = _load(args.mice)
    print(mice_table(res), "\n")
    if "speed" in res:
      print(json.dumps(res["speed"], indent=1), "\n")
  if args.wheat:
    print(wheat_table(_load(args.wheat)))


if __name__ == "__main__":
  main()
