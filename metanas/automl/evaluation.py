"""Regret and average-rank curves over test datasets (the paper's Fig. 3 style evaluation)."""

import numpy as np
from scipy import stats


def regrets(best_so_far: np.ndarray, optimum: np.ndarray) -> np.ndarray:
  """Regret = best error found so far minus the best achievable error of the dataset.

  Args:
    best_so_far: [..., D, T] running minima of the error per test dataset.
    optimum: [D] lowest error in each held-out column.

  Returns:
    [..., D, T] non-negative regrets.
  """
  return best_so_far - optimum[:, None]


def method_ranks(best_so_far: np.ndarray) -> np.ndarray:
  """Ranks of the methods at each iteration of each dataset and repeat (1 = best, ties averaged).

  Args:
    best_so_far: [M, R, D, T] for M methods and R repeats.

  Returns:
    [M, D, T] ranks averaged over the repeats.
  """
  ranks = stats.rankdata(best_so_far, axis=0)
  return ranks.mean(axis=1)


def mean_and_stderr(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and standard error over the dataset axis of [D, T] -> ([T], [T])."""
  d = values.shape[0]
  se = values.std(axis=0, ddof=1) / np.sqrt(d) if d > 1 else np.zeros(values.shape[1:])
  return values.mean(axis=0), se
