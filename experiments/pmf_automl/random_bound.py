r"""Exact expected regret of random search x1/x2/x4 on the OBOE split (no sampling, no fitting).

  METANAS_DATA_DIR=../shared/data PYTHONPATH=. python experiments/pmf_automl/random_bound.py

Why: the issue's 50-evaluation target asks PMF+EI to beat random search x4, i.e. the best of
4 * 50 = 200 distinct pipelines, on a matrix with only 219 pipelines. This prints, for the test
datasets of the `:cpu` split (and, for comparison, the training datasets), how much of each
column random x4 has seen by then and its exact expected regret and probability of having found
the optimum (`baselines.random_search_expected`), next to the same quantities at the paper's
scale (42k pipelines, where 200 draws are 0.5% of the space).
"""

import numpy as np

from configs import pmf_automl
from metanas.automl import baselines
from metanas.automl import data as data_lib

REPORT_AT = (1, 5, 10, 25, 50)


def table(errors: np.ndarray, cols: np.ndarray, name: str) -> None:
  rows = []
  for speed in (1, 2, 4):
    regret, found, seen = [], [], []
    for d in cols:
      y = errors[:, d]
      avail = ~np.isnan(y)
      n = int(avail.sum())
      t_max = min(max(REPORT_AT), n)
      exp = baselines.random_search_expected(np.nan_to_num(y), avail, t_max, speed)
      opt = np.nanmin(y)
      regret.append([exp[min(t, t_max) - 1] - opt for t in REPORT_AT])
      # The same expectation over the indicator "not optimal" is P(no optimum drawn yet).
      miss = baselines.random_search_expected((y > opt).astype(float), avail, t_max, speed)
      found.append([1.0 - miss[min(t, t_max) - 1] for t in REPORT_AT])
      seen.append(np.minimum(speed * np.asarray(REPORT_AT), n) / n)
    regret, found, seen = map(np.asarray, (regret, found, seen))
    se = regret.std(axis=0, ddof=1) / np.sqrt(len(cols))
    rows.append((speed, regret.mean(0), se, found.mean(0), seen.mean(0)))
  print(f"\n{name}: {len(cols)} columns, {errors.shape[0]} pipelines "
        f"(mean available {np.mean([np.sum(~np.isnan(errors[:, d])) for d in cols]):.1f})\n")
  print("| arm | " + " | ".join(f"regret@{t}" for t in REPORT_AT) + " | P(optimum found)@25 / @50 |"
        " share of the column seen @25 / @50 |")
  print("|---|" + "---|" * (len(REPORT_AT) + 2))
  for speed, m, s, f, c in rows:
    cells = " | ".join(f"{a:.4f} ± {b:.4f}" for a, b in zip(m, s))
    print(f"| random x{speed} (exact expectation) | {cells} | {f[-2]:.3f} / {f[-1]:.3f} | "
          f"{c[-2]:.2f} / {c[-1]:.2f} |")


def main() -> None:
  config = pmf_automl.get_config("cpu")
  data = data_lib.load_oboe()
  train_idx, test_idx = data_lib.split(data, config.data.test_fraction, config.data.split_seed)
  table(data.errors, test_idx, "test datasets (the issue's evaluation)")
  table(data.errors, train_idx, "training datasets (the variant-selection folds' columns)")
  print("\nAt the paper's scale (42,000 pipelines), 200 distinct draws are "
        f"{200 / 42000:.2%} of the space; here they are {200 / data.errors.shape[0]:.0%}.")


if __name__ == "__main__":
  main()
