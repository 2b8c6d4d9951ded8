"""Baselines and warm starts for pipeline search on a new dataset (host-side NumPy).

All functions minimise an error; a held-out column `y` [N] is looked up one pipeline at a time and
`available` [N] (bool) marks pipelines whose value is known (the only ones that may be evaluated).
Search functions return `best_so_far` [T]: the lowest error found after each evaluation.

  random_search          k random pipelines per iteration without replacement (random x1/x2/x4).
  random_search_expected   its exact expectation over the draws (no sampling).
  average_rank_order     pipelines sorted by mean normalised rank on the training datasets.
  order_search           evaluate a fixed ordering (the best-average-rank portfolio).
  meta_feature_warm_start  best pipelines of the training datasets nearest in meta-features (L1).
  warm_start_then_random   the warm start, then random search.
"""

import numpy as np
from scipy import special, stats


def _check_budget(available: np.ndarray, num_evals: int) -> None:
  if num_evals < 1 or num_evals > int(available.sum()):
    raise ValueError(f"num_evals={num_evals} must be in [1, #evaluable pipelines = "
                     f"{int(available.sum())}]; lower config.search.num_evals.")


def best_so_far(y: np.ndarray, order: np.ndarray) -> np.ndarray:
  """Running minimum of y [N] along the evaluation order [T] -> [T]."""
  return np.minimum.accumulate(y[np.asarray(order)])


def random_search(y: np.ndarray, available: np.ndarray, num_evals: int, speed: int,
                  rng: np.random.Generator) -> np.ndarray:
  """Random search with `speed` evaluations per iteration (the paper's random x1/x2/x4).

  Args:
    y: [N] held-out errors; available: [N] bool.
    num_evals: T iterations.
    speed: evaluations per iteration; once every available pipeline is drawn the best is final.
    rng: NumPy generator.

  Returns:
    [T] best error after `speed * t` random distinct draws, t = 1..T.
  """
  if speed < 1:
    raise ValueError(f"speed must be >= 1; got {speed}.")
  _check_budget(available, num_evals)
  order = rng.permutation(np.flatnonzero(available))
  running = best_so_far(y, order)
  steps = np.minimum(speed * np.arange(1, num_evals + 1), order.size) - 1
  return running[steps]


def random_search_expected(y: np.ndarray, available: np.ndarray, num_evals: int,
                           speed: int) -> np.ndarray:
  """Exact expected `random_search` curve: E[best error after min(speed * t, n) distinct draws].

  With the n available errors sorted, v_1 <= ... <= v_n, the smallest of k distinct uniform draws
  is v_j or worse with probability C(n - j + 1, k) / C(n, k); the expectation sums over j (ties
  need no care: tied values contribute the same v).

  Args:
    y: [N] held-out errors; available: [N] bool.
    num_evals: T iterations; speed: evaluations per iteration.

  Returns:
    [T] expected best error after each iteration.
  """
  if speed < 1:
    raise ValueError(f"speed must be >= 1; got {speed}.")
  _check_budget(available, num_evals)
  v = np.sort(np.asarray(y, np.float64)[np.asarray(available, bool)])
  n = v.size
  k = np.minimum(speed * np.arange(1, num_evals + 1), n)[:, None]       # [T, 1]
  a = (n - np.arange(n))[None, :]                                         # [1, n]: n - j + 1
  log_c = lambda top, kk: (special.gammaln(top + 1) - special.gammaln(kk + 1)
                           - special.gammaln(np.maximum(top - kk, 0) + 1))
  tail = np.where(a >= k, np.exp(log_c(a, k) - log_c(n, k)), 0.0)       # P(min >= v_j)
  return -np.diff(tail, axis=1, append=0.0) @ v                        # P(min = v_j) @ v


