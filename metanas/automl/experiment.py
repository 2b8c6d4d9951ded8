"""PMF for AutoML experiment: fit the GP-LVM on training datasets, search held-out datasets.

For each training-matrix sparsity (fraction of entries kept): fit the GP-LVM, then on every test
dataset run num_evals evaluations with each arm and record the best error so far. Arms:
  pmf_ei               (with `pmf.num_fits` > 1 every PMF arm uses the ensemble of fits)
                       warm start (`search.warm_start`: "nn" = meta-feature nearest neighbours,
                       "rank" = the portfolio's top pipelines), then EI over the learnt latents
                       (with `search.column_noise` set: the column's scale and nugget refitted by
                       ML after each evaluation, EI on the lookups' predictive; bayesopt.py).
  random_x1/x2/x4      random search with 1/2/4 evaluations per iteration.
  avg_rank_portfolio   pipelines in order of best average rank on the training datasets.
  metafeat_nn_random   the same meta-feature warm start, then random search.
  pmf_ei_rankwarm      (ablation, regret only; with warm_start="nn") PMF+EI warm-started by the
                       portfolio's top pipelines (pmf_ei_nnwarm: the reverse, with "rank").
  pmf_ei_paper         (ablation, regret only; only when `search.column_noise` or
                       `search.explore_below` is set) PMF+EI as in the paper: EI on the
                       noise-free f with the training kernel, no column refit, no fallback.
Reported: regret and method ranks vs iteration (mean and standard error over test datasets), and
a prediction check (GP posterior from a few revealed entries of each test column vs their mean).
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas.automl import baselines
from metanas.automl import bayesopt
from metanas.automl import data as data_lib
from metanas.automl import evaluation
from metanas.automl import pmf

RANKED_ARMS = ("pmf_ei", "random_x1", "random_x2", "random_x4", "avg_rank_portfolio",
               "metafeat_nn_random")
ABLATION_ARMS = ("pmf_ei_rankwarm", "pmf_ei_nnwarm", "pmf_ei_paper")


def load_data(config: config_dict.ConfigDict) -> data_lib.AutoMLData:
  if config.data.source == "oboe":
    return data_lib.load_oboe(config.data_dir)
  if config.data.source == "paper_csv":
    if not config.data.paper_dir:
      raise ValueError("config.data.source='paper_csv' needs --config.data.paper_dir=<folder with "
                       "the paper's CSV files>.")
    return data_lib.load_paper_format(config.data.paper_dir)
  raise ValueError(f"Unknown config.data.source {config.data.source!r}; use 'oboe' or "
                   "'paper_csv'.")


def prediction_check(params: pmf.Params, test_y: np.ndarray, available: np.ndarray,
                     num_reveal: int, rng: np.random.Generator) -> dict[str, float]:
  """RMSE of the GP posterior mean on a test column from `num_reveal` random revealed entries.

  Args:
    params: learnt parameters (one fit, or a stacked ensemble: its mixture mean is used).
    test_y: [D_test, N] held-out errors; available: [D_test, N] bool.
    num_reveal: entries revealed per column.
    rng: NumPy generator.

  Returns:
    {"pmf_rmse", "mean_rmse"}: error-unit RMSE over the unrevealed available entries of the GP
    prediction and of the revealed entries' mean (the column-mean baseline).
  """
  sq_pmf, sq_mean, count = 0.0, 0.0, 0
  posterior = jax.jit(bayesopt.predictive)  # An ensemble's: the mixture of its members.
  for y, av in zip(test_y, available):
    obs = rng.choice(np.flatnonzero(av), size=num_reveal, replace=False)
    mu, sd = y[obs].mean(), y[obs].std()
    sd = sd if sd > 1e-6 else 1.0
    mean, _ = posterior(params, jnp.asarray(obs), jnp.asarray((y[obs] - mu) / sd),
                        jnp.ones((num_reveal,)))
    rest = av.copy()
    rest[obs] = False
    pred = mu + sd * np.asarray(mean)[rest]
    sq_pmf += float(np.sum((pred - y[rest]) ** 2))
    sq_mean += float(np.sum((mu - y[rest]) ** 2))
    count += int(rest.sum())
  return {"pmf_rmse": float(np.sqrt(sq_pmf / count)),
          "mean_rmse": float(np.sqrt(sq_mean / count))}


def run_arms(params: pmf.Params, train_values: np.ndarray, train_mask: np.ndarray,
             train_features: np.ndarray, test_features: np.ndarray, test_y: np.ndarray,
             available: np.ndarray, search: config_dict.ConfigDict,
             rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Runs every arm on every test dataset.

  Args:
    params: learnt GP-LVM parameters.
    train_values: [N, D] training errors (any value where train_mask is 0); train_mask: [N, D].
    train_features, test_features: [D, F], [D_test, F] standardised meta-features.
    test_y: [D_test, N] held-out errors; available: [D_test, N] bool.
    search: config.search.
    rng: NumPy generator for the random arms.

  Returns:
    arm name -> best_so_far [R, D_test, T] (R = search.random_repeats; deterministic arms repeat).
  """
  t, r, w = search.num_evals, search.random_repeats, search.num_warm
  if w < 1 or w > t:
    raise ValueError(f"config.search.num_warm={w} must be in [1, num_evals={t}].")
  d_test = test_y.shape[0]
  nn_warm = np.stack([baselines.meta_feature_warm_start(
      train_values, train_mask, train_features, test_features[i], available[i], w)
                      for i in range(d_test)])
  order = baselines.average_rank_order(train_values, train_mask)
  rank_warm = np.stack([order[available[i][order]][:w] for i in range(d_test)])
  y_dev = jnp.asarray(np.nan_to_num(test_y, nan=0.0), jnp.float32)
  av_dev = jnp.asarray(available)
  num_warm = jnp.full((d_test,), w, jnp.int32)
  noise = (jnp.asarray(search.column_noise, jnp.float32) if len(search.column_noise) else None)
  ls_grid = (jnp.asarray(search.lengthscale_grid, jnp.float32)
             if noise is not None and len(search.lengthscale_grid) else None)
  late = dict(explore_below=search.explore_below, fallback=search.fallback)
  paper = dict(explore_below=0.0, fallback="variance")
  if search.warm_start not in ("nn", "rank"):
    raise ValueError(f"config.search.warm_start={search.warm_start!r}; use 'nn' (meta-feature "
                     "nearest neighbours) or 'rank' (best-average-rank portfolio).")
  main_warm, other_warm, other = ((nn_warm, rank_warm, "pmf_ei_rankwarm")
                                  if search.warm_start == "nn" else
                                  (rank_warm, nn_warm, "pmf_ei_nnwarm"))
  bo_arms = [("pmf_ei", main_warm, noise, ls_grid, late),
             (other, other_warm, noise, ls_grid, late)]
  if noise is not None or search.explore_below > 0:
    bo_arms.append(("pmf_ei_paper", nn_warm, None, None, paper))
  acq = search.get("acquisition", "ei")
  out = {}
  for name, warm, arm_noise, arm_ls, arm_late in bo_arms:
    arm_acq = "ei" if name == "pmf_ei_paper" else acq
    run = lambda key: bayesopt.bo_search_batch(  # Called within this iteration only.
        params, y_dev, av_dev, jnp.asarray(warm, jnp.int32), num_warm, t, search.xi, arm_noise,
        arm_ls, **arm_late, acquisition_fn=arm_acq, key=key)[1]
    # Thompson keys come from `rng` only when used, so EI runs draw the random arms as before.
    key = jax.random.key(int(rng.integers(2**31))) if arm_acq != "ei" else None
    out[name] = bayesopt.repeated_search(run, arm_acq, r, key)
  portfolio = np.stack([baselines.order_search(test_y[i], available[i], order, t)
                        for i in range(d_test)])
  out["avg_rank_portfolio"] = np.repeat(portfolio[None], r, axis=0)
  for speed in (1, 2, 4):
    out[f"random_x{speed}"] = np.asarray([[baselines.random_search(
        test_y[i], available[i], t, speed, rng) for i in range(d_test)] for _ in range(r)])
  out["metafeat_nn_random"] = np.asarray([[baselines.warm_start_then_random(
      test_y[i], available[i], nn_warm[i], t, rng) for i in range(d_test)] for _ in range(r)])
  return out


