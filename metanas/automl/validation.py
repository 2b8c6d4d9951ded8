"""Choosing a search variant on the training datasets only (K-fold BO simulation, no test data).

The training columns are cut into K folds; for each fold the GP-LVM is fitted on the other K-1
folds (sparsified like the real run) and every candidate variant of PMF+EI is run, as on a test
dataset, on the complete columns of the held-out fold, next to random search x2/x4. The test
datasets are never touched, so a variant picked by these numbers carries no test leakage.

  training_folds      the training split of a config's matrix and its K folds.
  fold_indices        K disjoint folds of the training columns (seeded).
  cached              a fold's simulation, computed once and kept as .npz.
  simulate_fold       fit on the other folds, search the held-out fold with each variant.
  summarise_variants  regret / rank summaries pooled over folds, and the selection score.
"""

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from metanas.automl import baselines
from metanas.automl import bayesopt
from metanas.automl import data as data_lib
from metanas.automl import evaluation
from metanas.automl import experiment
from metanas.automl import pmf

# {"xi": float, "column_noise": tuple[float, ...] | None, and optionally "lengthscale_grid":
#  tuple[float, ...] | None, "explore_below": float, "fallback": str (see bayesopt.bo_search),
#  "warm": "nn" (meta-feature neighbours, default) or "rank" (portfolio), "num_warm": int,
#  "acquisition": "ei" (default) or "thompson" (random: run once per repeat, as the random arms)}
Variant = dict[str, Any]
BASELINE_ARMS = ("random_x1", "random_x2", "random_x4", "avg_rank_portfolio",
                 "metafeat_nn_random")


