r"""How much the GP-LVM fit seed moves PMF+EI, on the TRAINING datasets only (full matrix).

  METANAS_DATA_DIR=../shared/data PYTHONPATH=. nice -n 19 python \
      experiments/pmf_automl/fit_spread.py --out experiments/pmf_automl/selection_ensemble \
      --cache /work/runs/pmf_selection_ensemble_cache --ensemble_sizes 3,5 --ensemble_seeds 5

Same 5-fold BO simulation as select_late.py (keep 1.0, the current search default: column refit,
portfolio warm start), repeated with other fit seeds: seed 100 * 0 + fold (select_late.py's, read
from its cache) and 1000 * j + fold for j = 1.. . With all entries kept the sparsification is a
no-op, so a seed changes only the fit's minibatch order (and the random baselines' draws, which
each seed's ranks are computed against). For one fit (`num_fits` 1) and for ensembles
(--ensemble_sizes, e.g. 3,5).
Information only: nothing is chosen from it. Writes fit_spread.{md,json}.
"""

import argparse
import json
import os
import time

import numpy as np

from metanas import config_lib
from metanas.automl import validation

NUM_FOLDS = 5
SEARCH = {"column_noise": (0.01,), "warm": "rank"}  # select_late.py's DEFAULT_SEARCH.
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)


def _config():
  config = config_lib.load_config(os.path.join(ROOT, "configs", "pmf_automl.py:cpu"))
  config.data_dir = os.environ.get("METANAS_DATA_DIR", "../shared/data")
  return config


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--cache", required=True, help="select_late.py's cache folder")
  parser.add_argument("--single_seeds", type=int, default=5, help="fit seeds for one fit")
  parser.add_argument("--ensemble_sizes", default="3", help="ensemble sizes E, comma-separated")
  parser.add_argument("--ensemble_seeds", type=int, default=2, help="fit seeds per ensemble size")
  args = parser.parse_args()
  config = _config()
  errors, feats, folds = validation.training_folds(config, NUM_FOLDS)
  start = time.time()
  rows = {}
  runs = [(1, args.single_seeds, "default")] + [
      (int(e), args.ensemble_seeds, f"ens{e}") for e in args.ensemble_sizes.split(",")]
  for num_fits, seeds, group in runs:
    name = "rankwarm5" if num_fits == 1 else f"{group}_rankwarm5"
    for j in range(seeds):
      sims = []
      for f_i, val_cols in enumerate(folds):
        path = os.path.join(args.cache, (f"{group}_keep1.0_fold{f_i}.npz" if j == 0 else
                                         f"spread_e{num_fits}_seed{j}_fold{f_i}.npz"))
        pmf_config = config.pmf.copy_and_resolve_references()
        pmf_config.num_fits = num_fits
        fit_cols = np.setdiff1d(np.arange(errors.shape[1]), val_cols)
        out = validation.cached(path, lambda: validation.simulate_fold(
            errors, feats, fit_cols, val_cols, 1.0, {name: SEARCH}, pmf_config, config.search,
            seed=1000 * j + f_i, all_arms=True))
        sims.append({k: v for k, v in out.items() if k in (name, "optimum")
                     or k in validation.BASELINE_ARMS})
        print(f"fits {num_fits} seed {j} fold {f_i}: {time.time() - start:.0f} s", flush=True)
      s = validation.summarise_variants(sims, (25, 50), 25, 50, validation.BASELINE_ARMS)
      rows[f"fits{num_fits}_seed{j}"] = {**s[name], "random_x4": s["random_x4"]}
  with open(os.path.join(args.out, "fit_spread.json"), "w") as f:
    json.dump({"rows": rows, "wall_seconds": time.time() - start}, f, indent=1)
  lines = ["| fits | seed | score | regret@25 | regret@50 | rank@25 (best baseline) | "
           "rank@50 (best baseline) | random x4 regret@25 / @50 |", "|---" * 8 + "|"]
  for key, r in rows.items():
    fits, seed = key[4:].split("_seed")
    lines.append(f"| {fits} | {seed} | {r['score']:.5f} | {r['regret@25']:.4f} ± "
                 f"{r['regret_se@25']:.4f} | {r['regret@50']:.5f} ± {r['regret_se@50']:.5f} | "
                 f"{r['rank@25']:.3f} ({r['best_baseline_rank@25']:.3f}) | "
                 f"{r['rank@50']:.3f} ({r['best_baseline_rank@50']:.3f}) | "
                 f"{r['random_x4']['regret@25']:.4f} / {r['random_x4']['regret@50']:.5f} |")
  with open(os.path.join(args.out, "fit_spread.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
