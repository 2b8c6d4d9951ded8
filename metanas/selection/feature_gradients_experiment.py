"""Feature Gradients experiments (Sheth & Fusi 2020): `run(config, workdir)` for the launcher.

`config.experiment` picks one of
  selection     top-k features on a real dataset (madelon, arcene, allaml) vs scikit-learn baselines,
                scored by the test accuracy of a fixed classifier, over seeds (S&F Sec. 5.2).
  estimator     bias and spread of the Kong-Valiant estimate on Gaussian designs with known
                explained variance, vs adjusted R^2 (KV Sec. 5, S&F Sec. 5.1).
  interactions  XOR / parity targets with raw features and a pairwise-product feature map.
  scaling       wall time and compiled memory per epoch as N and D grow (S&F Sec. 4).
Each writes results.json (and metrics.jsonl / figures) into the workdir and returns the results.
"""

import functools
import os
import resource
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from ml_collections import config_dict
from sklearn import ensemble
from sklearn import feature_selection
from sklearn import linear_model
from sklearn import model_selection
from sklearn import neighbors
from sklearn import pipeline
from sklearn import preprocessing
from sklearn import svm

from metanas import config_lib
from metanas import metric_writer
from metanas.data import npz
from metanas.selection import feature_gradients as fg
from metanas.selection import learnability


# ---------------------------------------------------------------------------------------------
# Data and scikit-learn baselines (host side).

DATASETS = ("madelon", "arcene", "allaml")