def training_folds(config, num_folds: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
  """(errors [N, D_train], features [D_train, F], folds): the training datasets of `config`'s
  split (`data.test_fraction`, `data.split_seed`; the test datasets are not returned) cut into
  `num_folds` folds with `fold_indices(seed=config.seed)`."""
  automl = experiment.load_data(config)
  train_idx, _ = data_lib.split(automl, config.data.test_fraction, config.data.split_seed)
  folds = fold_indices(train_idx.size, num_folds, seed=config.seed)
  return automl.errors[:, train_idx], automl.features[train_idx], folds


def cached(path: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """`compute()` (e.g. a `simulate_fold`), saved to `path` (.npz) the first time, read after."""
  if os.path.exists(path):
    with np.load(path) as f:
      return dict(f)
  out = compute()
  np.savez(path, **out)
  return out


def fold_indices(num_columns: int, num_folds: int, seed: int) -> list[np.ndarray]:
  """K disjoint, sorted folds covering range(num_columns) (sizes differ by at most one)."""
  if not 2 <= num_folds <= num_columns:
    raise ValueError(f"num_folds={num_folds} must be in [2, #training datasets={num_columns}].")
  perm = np.random.default_rng(seed).permutation(num_columns)
  return [np.sort(f) for f in np.array_split(perm, num_folds)]


def simulate_fold(errors: np.ndarray, features: np.ndarray, fit_cols: np.ndarray,
                  val_cols: np.ndarray, keep: float, variants: dict[str, Variant],
                  pmf_config: Any, search_config: Any, seed: int,
                  all_arms: bool = False) -> dict[str, np.ndarray]:
  """Fits on `fit_cols`, then searches each column of `val_cols` with every variant.

  Args:
    errors: [N, D_train] training errors (NaN = missing); features: [D_train, F] meta-features.
    fit_cols, val_cols: disjoint column indices into `errors`.
    keep: fraction of the fit columns' entries kept (the held-out columns stay complete).
    variants: name -> `Variant` (search settings passed to `bayesopt.bo_search_batch`, warm start).
    pmf_config: config.pmf (`num_fits` > 1: an ensemble, see `pmf.fit_ensemble`);
      search_config: config.search (num_evals, num_warm, random_repeats).
    seed: seeds the sparsification, the fit and the random arms.
    all_arms: also run random x1, the best-average-rank portfolio and the meta-feature warm
      start + random (all of BASELINE_ARMS), so variants can be ranked as in the experiment.

  Returns:
    name -> best_so_far [R, D_val, T] for every variant and "random_x2", "random_x4" (all of
    BASELINE_ARMS with `all_arms`); plus "optimum" -> [D_val].
  """
  rng = np.random.default_rng(seed)
  values, full_mask = pmf.prepare_matrix(errors[:, fit_cols], "validation fit matrix")
  mask = data_lib.sparsify(full_mask, keep, rng)
  z, _, _ = pmf.standardize_columns(values, mask)
  p = pmf_config
  params = pmf.fit_ensemble(z, mask, jax.random.key(seed), num_fits=p.get("num_fits", 1),
                            num_latent=p.num_latent, num_steps=p.num_steps,
                            batch_size=p.batch_size, learning_rate=p.learning_rate,
                            prior_weight=p.prior_weight, init_noise=p.init_noise,
                            max_rows=p.max_rows)
  val_y = errors[:, val_cols].T
  available = ~np.isnan(val_y)
  fit_feats, val_feats = baselines.standardize_features(features[fit_cols], features[val_cols])
  t, r = search_config.num_evals, search_config.random_repeats
  warm_w = max([search_config.num_warm] + [v.get("num_warm", 0) for v in variants.values()])
  nn_warm = np.stack([baselines.meta_feature_warm_start(values, mask, fit_feats, val_feats[i],
                                                        available[i], warm_w)
                      for i in range(val_cols.size)])
  order = baselines.average_rank_order(values, mask)
  rank_warm = np.stack([order[available[i][order]][:warm_w] for i in range(val_cols.size)])
  y_dev = jnp.asarray(np.nan_to_num(val_y), jnp.float32)
  grid = lambda v, k: None if v.get(k) is None else jnp.asarray(v[k], jnp.float32)
  out = {}
  for name, v in variants.items():
    warm = rank_warm if v.get("warm", "nn") == "rank" else nn_warm
    w = v.get("num_warm", search_config.num_warm)
    acq = v.get("acquisition", "ei")
    search = lambda key: bayesopt.bo_search_batch(
        params, y_dev, jnp.asarray(available), jnp.asarray(warm[:, :w], jnp.int32),
        jnp.full((val_cols.size,), w, jnp.int32), t, v.get("xi", 0.0), grid(v, "column_noise"),
        grid(v, "lengthscale_grid"), v.get("explore_below", 0.0), v.get("fallback", "variance"),
        acq, key)[1]
    out[name] = bayesopt.repeated_search(search, acq, r,
                                         jax.random.fold_in(jax.random.key(seed), 17))
  for speed in ((1, 2, 4) if all_arms else (2, 4)):
    out[f"random_x{speed}"] = np.asarray([[baselines.random_search(
        val_y[i], available[i], t, speed, rng) for i in range(val_cols.size)] for _ in range(r)])
  if all_arms:
    portfolio = np.stack([baselines.order_search(val_y[i], available[i], order, t)
                          for i in range(val_cols.size)])
    out["avg_rank_portfolio"] = np.repeat(portfolio[None], r, axis=0)
    w = search_config.num_warm
    out["metafeat_nn_random"] = np.asarray([[baselines.warm_start_then_random(
        val_y[i], available[i], nn_warm[i, :w], t, rng) for i in range(val_cols.size)]
                                            for _ in range(r)])
  out["optimum"] = np.nanmin(val_y, axis=1)
  return out


def summarise_variants(folds: list[dict[str, np.ndarray]], report_at: tuple[int, ...],
                       score_from: int, score_to: int,
                       rank_against: tuple[str, ...] = ("random_x2", "random_x4")
                       ) -> dict[str, dict[str, float]]:
  """Pools the held-out columns of all folds and summarises each arm.

  Ranks are computed per variant against the `rank_against` baselines only (each variant stands
  in for PMF+EI on its own), so a variant's rank does not depend on which other variants are in
  the list; with BASELINE_ARMS they are the experiment's six-arm ranks.

  Args:
    folds: outputs of `simulate_fold` (same arms in each).
    rank_against: baseline arms each variant is ranked against.
    report_at: evaluation counts to report.
    score_from, score_to: the selection score is the mean regret over evaluations
      score_from..score_to (inclusive, 1-based), pooled over all held-out columns.

  Returns:
    arm -> {"regret@t", "regret_se@t", "rank@t" (variants only), "zero_regret@T", "score"}.
  """
  arms = [a for a in folds[0] if a != "optimum"]
  optimum = np.concatenate([f["optimum"] for f in folds])
  best = {a: np.concatenate([f[a] for f in folds], axis=1) for a in arms}  # [R, D, T]
  out = {}
  for a in arms:
    reg = evaluation.regrets(best[a], optimum).mean(axis=0)  # [D, T]
    mean, se = evaluation.mean_and_stderr(reg)
    row = {f"regret@{i}": float(mean[i - 1]) for i in report_at}
    row.update({f"regret_se@{i}": float(se[i - 1]) for i in report_at})
    row["zero_regret@end"] = float(np.mean(reg[:, -1] <= 0))
    row["score"] = float(reg[:, score_from - 1:score_to].mean())
    if a not in rank_against:
      ranks = evaluation.method_ranks(np.stack([best[a]] + [best[b] for b in rank_against]))
      rank_mean, rank_se = evaluation.mean_and_stderr(ranks[0])
      row.update({f"rank@{i}": float(rank_mean[i - 1]) for i in report_at})
      row.update({f"rank_se@{i}": float(rank_se[i - 1]) for i in report_at})
      # The best baseline's rank in the same ranking (ties with the variant averaged).
      base_ranks = ranks[1:].mean(axis=1)  # [B, T]
      row.update({f"best_baseline_rank@{i}": float(base_ranks[:, i - 1].min())
                  for i in report_at})
    out[a] = row
  return out
