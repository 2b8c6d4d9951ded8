"""Model selection on influence-guided subsamples (Raj et al. 2020, arXiv 2010.10218, Sec. 5).

For every dataset: fit every candidate on the full pool (the reference ranking by validation loss);
then for each subsample size m, method and seed, fit every candidate on its own subsample and
compare. Reported per (dataset, m, method), mean and standard error over seeds:

  tau     Kendall tau between the candidates' validation losses on subsample fits and full fits;
  regret  test loss (of the full-data fit) of the candidate picked on the subsample minus the best
          candidate's test loss: what model selection on the subsample costs;
  param_error  ||theta_sub - theta_full|| / ||theta_full||, averaged over the convex (logistic)
          candidates (MLP parameters are not identifiable, so they are left out);
  time    wall seconds per seed for all candidates (pilot fit + influence scores + refit for
          influence; leverage includes its scores), excluding compilation, next to the full fits.

Candidates sharing a structure differ only in L2 and are vmapped together with the seeds, so each
(structure, method, m) compiles once.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from ml_collections import config_dict
from scipy import stats

from metanas import metric_writer
from metanas.data import npz
from metanas.selection import influence as inf
from metanas.selection import influence_models as im

# ---------------------------------------------------------------------------------------------
# Data.


def heavy_tailed(n: int, dim: int, dof: float, interaction: float, seed: int,
                 label_noise: float = 0.0, independent: bool = False):
  """Synthetic logistic design with multivariate-t inputs and (optionally) flipped labels.

  x = z * sqrt(dof / chi2_dof) with z ~ N(0, I_dim) (multivariate t: one chi2 per row) or, with
  `independent`, one chi2 per entry (independent t coordinates), so a few rows are far out; the
  label logit is
  beta^T x + interaction * x_0 x_1 with beta_j = (-1)^j / (1 + j), making the degree-2 candidates
  the right model class. Each label is then flipped with probability `label_noise`.

  Why the flips: the influence score of a row is |residual| x its leverage in the H^-1 metric.
  Without flips the far-out rows are mostly predicted confidently (residual ~ 0), so heavy-tailed
  inputs alone give only moderately uneven influence (top 1% of rows hold ~10% of the total score,
  measured); with flips a far-out row keeps a residual near 1 with probability `label_noise`, and
  the few such rows dominate (see experiments/influence_subsampling.md for the measured shares).

  Returns:
    x [n, dim] float32, y [n] int32.
  """
  if dof <= 0:
    raise ValueError(f"heavy-tailed dof must be > 0, got {dof}.")
  if not 0.0 <= label_noise < 0.5:
    raise ValueError(f"label_noise must be in [0, 0.5), got {label_noise}.")
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, dim))
  x = z * np.sqrt(dof / rng.chisquare(dof, size=(n, dim if independent else 1)))
  beta = np.array([(-1) ** j / (1 + j) for j in range(dim)])
  logit = x @ beta + interaction * x[:, 0] * x[:, 1]
  y = (rng.uniform(size=n) < 1 / (1 + np.exp(-np.clip(logit, -30, 30)))).astype(np.int32)
  if label_noise > 0:  # Drawn after y, so label_noise = 0 reproduces the noiseless design exactly.
    y = np.where(rng.uniform(size=n) < label_noise, 1 - y, y).astype(np.int32)
  return x.astype(np.float32), y


def _adult_features(arrays, split):
  """Adult: 6 numeric (log1p of the heavy ones) + one-hot categoricals; country as US / not US."""
  num = arrays[f"X_num_{split}"].astype(np.float64)
  num[:, [1, 3, 4]] = np.log1p(num[:, [1, 3, 4]])
  cat = arrays[f"X_cat_{split}"].astype(np.int64)
  offsets, vocab = arrays["cat_vocab_offsets"], arrays["cat_vocab"]
  cols = [num]
  for j in range(cat.shape[1] - 1):
    size = offsets[j + 1] - offsets[j]
    cols.append(np.eye(size)[cat[:, j]])
  names = list(vocab[offsets[-2]:offsets[-1]])
  us = names.index("United-States") if "United-States" in names else 0
  cols.append((cat[:, -1] == us)[:, None].astype(np.float64))
  return np.concatenate(cols, axis=1), arrays[f"y_{split}"].astype(np.int32)


def _robust_scale(pool, *others):
  """Centres by the pool median and scales by IQR/1.349 (std, then 1, where that is zero)."""
  med = np.median(pool, axis=0)
  q75, q25 = np.percentile(pool, [75, 25], axis=0)
  scale = (q75 - q25) / 1.349
  std = pool.std(axis=0)
  scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
  return [((a - med) / scale).astype(np.float32) for a in (pool,) + others]


def load_splits(name: str, cfg: config_dict.ConfigDict, seed: int) -> dict[str, np.ndarray]:
  """Pool / validation / test splits of dataset `name`, features robust-scaled on the pool."""
  rng = np.random.default_rng(seed)
  n_pool, n_val, n_test = cfg.pool_size, cfg.val_size, cfg.test_size
  if name == "heavy_tailed":
    s = cfg.synthetic
    x, y = heavy_tailed(n_pool + n_val + n_test, s.dim, s.dof, s.interaction, seed,
                        s.get("label_noise", 0.0), s.get("independent", False))
    parts = np.split(np.arange(len(y)), [n_pool, n_pool + n_val])
    xs, ys = [x[p] for p in parts], [y[p] for p in parts]
  elif name == "magic":
    arrays = npz.load("magic", cfg.data_dir)
    x, y = arrays["X"].astype(np.float64), arrays["y"].astype(np.int32)
    if n_pool + n_val + n_test > len(y):
      raise ValueError(f"MAGIC has {len(y)} rows < pool_size + val_size + test_size = "
                       f"{n_pool + n_val + n_test}; lower them.")
    perm = rng.permutation(len(y))
    parts = np.split(perm[:n_pool + n_val + n_test], [n_pool, n_pool + n_val])
    xs, ys = [x[p] for p in parts], [y[p] for p in parts]
  elif name == "adult":
    arrays = npz.load("adult", cfg.data_dir)
    xtr, ytr = _adult_features(arrays, "train")
    xte, yte = _adult_features(arrays, "test")
    if n_pool + n_val > len(ytr) or n_test > len(yte):
      raise ValueError(f"Adult has {len(ytr)} train / {len(yte)} test rows; lower pool_size, "
                       "val_size or test_size.")
    perm = rng.permutation(len(ytr))
    tp = rng.permutation(len(yte))[:n_test]
    xs = [xtr[perm[:n_pool]], xtr[perm[n_pool:n_pool + n_val]], xte[tp]]
    ys = [ytr[perm[:n_pool]], ytr[perm[n_pool:n_pool + n_val]], yte[tp]]
  else:
    raise ValueError(f"Unknown dataset {name!r}; choose from heavy_tailed, magic, adult.")
  xs = _robust_scale(*xs)
  keys = ("pool", "val", "test")
  out = {f"x_{k}": v for k, v in zip(keys, xs)}
  out.update({f"y_{k}": v for k, v in zip(keys, ys)})
  return out


# ---------------------------------------------------------------------------------------------
# One dataset.


def _eval_losses(structure, params, x, y, lead):
  """Mean loss for params batched over `lead` leading axes."""
  fn = lambda p: im.mean_loss(structure, p, x, y)
  for _ in range(lead):
    fn = jax.vmap(fn)
  return np.asarray(fn(params))


def resolved_pairs(example_losses: np.ndarray, z: float = 2.0) -> np.ndarray:
  """Candidate pairs whose full-data validation losses differ beyond noise, [C, C] bool.

  Pair (i, j) is resolved if |mean_k (l_ik - l_jk)| > z * its standard error over the validation
  examples k (a paired test). Pairs the full-data ranking itself cannot tell apart (e.g. L2 1e-4 vs
  1e-3 on 10k rows) are left out of `tau_resolved`, so it compares like with like.

  Args:
    example_losses: per-example validation losses of the full-data fits [C, n_val].
    z: threshold in standard errors.
  """
  d = example_losses[:, None, :] - example_losses[None, :, :]
  se = d.std(axis=-1, ddof=1) / np.sqrt(d.shape[-1])
  return np.abs(d.mean(axis=-1)) > z * np.maximum(se, 1e-12)


def tau_on_pairs(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
  """Kendall tau-a of scores a, b [C] over the pairs i < j with mask[i, j] (NaN if none)."""
  iu = np.triu_indices(len(a), 1)
  keep = mask[iu]
  if not keep.any():
    return float("nan")
  sa = np.sign(a[:, None] - a[None, :])[iu][keep]
  sb = np.sign(b[:, None] - b[None, :])[iu][keep]
  return float(np.mean(sa * sb))


def _flat(params, lead):
  leaves = jax.tree.leaves(params)
  return np.concatenate([np.asarray(l).reshape(l.shape[:lead] + (-1,)) for l in leaves], -1)


def run_dataset(name: str, config: config_dict.ConfigDict, writer=None,
                dataset_id: int = 0) -> dict:
  """Full-data fits, then every (m, method) over all seeds, for one dataset."""
  data = load_splits(name, config, config.seed)
  num_classes = int(max(data["y_pool"].max(), data["y_val"].max(), data["y_test"].max())) + 1
  cands = im.candidate_grid(**config.candidates.to_dict())
  structures = list(dict.fromkeys(c.structure for c in cands))
  fcfg = im.FitConfig(**config.fit.to_dict())
  n = len(data["y_pool"])
  feats = {}
  for fm in {s.feature_map for s in structures}:
    feats[fm] = [jnp.asarray(im.feature_map(fm, data[f"x_{k}"], seed=config.seed,
                                            **config.features.to_dict()))
                 for k in ("pool", "val", "test")]
  y_pool, y_val, y_test = (jnp.asarray(data[f"y_{k}"]) for k in ("pool", "val", "test"))

  # Reference: every candidate on the full pool.
  full = {}
  runner = inf.StageRunner()
  for s in structures:
    l2s = jnp.asarray([c.l2 for c in cands if c.structure == s])
    nl = len(l2s)
    xp, xv, xt = feats[s.feature_map]
    p0 = im.init_params(s, xp.shape[1], num_classes, jax.random.key(config.seed))
    runner.reset()
    params = runner(inf.fit_batch, (s, fcfg),
                    jax.tree.map(lambda a, nl=nl: jnp.broadcast_to(a, (nl,) + a.shape), p0), xp,
                    y_pool, jnp.broadcast_to(jnp.arange(n), (nl, n)), jnp.full((nl, n), 1.0 / n),
                    l2s)
    full[s] = dict(params=params, p0=p0, l2s=l2s, time=runner.run_seconds,
                   compile=runner.compile_seconds,
                   val=_eval_losses(s, params, xv, y_val, 1),
                   test=_eval_losses(s, params, xt, y_test, 1),
                   err=np.asarray(jax.vmap(lambda p, s=s: im.error_rate(s, p, xt, y_test))(params)))
  order = [(s, i) for s in structures for i in range(len(full[s]["l2s"]))]
  full_val = np.concatenate([full[s]["val"] for s in structures])
  ex_loss = lambda s, p: jax.vmap(lambda q: im.loss_from_logits(im.logits(s, q, feats[
      s.feature_map][1]), y_val))(p)
  resolved = resolved_pairs(np.concatenate([np.asarray(ex_loss(s, full[s]["params"]), np.float64)
                                            for s in structures]))
  full_test = np.concatenate([full[s]["test"] for s in structures])
  full_time = sum(full[s]["time"] for s in structures)
  best_test = full_test.min()
  logging.info("%s: full fits %.1fs; val losses %s", name, full_time, np.round(full_val, 4))

  # How uneven influence is on this dataset: Hessian-metric scores (paper Eq. 4) of every pool row
  # at each candidate's full-data fit, and the leverages, summarised by `score_unevenness`.
  uneven = {}
  for s in structures:
    f = full[s]
    nl = len(f["l2s"])
    ucfg = inf.SubsampleConfig(mix=0.0, solver=config.subsample.solver, chunk=config.subsample.chunk,
                               curvature=config.subsample.mlp_curvature if s.kind == "mlp"
                               else "hessian", damping=config.subsample.damping)
    scores = np.asarray(runner(inf._probs_stage, (inf.Problem(s, fcfg), ucfg), f["params"],  # pylint: disable=protected-access
                               feats[s.feature_map][0], y_pool,
                               jnp.broadcast_to(jnp.arange(n), (nl, n)),
                               jnp.full((nl, n), 1.0 / n), f["l2s"]))
    for i in range(nl):
      key = f"{s.name}-l2={float(f['l2s'][i]):g}"
      uneven[key] = inf.score_unevenness(scores[i], config.subsample.mix)
      # mix_with_uniform turns non-finite scores (a failed Cholesky, a diverged fit) into a uniform
      # draw; exactly uniform scores on real data mean that happened, so say so.
      uneven[key]["degenerate"] = bool(np.ptp(scores[i]) == 0.0)
      if uneven[key]["degenerate"]:
        logging.warning("%s %s: influence scores are all equal (non-finite curvature or fit?); "
                        "influence sampling degrades to uniform for this candidate.", name, key)
    uneven[f"{s.name}-leverage"] = inf.score_unevenness(
        inf.leverage_scores(np.asarray(feats[s.feature_map][0])), config.subsample.mix)
  logging.info("%s unevenness: %s", name, uneven)
  print(f"{name} influence unevenness (top-1% share of the score / var_ratio): " + ", ".join(
      f"{k}: {v['top1']:.3f}/{v['var_ratio']:.2f}" for k, v in uneven.items()), flush=True)

  lev = {}
  for s in structures:
    t0 = time.perf_counter()
    scores = inf.leverage_scores(np.asarray(feats[s.feature_map][0]))
    seconds = time.perf_counter() - t0  # The mixing below is negligible but would time a compile.
    lev[s] = (np.asarray(inf.mix_with_uniform(jnp.asarray(scores, jnp.float32),
                                              config.subsample.mix)), seconds)

  results = {"candidates": [f"{s.name}-l2={float(full[s]['l2s'][i]):g}" for s, i in order],
             "full_val_loss": full_val, "full_test_loss": full_test,
             "full_test_error": np.concatenate([full[s]["err"] for s in structures]),
             "full_fit_seconds": full_time, "pool_size": n, "num_seeds": config.num_seeds,
             "unevenness": uneven, "resolved_pairs": int(np.triu(resolved, 1).sum()),
             "runs": {}}
  sub = config.subsample
  ns = config.num_seeds
  for m in config.sizes:
    pilot = max(sub.min_pilot, int(round(sub.pilot_fraction * m)))
    for mi, method in enumerate(config.methods):
      val = np.zeros((ns, len(order)))
      perr, seconds, compile_s, max_w, stages = [], 0.0, 0.0, [], {}
      col = 0
      for si, s in enumerate(structures):
        scfg = inf.SubsampleConfig(
            method=method, m=m, pilot_size=pilot, mix=sub.mix, solver=sub.solver,
            curvature=sub.mlp_curvature if s.kind == "mlp" else "hessian", damping=sub.damping,
            cg_iters=sub.cg_iters, cg_tol=sub.cg_tol, greedy_rounds=sub.greedy_rounds,
            epsilon=sub.epsilon, chunk=sub.chunk, reuse_pilot=sub.reuse_pilot,
            self_normalize=sub.self_normalize, sampling=sub.get("sampling", "iid"),
            refit_from=sub.get("refit_from", "pilot"))
        xp, xv, _ = feats[s.feature_map]
        f = full[s]
        nl = len(f["l2s"])
        # draw_round > 0 gives a fresh, independent block of num_seeds draws on the same data
        # (more seeds in chunks); 0 keeps the key, hence every earlier number, unchanged.
        key = [config.seed, dataset_id, m, si, mi] + ([config.draw_round]
                                                      if config.get("draw_round", 0) else [])
        rng = np.random.default_rng(key)
        p0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (nl * ns,) + a.shape), f["p0"])
        runner.reset()
        params, _, w = inf.subsample_fit(inf.Problem(s, fcfg), scfg, p0, np.repeat(f["l2s"], ns),
                                         rng, xp, y_pool, xv, y_val, lev[s][0], runner)
        params = jax.tree.map(lambda a: a.reshape((nl, ns) + a.shape[1:]), params)
        val[:, col:col + nl] = _eval_losses(s, params, xv, y_val, 2).T
        col += nl
        seconds += runner.run_seconds / ns + (lev[s][1] if method == "leverage" else 0.0)
        compile_s += runner.compile_seconds
        for k, v in runner.stage_seconds.items():
          stages[k] = stages.get(k, 0.0) + v / ns
        max_w.append(float(np.max(w)) * m)
        if s.kind == "linear":
          ref = _flat(f["params"], 1)[:, None]  # [L, 1, P]
          diff = np.linalg.norm(_flat(params, 2) - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
          perr.append(diff)  # [L, S]
      bad = int(np.sum(~np.isfinite(val)))
      if bad:  # Ranked last rather than aborting the sweep; counted in results.json.
        logging.warning("%s m=%d %s: %d non-finite validation losses (diverged fits); lower the "
                        "L2 grid's smallest value or raise config.subsample.mix.", name, m, method,
                        bad)
      val = np.where(np.isfinite(val), val, np.inf)
      taus = np.array([stats.kendalltau(v, full_val)[0] for v in val])
      taus_res = np.array([tau_on_pairs(v, full_val, resolved) for v in val])
      picked = np.argmin(val, axis=1)
      regret = full_test[picked] - best_test
      pe = np.concatenate(perr).mean(axis=0) if perr else np.full(config.num_seeds, np.nan)
      rec = {"tau": taus, "tau_resolved": taus_res, "regret": regret, "param_error": pe, "seconds_per_seed": seconds,
             "compile_seconds": compile_s, "stage_seconds_per_seed": stages,
             "pilot_size": pilot if method in ("influence", "greedy") else 0,
             "labels": m + pilot if method == "influence" and not sub.reuse_pilot else m,
             "max_weight_times_m": max(max_w), "picked": picked, "val_loss": val,
             "nonfinite_fits": bad}
      results["runs"][f"m={m}/{method}"] = rec
      summary = {k: float(np.mean(rec[k])) for k in ("tau", "regret", "param_error")}
      summary["seconds_per_seed"] = seconds
      logging.info("%s m=%d %-9s tau=%.3f regret=%.4f perr=%.3f time=%.2fs (compile %.1fs)", name,
                   m, method, summary["tau"], summary["regret"], summary["param_error"], seconds,
                   compile_s)
      print(f"{name} m={m} {method:9s} tau={summary['tau']:.3f} regret={summary['regret']:.4f} "
            f"perr={summary['param_error']:.3f} t={seconds:.2f}s (compile {compile_s:.1f}s)",
            flush=True)
      if writer is not None:
        writer.write(m, summary, prefix=f"{name}/{method}/")
  return results


def summarise(res: dict) -> dict:
  """Mean and standard error over seeds for each (m, method)."""
  out = {}
  for key, rec in res["runs"].items():
    row = {}
    for k in ("tau", "tau_resolved", "regret", "param_error"):
      v = np.asarray(rec[k], np.float64)
      row[k] = float(np.mean(v))
      row[f"{k}_se"] = float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    row["seconds_per_seed"] = rec["seconds_per_seed"]
    out[key] = row
  return out


def markdown_table(results: dict, sizes, methods) -> str:
  """Paper-style table: one row per (dataset, m, method), mean +- standard error over seeds."""
  lines = ["| dataset | m | method | Kendall tau | tau (resolved pairs) | regret (test log-loss) | "
           "param. error | wall s / seed (all candidates) |", "|---|---|---|---|---|---|---|---|"]
  for name, res in results.items():
    for m in sizes:
      for method in methods:
        r = res["summary"][f"m={m}/{method}"]
        lines.append(f"| {name} | {m} | {method} | {r['tau']:.3f} +- {r['tau_se']:.3f} | "
                     f"{r['tau_resolved']:.3f} +- {r['tau_resolved_se']:.3f} | "
                     f"{r['regret']:.4f} +- {r['regret_se']:.4f} | {r['param_error']:.3f} +- "
                     f"{r['param_error_se']:.3f} | {r['seconds_per_seed']:.2f} |")
    lines.append(f"| {name} | N={res['pool_size']} | full-data fits | 1 | 1 | 0 | 0 | "
                 f"{res['full_fit_seconds']:.2f} |")
  return "\n".join(lines) + "\n"


def plot_regret(results: dict, workdir: str, sizes, methods, filename: str = "regret.png") -> None:
  """Regret vs m and vs wall time per seed, one column per dataset; writes workdir/filename."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  names = list(results)
  fig, axes = plt.subplots(2, len(names), figsize=(4.5 * len(names), 7), squeeze=False)
  for j, name in enumerate(names):
    summ, full_t = results[name]["summary"], results[name]["full_fit_seconds"]
    for method in methods:
      r = [summ[f"m={m}/{method}"] for m in sizes]
      mean = np.array([x["regret"] for x in r])
      se = np.array([x["regret_se"] for x in r])
      axes[0, j].errorbar(sizes, mean, yerr=se, marker="o", label=method, capsize=2)
      axes[1, j].plot([x["seconds_per_seed"] for x in r], mean, marker="o", label=method)
    axes[1, j].axvline(full_t, color="k", ls=":", label="full-data fits")
    axes[0, j].set(xscale="log", title=f"{name}: regret vs m", xlabel="m",
                   ylabel="test-loss regret")
    axes[1, j].set(xscale="log", title=f"{name}: regret vs compute", xlabel="wall s / seed",
                   ylabel="test-loss regret")
    axes[0, j].set_xticks(sizes, [str(m) for m in sizes])
    axes[0, j].minorticks_off()
    axes[0, j].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, filename), dpi=110)
  plt.close(fig)


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs the experiment on every dataset in `config.datasets`; writes results.json, regret.png."""
  if config.num_seeds < 2:
    raise ValueError(f"num_seeds must be >= 2 for standard errors, got {config.num_seeds}.")
  for m in config.sizes:
    if m > config.pool_size:
      raise ValueError(f"Subsample size {m} exceeds pool_size {config.pool_size}; lower "
                       "config.sizes or raise config.pool_size.")
  writer = metric_writer.MetricWriter(workdir)
  results = {}
  t0 = time.perf_counter()
  for i, name in enumerate(config.datasets):
    res = run_dataset(name, config, writer, i)
    res["summary"] = summarise(res)
    results[name] = res
  writer.close()
  results_out = {"datasets": results, "total_seconds": time.perf_counter() - t0,
                 "config": config.to_dict()}
  metric_writer.write_results(workdir, results_out)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(markdown_table(results, list(config.sizes), list(config.methods)))
  plot_regret(results, workdir, list(config.sizes), list(config.methods))
  return results_out