def normalized_ranks(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Per-column ranks of the observed entries, scaled to [0, 1] (0 = best = lowest error).

  Args:
    values: [N, D] errors; mask: [N, D] 1 = observed.

  Returns:
    [N, D] normalised ranks (ties averaged), NaN at missing entries.
  """
  out = np.full(values.shape, np.nan)
  for d in range(values.shape[1]):
    obs = np.flatnonzero(mask[:, d] > 0)
    if obs.size == 1:
      out[obs, d] = 0.0
    elif obs.size > 1:
      out[obs, d] = (stats.rankdata(values[obs, d]) - 1.0) / (obs.size - 1.0)
  return out


def average_rank_order(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """The best-average-rank portfolio: pipelines by mean normalised rank over observed datasets.

  Args:
    values: [N, D] training errors; mask: [N, D].

  Returns:
    [N] pipeline indices, best first; pipelines never observed go last.
  """
  ranks = normalized_ranks(values, mask)
  count = np.sum(~np.isnan(ranks), axis=1)
  mean_rank = np.where(count > 0, np.nansum(ranks, axis=1) / np.maximum(count, 1), np.inf)
  return np.argsort(mean_rank, kind="stable")


def order_search(y: np.ndarray, available: np.ndarray, order: np.ndarray,
                 num_evals: int) -> np.ndarray:
  """Evaluates the available pipelines of a fixed `order` [N] -> best_so_far [T]."""
  _check_budget(available, num_evals)
  order = np.asarray(order)
  order = order[available[order]][:num_evals]
  return best_so_far(y, order)


def standardize_features(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Z-scores meta-features [D, F] with the training datasets' mean/std (NaN -> 0 = the mean)."""
  mean = np.nanmean(train, axis=0)
  std = np.nanstd(train, axis=0)
  std = np.where(std > 0, std, 1.0)
  return (np.nan_to_num((train - mean) / std), np.nan_to_num((test - mean) / std))


def meta_feature_warm_start(train_values: np.ndarray, train_mask: np.ndarray,
                            train_features: np.ndarray, features: np.ndarray,
                            available: np.ndarray, num_warm: int) -> np.ndarray:
  """Warm start of the paper: the best pipeline of each nearest training dataset (L1 distance).

  Walks the training datasets in order of L1 distance of (standardised) meta-features and takes
  each one's best observed pipeline, skipping pipelines already chosen or unavailable here.

  Args:
    train_values: [N, D] training errors; train_mask: [N, D].
    train_features: [D, F] standardised meta-features; features: [F] those of the new dataset.
    available: [N] bool for the new dataset.
    num_warm: W, pipelines to return.

  Returns:
    [W] distinct available pipeline indices (fewer only if the training data run out, in which
    case the remainder is filled with the training-wide best-average-rank pipelines).
  """
  if num_warm < 1:
    raise ValueError(f"num_warm must be >= 1; got {num_warm}.")
  dist = np.abs(train_features - features[None, :]).sum(axis=1)
  chosen: list[int] = []
  masked = np.where(train_mask > 0, train_values, np.inf)
  for d in np.argsort(dist, kind="stable"):
    for n in np.argsort(masked[:, d], kind="stable"):
      if not np.isfinite(masked[n, d]):
        break
      if available[n] and n not in chosen:
        chosen.append(int(n))
        break
    if len(chosen) == num_warm:
      return np.asarray(chosen)
  for n in average_rank_order(train_values, train_mask):
    if len(chosen) == num_warm:
      break
    if available[n] and n not in chosen:
      chosen.append(int(n))
  return np.asarray(chosen)


def warm_start_then_random(y: np.ndarray, available: np.ndarray, warm_start: np.ndarray,
                           num_evals: int, rng: np.random.Generator) -> np.ndarray:
  """The warm-start pipelines first, then random search over the rest -> best_so_far [T]."""
  _check_budget(available, num_evals)
  rest = np.flatnonzero(available)
  rest = rng.permutation(rest[~np.isin(rest, warm_start)])
  order = np.concatenate([np.asarray(warm_start, int), rest])[:num_evals]
  return best_so_far(y, order)
