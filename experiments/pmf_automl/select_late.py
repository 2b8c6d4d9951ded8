r"""Second selection round: late-search variants of PMF+EI, on the TRAINING datasets only.

  METANAS_DATA_DIR=../shared/data nice -n 19 python experiments/pmf_automl/select_late.py \
      --out experiments/pmf_automl/selection_late [--keeps 1.0,0.3] [--groups base,q5,q20]

Same 5-fold BO simulation as select_variant.py (the 355 training datasets of split 0 cut into 5
folds; fit the GP-LVM on 4, search the complete columns of the 5th), but every variant is ranked
against all five baselines of the experiment (random x1/x2/x4, best-average-rank portfolio,
meta-feature NN + random), i.e. exactly the issue's six-arm ranking, with PMF+EI replaced by the
variant. Variants: the current default (column refit, nugget 0.01), the paper's EI, a refit of a
lengthscale factor, EI with a fallback (largest predictive variance, or lowest predictive mean)
once the largest EI falls below a threshold, warm-start size / type; and groups with their own
fits, each searched with the current default: the default alone ("default"), ensembles of 3 or
5 fits ("ens3", "ens5"), GP-LVM latent dimension Q and training length ("q5", ...); and "ts",
the default with Thompson sampling in place of EI (fourth round).

Selection rule (fixed before running): among the variants whose pooled mean regret AND six-arm
average rank are better than every baseline's at both 25 and 50 evaluations, the one with the
lowest mean regret over evaluations 25..50; if none qualifies, the lowest mean regret over
25..50 overall. Pooled over the sparsities in --keeps and all held-out columns. The test
datasets are never read. Per-fold outputs are cached in --out/cache so groups can be added.
"""

import argparse
import json
import os
import time

import numpy as np

from metanas import config_lib
from metanas.automl import validation

NUM_FOLDS = 5
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
REPORT_AT = (10, 25, 50)
REFIT = (0.01,)  # The current default's nugget grid.
LS_GRID = (0.5, 0.71, 1.0, 1.41, 2.0)
SEARCH_VARIANTS = {
    "default_refit": {"column_noise": REFIT},
    "paper_ei": {"column_noise": None},
    "refit_lengthscale": {"column_noise": REFIT, "lengthscale_grid": LS_GRID},
    "fallback_var_1e-3": {"column_noise": REFIT, "explore_below": 1e-3, "fallback": "variance"},
    "fallback_var_1e-2": {"column_noise": REFIT, "explore_below": 1e-2, "fallback": "variance"},
    "fallback_mean_1e-3": {"column_noise": REFIT, "explore_below": 1e-3, "fallback": "mean"},
    "fallback_mean_1e-2": {"column_noise": REFIT, "explore_below": 1e-2, "fallback": "mean"},
    "warm3": {"column_noise": REFIT, "num_warm": 3},
    "warm10": {"column_noise": REFIT, "num_warm": 10},
    "rankwarm5": {"column_noise": REFIT, "warm": "rank"},
}
# GP-LVM settings with their own fits, each with the current `:cpu` search default (column
# refit with nugget 0.01, portfolio warm start of 5; = "rankwarm5" of the base group, and the
# "default" group alone). num_fits: an ensemble of fits (pmf.fit_ensemble; EI of the mixture).
DEFAULT_SEARCH = {"column_noise": REFIT, "warm": "rank"}
GROUPS = {
    "base": ({}, SEARCH_VARIANTS),
    "default": ({}, {"rankwarm5": DEFAULT_SEARCH}),
    "ens3": ({"num_fits": 3}, {"ens3_rankwarm5": DEFAULT_SEARCH}),
    "ens5": ({"num_fits": 5}, {"ens5_rankwarm5": DEFAULT_SEARCH}),
    "q5": ({"num_latent": 5}, {"q5_rankwarm5": DEFAULT_SEARCH}),
    "q20": ({"num_latent": 20}, {"q20_rankwarm5": DEFAULT_SEARCH}),
    "steps500": ({"num_steps": 500}, {"steps500_rankwarm5": DEFAULT_SEARCH}),
    "steps3000": ({"num_steps": 3000}, {"steps3000_rankwarm5": DEFAULT_SEARCH}),
    # Fourth round: Thompson sampling instead of EI, same fit as "default" (selection_thompson/).
    "ts": ({}, {"ts_rankwarm5": {**DEFAULT_SEARCH, "acquisition": "thompson"}}),
}