def summarise(best: dict[str, np.ndarray], optimum: np.ndarray,
              report_at: tuple[int, ...]) -> dict:
  """Regret (all arms) and rank (RANKED_ARMS) curves with standard errors, plus table entries."""
  ranked = [a for a in RANKED_ARMS if a in best]
  ranks = evaluation.method_ranks(np.stack([best[a] for a in ranked]))  # [M, D, T]
  curves, table = {}, {}
  for name, b in best.items():
    reg = evaluation.regrets(b, optimum).mean(axis=0)  # Average the repeats: [D, T].
    reg_mean, reg_se = evaluation.mean_and_stderr(reg)
    entry = {"regret_mean": reg_mean, "regret_se": reg_se}
    if name in ranked:
      rank_mean, rank_se = evaluation.mean_and_stderr(ranks[ranked.index(name)])
      entry.update(rank_mean=rank_mean, rank_se=rank_se)
    curves[name] = entry
    table[name] = {f"{k}@{i}": float(v[i - 1]) for i in report_at if i <= reg_mean.size
                   for k, v in entry.items()}
  return {"curves": curves, "table": table}


def markdown_table(results: dict, report_at: tuple[int, ...]) -> str:
  """Paper-style table: mean regret and average rank (+- s.e.) per arm and training sparsity."""
  lines = []
  for key, entry in results["by_sparsity"].items():
    cols = [f"regret@{i}" for i in report_at] + [f"rank@{i}" for i in report_at if i >= 10]
    timing = f"fit {entry['fit_seconds']:.0f} s, search {entry['search_seconds']:.0f} s"
    lines += [f"**{key}** ({timing})", "", "| arm | " + " | ".join(cols) + " |",
              "|---" * (len(cols) + 1) + "|"]
    for name, row in entry["table"].items():
      cells = []
      for col in cols:
        metric, i = col.split("@")
        m = row.get(f"{metric}_mean@{i}")
        cells.append("-" if m is None else f"{m:.4f} ± {row[f'{metric}_se@{i}']:.4f}"
                     if metric == "regret" else f"{m:.2f} ± {row[f'{metric}_se@{i}']:.2f}")
      lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
  return "\n".join(lines)