def load_dataset(name: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
  """([N, D] float64 features, [N] int labels) of a feature-selection benchmark."""
  arrays = npz.load(name, data_dir)
  return arrays["X"].astype(np.float64), arrays["y"].astype(np.int64)


def madelon_relevant(x: np.ndarray) -> np.ndarray:
  """The 20 relevant Madelon features (5 informative + 15 linear combinations), found from data.

  The 480 probes are independent noise while the 20 relevant features are strongly correlated with
  each other (max |corr| about 0.69-0.99 vs below 0.1 for probes), so the 20 columns with the
  largest maximal off-diagonal correlation are the relevant ones.
  """
  c = np.corrcoef(x.T)
  np.fill_diagonal(c, 0.0)
  return np.sort(np.argsort(-np.abs(c).max(0))[:20])


def split(x, y, test_fraction: float, seed: int):
  """Stratified train/test split; drops columns constant on the train part.

  Returns:
    (x_train, x_test, y_train, y_test, kept [D'] original column indices).
  """
  xtr, xte, ytr, yte = model_selection.train_test_split(
      x, y, test_size=test_fraction, stratify=y, random_state=seed)
  keep = np.flatnonzero(xtr.std(0) > 0)
  return xtr[:, keep], xte[:, keep], ytr, yte, keep


def classifier(name: str, seed: int):
  """The fixed downstream classifier."""
  if name == "svm_rbf":
    return pipeline.make_pipeline(preprocessing.StandardScaler(), svm.SVC(random_state=seed))
  if name == "knn":
    return pipeline.make_pipeline(preprocessing.StandardScaler(),
                                  neighbors.KNeighborsClassifier(5))
  if name == "logistic":
    return pipeline.make_pipeline(preprocessing.StandardScaler(),
                                  linear_model.LogisticRegression(max_iter=2000))
  raise ValueError(f"Unknown classifier {name!r}; use svm_rbf, knn or logistic.")


def accuracy(name: str, xtr, ytr, xte, yte, seed: int) -> float:
  return float(classifier(name, seed).fit(xtr, ytr).score(xte, yte))


def rank_scores(name: str, x, y, seed: int) -> np.ndarray:
  """[D] scores of a baseline ranking method (higher = more relevant)."""
  z = preprocessing.StandardScaler().fit_transform(x)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if name == "f_classif":
      return np.nan_to_num(feature_selection.f_classif(z, y)[0])
    if name == "mutual_info":
      return feature_selection.mutual_info_classif(z, y, random_state=seed)
    if name == "l1_logistic":
      lr = linear_model.LogisticRegression(l1_ratio=1.0, solver="liblinear", C=0.1,
                                           random_state=seed).fit(z, y)
      return np.abs(lr.coef_).sum(0)
    if name == "extra_trees":
      return ensemble.ExtraTreesClassifier(200, random_state=seed, n_jobs=1).fit(z, y) \
          .feature_importances_
    if name == "rfe":
      est = linear_model.LogisticRegression(max_iter=500)
      rfe = feature_selection.RFE(est, n_features_to_select=1, step=0.1).fit(z, y)
      return -rfe.ranking_.astype(np.float64)
  raise ValueError(f"Unknown baseline {name!r}; use all, f_classif, mutual_info, l1_logistic, "
                   "extra_trees or rfe.")


def hparams(config: config_dict.ConfigDict) -> fg.Hparams:
  return fg.Hparams(**config.fg.to_dict())


def _save_figure(fig, workdir: str, name: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  fig.savefig(os.path.join(workdir, name), dpi=120, bbox_inches="tight")


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


# ---------------------------------------------------------------------------------------------
# Real datasets.


def run_selection(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Top-k test accuracy of a fixed classifier for FG and the baselines, mean/std over seeds."""
  x_all, y_all = load_dataset(config.dataset, config.data_dir)
  relevant = madelon_relevant(x_all) if config.dataset == "madelon" else None
  ks = [k for k in config.ks if k <= x_all.shape[1]]
  writer = metric_writer.MetricWriter(workdir, tensorboard=False)
  acc = {}      # method -> k -> [seeds]
  seconds = {}  # method -> [seeds]
  recovery = {}
  elbow_rows = []
  for seed in range(config.num_seeds):
    xtr, xte, ytr, yte, keep = split(x_all, y_all, config.test_fraction, seed)
    scores = {}
    for name in config.baselines:
      if name == "all":
        acc.setdefault("all", {}).setdefault("all", []).append(
            accuracy(config.classifier, xtr, ytr, xte, yte, seed))
        continue
      t0 = time.time()
      scores[name] = rank_scores(name, xtr, ytr, seed)
      seconds.setdefault(name, []).append(time.time() - t0)
    t0 = time.time()
    x, _ = learnability.prepare_features(xtr)
    t = learnability.prepare_targets(ytr, "classification")
    res = fg.fit(x, t, hparams(config), seed=seed,
                 log_fn=lambda e, m, s=seed: writer.write(e, m, prefix=f"seed{s}/"))
    scores["feature_gradients"] = res.weights
    seconds.setdefault("feature_gradients", []).append(time.time() - t0)
    for name, score in scores.items():
      order = np.argsort(-score, kind="stable")
      for k in ks:
        idx = order[:k]
        acc.setdefault(name, {}).setdefault(str(k), []).append(
            accuracy(config.classifier, xtr[:, idx], ytr, xte[:, idx], yte, seed))
        if relevant is not None:
          found = len(set(keep[idx].tolist()) & set(relevant.tolist()))
          recovery.setdefault(name, {}).setdefault(str(k), []).append(found)
    sizes = np.unique(np.geomspace(1, min(x.shape[1], max(ks)), 15).round().astype(int))
    curve = fg.learnability_curve(x, t, res.weights, sizes, config.fg.order)
    k_elbow = fg.elbow(sizes, curve)
    idx = np.argsort(-res.weights, kind="stable")[:k_elbow]
    elbow_rows.append({"k": k_elbow, "accuracy": accuracy(
        config.classifier, xtr[:, idx], ytr, xte[:, idx], yte, seed),
                       "curve_sizes": sizes.tolist(), "curve": curve.tolist()})
    logging.info("seed %d done: FG top-%d acc %.3f", seed, ks[-1],
                 acc["feature_gradients"][str(ks[-1])][-1])
  summary = {m: {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in d.items()}
             for m, d in acc.items()}
  results = {"experiment": "selection", "dataset": config.dataset, "n": int(x_all.shape[0]),
             "d": int(x_all.shape[1]), "classifier": config.classifier, "ks": ks,
             "accuracy": summary, "accuracy_per_seed": acc,
             "seconds": {m: float(np.mean(v)) for m, v in seconds.items()},
             "elbow": elbow_rows}
  if relevant is not None:
    results["madelon_relevant_recovered"] = {
        m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in recovery.items()}
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for m, d in summary.items():
    if m == "all":
      ax.axhline(d["all"]["mean"], color="k", ls="--", label="all features")
      continue
    ax.errorbar(ks, [d[str(k)]["mean"] for k in ks], [d[str(k)]["std"] for k in ks], label=m,
                marker="o", capsize=2)
  ax.set_xscale("log")
  ax.set_xticks(ks, [str(k) for k in ks])
  ax.minorticks_off()
  ax.set_xlabel("k selected features")
  ax.set_ylabel(f"test accuracy ({config.classifier})")
  ax.set_title(config.dataset)
  ax.legend(fontsize=7)
  _save_figure(fig, workdir, f"accuracy_{config.dataset}.png")
  writer.close()
  return results


# ---------------------------------------------------------------------------------------------
# Estimator accuracy on synthetic Gaussian designs.


def gaussian_design(num_features: int, explained: float, seed: int):
  """Sigma = diag(eigenvalues in [0.1, 1]) and beta with beta^T Sigma beta = explained."""
  rng = np.random.default_rng(seed)
  eig = np.linspace(0.1, 1.0, num_features)
  beta = rng.normal(size=num_features)
  beta *= np.sqrt(explained / np.sum(eig * beta ** 2))
  return eig, beta


@jax.jit
def _batched_estimate(x, y, coeffs):
  """[draws, n, d], [draws, n], [K] -> [draws] explained-variance estimates."""
  return jax.vmap(lambda a, b: learnability.explained_variance(a, b, coeffs))(x, y)


def run_estimator(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Bias and spread of EV estimates of orders K for N = ratio * D, vs adjusted R^2 (N > D + 1)."""
  e = config.estimator
  d = e.num_features
  eig, beta = gaussian_design(d, e.explained, e.seed)
  noise = np.sqrt(1.0 - e.explained)
  rows = []
  for ratio in e.ratios:
    n = max(int(round(ratio * d)), 2)
    rng = np.random.default_rng([e.seed, n])
    x = (rng.standard_normal((e.num_draws, n, d)) * np.sqrt(eig)).astype(np.float32)
    y = (x @ beta + noise * rng.standard_normal((e.num_draws, n))).astype(np.float32)
    row = {"n": n, "ratio": float(ratio), "truth": float(e.explained)}
    for order in e.orders:
      if n < order + 1:
        continue
      coeffs = jnp.asarray(learnability.minimax_coefficients(order)[0], jnp.float32)
      # Var(y) = 1 and top eigenvalue = 1 by construction, so the raw design is used as is.
      est = np.asarray(_batched_estimate(x, y, coeffs))
      row[f"order{order}_bias"] = float(np.mean(est) - e.explained)
      # What the estimator is unbiased for: sum_k c_k beta^T Sigma^(k+1) beta (polynomial bias).
      target = sum(c * np.sum(beta ** 2 * eig ** (k + 2)) for k, c in enumerate(np.asarray(coeffs)))
      row[f"order{order}_poly_bias"] = float(target - e.explained)
      row[f"order{order}_std"] = float(np.std(est))
    if n > d + 1:
      r2 = []
      for xi, yi in zip(np.asarray(x, np.float64), np.asarray(y, np.float64)):
        xi = np.c_[np.ones(n), xi]
        resid = yi - xi @ np.linalg.lstsq(xi, yi, rcond=None)[0]
        r2_raw = 1 - resid @ resid / np.sum((yi - yi.mean()) ** 2)
        r2.append(1 - (1 - r2_raw) * (n - 1) / (n - d - 1))
      row["adj_r2_bias"] = float(np.mean(r2) - e.explained)
      row["adj_r2_std"] = float(np.std(r2))
    rows.append(row)
    logging.info("estimator %s", row)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for order in e.orders:
    pts = [(r["ratio"], r[f"order{order}_bias"], r[f"order{order}_std"]) for r in rows
           if f"order{order}_bias" in r]
    ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker="o",
                capsize=2, label=f"KV order {order}")
  pts = [(r["ratio"], r["adj_r2_bias"], r["adj_r2_std"]) for r in rows if "adj_r2_bias" in r]
  if pts:
    ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker="s",
                capsize=2, label="adjusted R^2")
  ax.axhline(0, color="k", lw=0.5)
  ax.set_xscale("log")
  ax.set_xlabel("N / D")
  ax.set_ylabel("estimate - truth")
  ax.legend(fontsize=7)
  _save_figure(fig, workdir, "estimator_accuracy.png")
  return {"experiment": "estimator", "num_features": d, "explained": e.explained,
          "num_draws": e.num_draws, "rows": rows}


# ---------------------------------------------------------------------------------------------
# Higher-order correlations.


def pairwise_features(x: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
  """[N, D] -> [N, D + D (D + 1) / 2]: x_i and all products x_i x_j (i <= j), with their sources."""
  d = x.shape[1]
  cols, names = [x], [(i,) for i in range(d)]
  iu, ju = np.triu_indices(d)
  cols.append(x[:, iu] * x[:, ju])
  names += [(int(i), int(j)) for i, j in zip(iu, ju)]
  return np.concatenate(cols, axis=1), names


def run_interactions(config: config_dict.ConfigDict, workdir: str) -> dict:
  """What FG finds for y = sign(x0 x1) (XOR) and sign(x0 x1 x2) (parity) with and without products."""
  c = config.interactions
  rng = np.random.default_rng(c.seed)
  x_raw = rng.normal(size=(c.num_samples, c.num_features))
  targets = {"xor2": (0, 1), "parity3": (0, 1, 2)}
  rows = []
  for target in c.targets:
    rel = targets[target]
    y = np.sign(np.prod(x_raw[:, list(rel)], axis=1)).astype(int)
    for fmap in c.feature_maps:
      xm, names = (x_raw, [(i,) for i in range(c.num_features)]) if fmap == "raw" else \
          pairwise_features(x_raw)
      x, _ = learnability.prepare_features(xm)
      t = learnability.prepare_targets(y, "classification")
      res = fg.fit(x, t, hparams(config), seed=c.seed)
      top = np.argsort(-res.weights, kind="stable")[:c.top]
      top_names = [names[i] for i in top]
      if fmap == "raw":
        found = set(rel) <= {n[0] for n in top_names[:len(rel)]}
      else:
        found = tuple(rel) in top_names[:1] if len(rel) == 2 else False
      sizes = [1, 2, 3, 5, 10]
      curve = fg.learnability_curve(x, t, res.weights, sizes, config.fg.order)
      rows.append({"target": target, "feature_map": fmap, "num_inputs": int(x.shape[1]),
                   "top_features": [list(n) for n in top_names], "found": bool(found),
                   "explained_top_k": dict(zip(map(str, sizes), curve.tolist()))})
      logging.info("interactions %s", rows[-1])
  return {"experiment": "interactions", "rows": rows}


# ---------------------------------------------------------------------------------------------
# Scaling.


def epoch_cost(n: int, d: int, hp: fg.Hparams, seed: int = 0) -> dict:
  """Seconds per epoch (after compilation) and compiled step memory for random [n, d] data."""
  rng = np.random.default_rng(seed)
  x = (rng.standard_normal((n, d), dtype=np.float32) / np.float32(1 + np.sqrt(d / n)))
  y = rng.standard_normal((n, 1), dtype=np.float32)
  b, m, steps = fg.batch_plan(n, hp)
  coeffs, _ = learnability.minimax_coefficients(hp.order)
  coeffs = jnp.asarray(coeffs, jnp.float32)
  step = jax.jit(functools.partial(fg.train_step, hp=hp))
  state = fg.init_state(d, hp)
  idx = np.arange(m * b).reshape(m, b)
  batch = {"x": jnp.asarray(x[idx]), "y": jnp.asarray(y[idx])}
  mem = step.lower(state, batch, coeffs).compile().memory_analysis()
  state, _ = step(state, batch, coeffs)
  jax.block_until_ready(state)
  t0, c0 = time.time(), time.process_time()
  for _ in range(hp.num_epochs):
    perm = np.random.default_rng([seed, 1]).permutation(n)
    for i in range(steps):
      idx = perm[i * m * b:(i + 1) * m * b].reshape(m, b)
      state, metrics = step(state, {"x": x[idx], "y": y[idx]}, coeffs)
    jax.block_until_ready(metrics)
  sec = (time.time() - t0) / hp.num_epochs
  # CPU seconds of all threads: robust to other jobs sharing the machine, unlike wall time.
  cpu = (time.process_time() - c0) / hp.num_epochs
  temp = getattr(mem, "temp_size_in_bytes", -1) if mem is not None else -1
  arg = getattr(mem, "argument_size_in_bytes", -1) if mem is not None else -1
  # High-water mark of the whole process so far (Linux reports KiB); the grid runs small to large.
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 10
  return {"n": n, "d": d, "batch_size": b, "steps_per_epoch": steps, "seconds_per_epoch": sec,
          "cpu_seconds_per_epoch": cpu,
          "step_temp_mb": temp / 2 ** 20, "step_args_mb": arg / 2 ** 20,
          "data_mb": x.nbytes / 2 ** 20, "process_peak_rss_mb": peak}


def run_scaling(config: config_dict.ConfigDict, workdir: str) -> dict:
  c = config.scaling
  # Random regression targets: the classification objective would not apply (same cost anyway).
  hp = fg.Hparams(**{**config.fg.to_dict(), "num_epochs": c.num_epochs, "minibatches_per_step": 1,
                     "objective": "explained_variance"})
  rows = []
  for n, d in c.grid:
    rows.append(epoch_cost(int(n), int(d), hp))
    logging.info("scaling %s", rows[-1])
  return {"experiment": "scaling", "order": hp.order, "rows": rows}


EXPERIMENTS = {"selection": run_selection, "estimator": run_estimator,
               "interactions": run_interactions, "scaling": run_scaling}


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs `config.experiment` and writes results.json (plus figures) into `workdir`."""
  if config.experiment not in EXPERIMENTS:
    raise config_lib.ConfigError(f"Unknown config.experiment {config.experiment!r}; choose one "
                                 f"of {', '.join(EXPERIMENTS)}.")
  if config.experiment == "selection" and config.dataset not in DATASETS:
    raise config_lib.ConfigError(f"Unknown config.dataset {config.dataset!r} for feature "
                                 f"selection; choose one of {', '.join(DATASETS)}.")
  os.makedirs(workdir, exist_ok=True)
  t0 = time.time()
  results = EXPERIMENTS[config.experiment](config, workdir)
  results["wall_seconds"] = time.time() - t0
  results["config"] = config.to_dict()
  metric_writer.write_results(workdir, results)
  return results