def _config():
  config = config_lib.load_config(os.path.join(ROOT, "configs", "pmf_automl.py:cpu"))
  config.data_dir = os.environ.get("METANAS_DATA_DIR", "../shared/data")
  return config


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--keeps", default="1.0,0.3")
  parser.add_argument("--groups", default="base")
  parser.add_argument("--folds", default="0,1,2,3,4", help="folds to run (summaries use these)")
  args = parser.parse_args()
  keeps = tuple(float(k) for k in args.keeps.split(","))
  groups = args.groups.split(",")
  cache = os.path.join(args.out, "cache")
  os.makedirs(cache, exist_ok=True)
  config = _config()
  errors, feats, folds = validation.training_folds(config, NUM_FOLDS)
  start = time.time()
  sims = {}  # keep -> list over folds of {arm: best_so_far}
  for k_i, keep in enumerate(keeps):
    k_seed = {1.0: 0, 0.3: 1, 0.1: 2}.get(keep, 3)  # The seeds select_variant.py used.
    sims[keep] = []
    for f_i in [int(f) for f in args.folds.split(",")]:
      val_cols = folds[f_i]
      fit_cols = np.setdiff1d(np.arange(errors.shape[1]), val_cols)
      merged = {}
      for g in groups:
        overrides, variants = GROUPS[g]
        pmf_config = config.pmf.copy_and_resolve_references()
        pmf_config.update(overrides)
        path = os.path.join(cache, f"{g}_keep{keep}_fold{f_i}.npz")
        out = validation.cached(path, lambda: validation.simulate_fold(
            errors, feats, fit_cols, val_cols, keep, variants, pmf_config, config.search,
            seed=100 * k_seed + f_i, all_arms=True))
        merged.update(out if not merged else {v: out[v] for v in variants})
      sims[keep].append(merged)
      print(f"keep {keep} fold {f_i}: {time.time() - start:.0f} s", flush=True)
  variants = [v for g in groups for v in GROUPS[g][1]]
  summarise = lambda part: validation.summarise_variants(part, REPORT_AT, 25, 50,
                                                         validation.BASELINE_ARMS)
  summaries = {"pooled": summarise([s for k in keeps for s in sims[k]])}
  for keep in keeps:
    summaries[f"keep_{int(round(100 * keep))}pct"] = summarise(sims[keep])
  pooled = summaries["pooled"]

  def beats_all(v):
    row = pooled[v]
    return all(row[f"regret@{i}"] < min(pooled[b][f"regret@{i}"] for b in validation.BASELINE_ARMS)
               and row[f"rank@{i}"] < row[f"best_baseline_rank@{i}"] for i in (25, 50))

  qualified = [v for v in variants if beats_all(v)]
  chosen = min(qualified or variants, key=lambda v: pooled[v]["score"])
  result = {"folds": NUM_FOLDS, "keeps": keeps, "groups": {g: GROUPS[g] for g in groups},
            "summaries": summaries, "qualified": qualified, "chosen": chosen,
            "wall_seconds": time.time() - start}
  with open(os.path.join(args.out, "selection.json"), "w") as f:
    json.dump(result, f, indent=1)
  lines = [f"Qualified (beat every baseline on regret and rank at 25 and 50): {qualified}",
           f"Chosen: **{chosen}**", ""]
  for key, summary in summaries.items():
    lines += [f"**{key}**", "", "| arm | score (mean regret 25..50) | regret@25 | regret@50 | "
              "zero regret@50 | rank@25 (best baseline) | rank@50 (best baseline) |",
              "|---" * 7 + "|"]
    for arm, row in summary.items():
      rank = (lambda i, row=row: f"{row[f'rank@{i}']:.3f} ± {row[f'rank_se@{i}']:.3f} "
              f"({row[f'best_baseline_rank@{i}']:.3f})" if f"rank@{i}" in row else "-")
      lines.append(f"| {arm} | {row['score']:.5f} | "
                   f"{row['regret@25']:.4f} ± {row['regret_se@25']:.4f} | "
                   f"{row['regret@50']:.5f} ± {row['regret_se@50']:.5f} | "
                   f"{row['zero_regret@end']:.2f} | {rank(25)} | {rank(50)} |")
    lines.append("")
  with open(os.path.join(args.out, "selection.md"), "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  main()