def plot(summaries: dict[str, dict], path: str) -> None:
  """Regret and rank vs iteration (mean +- s.e.), one column per training sparsity."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  keys = list(summaries)
  colors = {name: f"C{i}" for i, name in enumerate(RANKED_ARMS + ABLATION_ARMS)}
  fig, axes = plt.subplots(2, len(keys), figsize=(5 * len(keys), 8), squeeze=False)
  for j, key in enumerate(keys):
    for name, c in summaries[key]["curves"].items():
      x = np.arange(1, c["regret_mean"].size + 1)
      style = "--" if name in ABLATION_ARMS else "-"
      for row, metric in ((0, "regret"), (1, "rank")):
        if f"{metric}_mean" not in c:
          continue
        m, se = c[f"{metric}_mean"], c[f"{metric}_se"]
        color = colors.get(name, "k")
        axes[row, j].plot(x, m, style, label=name, color=color)
        axes[row, j].fill_between(x, m - se, m + se, alpha=0.2, color=color)
    axes[0, j].set_title(f"training entries kept: {key}")
    axes[0, j].set_ylabel("regret (balanced error)")
    axes[0, j].set_yscale("symlog", linthresh=1e-3)
    axes[1, j].set_ylabel("average rank")
    axes[1, j].set_xlabel("evaluations")
  axes[0, 0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs the PMF-for-AutoML experiment; writes results.json, metrics.jsonl and regret plots."""
  os.makedirs(workdir, exist_ok=True)
  start_all = time.time()
  automl = load_data(config)
  train_idx, test_idx = data_lib.split(automl, config.data.test_fraction, config.data.split_seed)
  if config.data.max_test_datasets:
    test_idx = test_idx[:config.data.max_test_datasets]
  values, full_mask = pmf.prepare_matrix(automl.errors[:, train_idx], "training matrix")
  test_y = automl.errors[:, test_idx].T
  available = ~np.isnan(test_y)
  if not available.any(axis=1).all():
    raise ValueError("A test dataset has no observed pipeline; drop it from the test split.")
  optimum = np.nanmin(test_y, axis=1)
  train_feats, test_feats = baselines.standardize_features(automl.features[train_idx],
                                                           automl.features[test_idx])
  writer = metric_writer.MetricWriter(workdir, tensorboard=config.tensorboard)
  results = {"num_pipelines": values.shape[0], "num_train": train_idx.size,
             "num_test": test_idx.size, "config": config.to_dict(), "by_sparsity": {}}
  summaries = {}
  for s_i, keep in enumerate(config.sparsities):
    key = f"keep_{int(round(100 * keep))}pct"
    rng = np.random.default_rng([config.seed, s_i])
    mask = data_lib.sparsify(full_mask, keep, rng)
    z, _, _ = pmf.standardize_columns(values, mask)
    p = config.pmf
    start = time.time()
    # Member 0 of an ensemble (pmf.num_fits > 1) is the single fit; the others log under fit<e>/.
    log = lambda e, step, m, key=key: writer.write(
        step, m, prefix=f"{key}/" if e == 0 else f"{key}/fit{e}/")
    params = pmf.fit_ensemble(z, mask, jax.random.fold_in(jax.random.key(config.seed), s_i),
                              num_fits=p.num_fits, log_fn=log, num_latent=p.num_latent,
                              num_steps=p.num_steps, batch_size=p.batch_size,
                              learning_rate=p.learning_rate, prior_weight=p.prior_weight,
                              init_noise=p.init_noise, max_rows=p.max_rows,
                              log_every=config.log_every)
    jax.block_until_ready(params)
    fit_s = time.time() - start
    start = time.time()
    best = run_arms(params, values, mask, train_feats, test_feats, test_y, available,
                    config.search, rng)
    search_s = time.time() - start
    summary = summarise(best, optimum, tuple(config.search.report_at))
    summaries[key] = summary
    check = prediction_check(params, test_y, available, config.search.num_reveal, rng)
    results["by_sparsity"][key] = {
        "keep": keep, "observed_entries": int(mask.sum()), "fit_seconds": fit_s,
        "search_seconds": search_s, "noise_variance": np.asarray(pmf.noise_variance(params)),
        "lengthscales": np.exp(np.asarray(params["log_lengthscale"])),
        "prediction": check, **summary}
    logging.info("%s: fit %.1fs, search %.1fs, prediction %s", key, fit_s, search_s, check)
    for name, row in summary["table"].items():
      logging.info("  %-20s %s", name, {k: round(v, 4) for k, v in row.items()})
  writer.close()
  # Flat "<sparsity>/<arm>/<metric>@<iteration>" keys (+ "_ci95" = 1.96 s.e.) for table scripts.
  for key, summary in summaries.items():
    for name, row in summary["table"].items():
      for k, v in row.items():
        metric, it = k.split("@")
        if metric.endswith("_mean"):
          flat = f"{key}/{name}/{metric[:-5]}@{it}"
          results[flat] = v
          results[flat + "_ci95"] = 1.96 * row[f"{metric[:-5]}_se@{it}"]
  results["wall_time_sec"] = time.time() - start_all
  results["devices"] = f"{jax.device_count()} x {jax.devices()[0].platform}"
  plot(summaries, os.path.join(workdir, "regret_rank.png"))
  metric_writer.write_results(workdir, results)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(markdown_table(results, tuple(config.search.report_at)))
  return results
