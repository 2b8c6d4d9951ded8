r"""Picks the PMF+EI search variant by 5-fold BO simulation on the TRAINING datasets only.

  METANAS_DATA_DIR=../shared/data nice -n 19 python experiments/pmf_automl/select_variant.py \
      --out experiments/pmf_automl/selection [--split_seed 0]

For each training sparsity in KEEPS and each of the 5 folds of the training columns of the
experiment's split: fit the GP-LVM (`configs/pmf_automl.py:cpu` settings) on the other 4 folds,
then search every held-out column with each variant below and with random x2/x4. Selection rule
(fixed before running): the lowest mean regret over evaluations 25..50, pooled over both
sparsities and all held-out columns. Writes selection.json and selection.md.
"""

import argparse
import json
import os
import time

import numpy as np

from metanas import config_lib
from metanas.automl import validation

KEEPS = (1.0, 0.3)
NUM_FOLDS = 5
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)
REPORT_AT = (10, 25, 50)
GRID = tuple(float(g) for g in np.geomspace(1e-3, 1.0, 10))
VARIANTS = {
    "paper_ei": {"xi": 0.0, "column_noise": None},  # The previous setting.
    "ei_xi0.1": {"xi": 0.1, "column_noise": None},
    "ei_xi0.5": {"xi": 0.5, "column_noise": None},
    "column_nugget_0.01": {"xi": 0.0, "column_noise": (0.01,)},
    "column_nugget_0.1": {"xi": 0.0, "column_noise": (0.1,)},
    "column_nugget_0.3": {"xi": 0.0, "column_noise": (0.3,)},
    "column_ml": {"xi": 0.0, "column_noise": GRID},
}


def _config(split_seed):
  config = config_lib.load_config(os.path.join(ROOT, "configs", "pmf_automl.py:cpu"))
  config.data_dir = os.environ.get("METANAS_DATA_DIR", "../shared/data")
  config.data.split_seed = split_seed
  return config


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--split_seed", type=int, default=0)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  config = _config(args.split_seed)
  errors, feats, folds = validation.training_folds(config, NUM_FOLDS)
  sims, start = [], time.time()
  for k_i, keep in enumerate(KEEPS):
    for f_i, val_cols in enumerate(folds):
      fit_cols = np.setdiff1d(np.arange(errors.shape[1]), val_cols)
      sims.append(validation.simulate_fold(errors, feats, fit_cols, val_cols, keep, VARIANTS,
                                           config.pmf, config.search, seed=100 * k_i + f_i))
      print(f"keep {keep} fold {f_i}: {time.time() - start:.0f} s", flush=True)
  summaries = {"pooled": validation.summarise_variants(sims, REPORT_AT, 25, 50)}
  for k_i, keep in enumerate(KEEPS):
    part = sims[k_i * NUM_FOLDS:(k_i + 1) * NUM_FOLDS]
    summaries[f"keep_{int(round(100 * keep))}pct"] = validation.summarise_variants(
        part, REPORT_AT, 25, 50)
  chosen = min(VARIANTS, key=lambda v: summaries["pooled"][v]["score"])
  result = {"split_seed": args.split_seed, "folds": NUM_FOLDS, "keeps": KEEPS,
            "variants": VARIANTS, "summaries": summaries, "chosen": chosen,
            "wall_seconds": time.time() - start}
  with open(os.path.join(args.out, "selection.json"), "w") as f:
    json.dump(result, f, indent=1)
  lines = [f"Chosen (lowest pooled mean regret over evaluations 25..50): **{chosen}**", ""]
  for key, summary in summaries.items():
    lines += [f"**{key}**", "", "| arm | score (mean regret 25..50) | regret@10 | regret@25 | "
              "regret@50 | zero regret@50 | rank@25 | rank@50 |", "|---" * 8 + "|"]
    for arm, row in summary.items():
      rank = lambda i, row=row: f"{row[f'rank@{i}']:.3f}" if f"rank@{i}" in row else "-"
      lines.append(f"| {arm} | {row['score']:.5f} | {row['regret@10']:.4f} | "
                   f"{row['regret@25']:.4f} ± {row['regret_se@25']:.4f} | "
                   f"{row['regret@50']:.5f} ± {row['regret_se@50']:.5f} | "
                   f"{row['zero_regret@end']:.2f} | {rank(25)} | {rank(50)} |")
    lines.append("")
  with open(os.path.join(args.out, "selection.md"), "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))


if __name__ == "__main__":
  main()
