"""alpha-MAML (Cai et al. 2020, arXiv 2003.09465): MAML on source tasks weighted towards a target.

For each target task: alpha = argmin of the MMD bound's simplex QP (`metanas.meta.mmd`, paper
Sec. 4; its kernel bandwidth and lambda fixed by the config or chosen per problem by
leave-one-source-out cross-validation, `mmd.select_by_source_cv`), then MAML with the
alpha-weighted query losses sum_i alpha_i L_i (paper eq. 9, through
`maml.meta_loss(..., task_weights=alpha)`), then fine-tuning on the target's k labelled samples.

Arms compared on the same sources, targets, initialisation and minibatch keys:
  alpha    MAML weighted by the target's alpha (one meta-training per target).
  uniform  MAML with uniform weights over the allowed sources (plain MAML).
  oracle   MAML with uniform weights on the sources of the target's true cluster.
  pooled   plain regression on the pooled sources (no inner loop), then fine-tuning.
  scratch  fine-tuning from the random initialisation (same SGD steps), plus `scratch_adam`:
           Adam on the target's k samples from scratch.

All meta-trainings of one seed are one jitted `lax.scan` over meta-steps, vmapped over the weight
vectors; the compiled functions are reused across seeds (shapes are padded to a fixed size).
"""

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas.data import task_clusters
from metanas.meta import maml
from metanas.meta import mmd
from metanas.models import maml_nets

DIVERGED = 1e3  # A target query MSE above this (or NaN) counts as a diverged fine-tune.


def masked_mse(apply_fn, params, x, y, mask):
  """Mean squared error over the valid rows; x [n, dx], y [n, 1], mask [n]."""
  err = jnp.sum(jnp.square(apply_fn(params, x) - y), axis=-1)
  return jnp.sum(err * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def split_source(key: jax.Array, x: jax.Array, y: jax.Array, mask: jax.Array, k_shot: int,
                 num_query: int) -> dict:
  """A random disjoint support/query split of one source's valid samples ([n_max, ...] each)."""
  score = jax.random.uniform(key, mask.shape) + 2.0 * (1.0 - mask)  # Padding sorts last.
  order = jnp.argsort(score)
  sup, qry = order[:k_shot], order[k_shot:k_shot + num_query]
  return dict(support_x=x[sup], support_y=y[sup], query_x=x[qry], query_y=y[qry])


def make_meta_trainer(loss_fn, optimizer, num_steps: int, num_inner_steps: int, k_shot: int,
                      num_query: int, first_order: bool):
  """Returns jitted `train(meta_params, source_x, source_y, source_mask, weights, key)`.

  weights [R, N]: one meta-training per row, all from the same initialisation and keys.
  Returns (meta_params with a leading [R] axis, losses [num_steps, R]).
  """
  def train_one(meta_params, source_x, source_y, source_mask, weights, key):
    def step(carry, step_key):
      params, opt_state = carry
      keys = jax.random.split(step_key, source_x.shape[0])
      tasks = jax.vmap(split_source, (0, 0, 0, 0, None, None))(
          keys, source_x, source_y, source_mask, k_shot, num_query)
      (loss, _), grads = jax.value_and_grad(maml.meta_loss, has_aux=True)(
          params, tasks, loss_fn, num_inner_steps, first_order, False, weights)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    carry = (meta_params, optimizer.init(meta_params))
    (meta_params, _), losses = jax.lax.scan(step, carry, jax.random.split(key, num_steps))
    return meta_params, losses

  train = jax.vmap(train_one, in_axes=(None, None, None, None, 0, None), out_axes=(0, 1))
  return jax.jit(train)


def make_evaluator(apply_fn, lr: float, max_steps: int, adam_steps: int, adam_lr: float):
  """Returns jitted `evaluate(params [T, ...], support, query, query_mask) -> mse [T, steps+1]`.

  Fine-tunes each target's parameters with `max_steps` SGD steps at `lr` on its support set and
  records the query MSE before and after every step. `evaluate_adam` does the same with Adam for
  `adam_steps` steps and returns the final query MSE [T].
  """
  def curve(params, sx, sy, qx, qy, qmask):
    sup_loss = lambda p: jnp.mean(jnp.square(apply_fn(p, sx) - sy))
    def step(p, _):
      p = jax.tree.map(lambda w, g: w - lr * g, p, jax.grad(sup_loss)(p))
      return p, masked_mse(apply_fn, p, qx, qy, qmask)
    _, mses = jax.lax.scan(step, params, None, length=max_steps)
    return jnp.concatenate([masked_mse(apply_fn, params, qx, qy, qmask)[None], mses])

  def adam(params, sx, sy, qx, qy, qmask):
    opt = optax.adam(adam_lr)
    sup_loss = lambda p: jnp.mean(jnp.square(apply_fn(p, sx) - sy))
    def step(carry, _):
      p, s = carry
      u, s = opt.update(jax.grad(sup_loss)(p), s, p)
      return (optax.apply_updates(p, u), s), None
    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=adam_steps)
    return masked_mse(apply_fn, params, qx, qy, qmask)

  return jax.jit(jax.vmap(curve)), jax.jit(jax.vmap(adam))


def unique_rows(weights: np.ndarray, pad_to: int = 8) -> tuple[np.ndarray, np.ndarray]:
  """Distinct weight rows (padded by repeating the first to a multiple of `pad_to`, so the
  compiled trainer is reused) and the row index of each input row."""
  uniq, index = np.unique(np.round(weights, 7), axis=0, return_inverse=True)
  pad = -uniq.shape[0] % pad_to
  return np.concatenate([uniq, np.repeat(uniq[:1], pad, 0)]).astype(np.float32), index.ravel()


def _t_interval(values: np.ndarray) -> tuple[float, float]:
  """Mean and 95% Student-t half-width over the leading axis (seeds)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  values = np.asarray(values, np.float64)
  n = values.shape[0]
  half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
  return float(values.mean()), float(half)


def sample_problem(config, seed: int, structure=None) -> dict:
  """The sources and targets of one seed (see `task_clusters` for the layout)."""
  d = config.data
  rng = np.random.default_rng([config.seed, seed])
  if config.problem == "sinusoid_clusters":
    return task_clusters.sinusoid_clusters(rng, d.cluster_set, d.sources_per_cluster,
                                           d.samples_per_source, d.num_targets, d.k_shot,
                                           d.num_query)
  if config.problem == "wheat":
    return task_clusters.wheat_tasks(rng, structure, d.num_targets, d.k_shot)
  raise ValueError(f"Unknown problem {config.problem!r}; use 'sinusoid_clusters' or 'wheat'.")


def alpha_summary(alpha: np.ndarray, problem: dict) -> dict:
  """Mean over targets of the weight on the target's true group and of the effective number of
  sources 1 / sum alpha^2; also the L1 distance to uniform over the allowed sources."""
  match = problem["source_group"][None, :] == problem["target_group"][:, None]
  uniform = problem["allowed"] / problem["allowed"].sum(1, keepdims=True)
  return {"mass_on_true_group": float(np.mean(np.sum(alpha * match, 1))),
          "effective_sources": float(np.mean(1.0 / np.sum(alpha ** 2, 1))),
          "l1_to_uniform": float(np.mean(np.abs(alpha - uniform).sum(1)))}


def _arm_params(meta0, trained, index, pooled, pooled_index, num_targets):
  """Per-target parameter pytrees [num_targets, ...] of every arm from the stacked runs."""
  take = lambda tree, idx: jax.tree.map(lambda p: p[idx], tree["model"])
  arms = {name: take(trained, index[i * num_targets:(i + 1) * num_targets])
          for i, name in enumerate(("alpha", "uniform", "oracle"))}
  arms["pooled"] = take(pooled, pooled_index)
  arms["scratch"] = jax.tree.map(lambda p: jnp.broadcast_to(p, (num_targets,) + p.shape),
                                 meta0["model"])
  return arms


def run_seed(config, seed: int, problem: dict, fns: dict) -> dict:
  """alpha, the meta-trainings and the target fine-tuning of one seed.

  Returns:
    dict with alpha [T, N], curves {arm: [T, max_steps + 1]} (scratch_adam: [T, 1]), and the
    meta-training losses of the alpha, uniform and pooled runs ([num_steps] each, mean over runs).
  """
  d, mc = config.data, config.maml
  n_min = int(problem["source_mask"].sum(1).min())
  if n_min < d.k_shot + d.train_query:
    raise ValueError(f"Every source needs k_shot + train_query = {d.k_shot + d.train_query} "
                     f"samples, the smallest has {n_min}; lower data.train_query.")
  src = (problem["source_x"], problem["source_y"], problem["source_mask"])
  tgt = (problem["support_x"], problem["support_y"], problem["query_x"], problem["query_y"],
         problem["query_mask"])
  # The QP's bandwidth and lambda: fixed by the config, or chosen from the sources alone.
  selection = {"lam": float(config.alpha.lam),
               "bandwidth_scale": float(config.alpha.bandwidth_scale)}
  if config.alpha.select == "source_cv":
    selection = fns["select"](*src, d.k_shot, seed=config.seed * 1000 + seed)
  elif config.alpha.select != "fixed":
    raise ValueError(f"alpha.select={config.alpha.select!r}; use 'fixed' or 'source_cv'.")
  alpha = fns["weigh"](*src, *tgt[:2], lam=selection["lam"],
                       bandwidth_scale=selection["bandwidth_scale"],
                       allowed=problem["allowed"])["alpha"]
  uniform = (problem["allowed"] / problem["allowed"].sum(1, keepdims=True)).astype(np.float32)
  rows, index = unique_rows(np.concatenate([alpha, uniform, problem["oracle"]]))
  pooled_rows, pooled_index = unique_rows(uniform)
  init_key, train_key = jax.random.split(jax.random.key(config.seed * 1000 + seed))
  params0 = fns["model"].init(init_key, problem["support_x"][0])
  meta0 = {"model": params0,
           "inner_lr": maml.init_inner_lrs(params0, max(mc.num_inner_steps, 1), mc.inner_lr)}
  trained, losses = fns["train_maml"](meta0, *src, jnp.asarray(rows), train_key)
  pooled, pooled_losses = fns["train_pooled"](meta0, *src, jnp.asarray(pooled_rows), train_key)
  losses, pooled_losses = np.asarray(losses), np.asarray(pooled_losses)
  bad = int(np.sum(~np.all(np.isfinite(losses), axis=0)))
  if bad:  # Kept going so the other runs are not lost; reported in results.json.
    logging.warning("seed %d: %d meta-training run(s) reached a non-finite loss; lower "
                    "optim.learning_rate.", seed, bad)
  arms = _arm_params(meta0, trained, index, pooled, pooled_index, d.num_targets)
  curves = {name: np.asarray(fns["evaluate"](p, *tgt)) for name, p in arms.items()}
  curves["scratch_adam"] = np.asarray(fns["evaluate_adam"](arms["scratch"], *tgt))[:, None]
  num_t = d.num_targets
  return dict(alpha=alpha, curves=curves, nonfinite_training_runs=bad, selection=selection,
              train_losses={"alpha": losses[:, index[:num_t]].mean(1),
                            "uniform": losses[:, index[num_t]],
                            "pooled": pooled_losses[:, pooled_index[0]]})


def build(config) -> dict:
  """The model and the jitted functions shared by every seed (compiled once)."""
  d, mc, ft = config.data, config.maml, config.finetune
  model = maml_nets.MLP(hidden=tuple(config.model.hidden), out=1)
  loss_fn = maml.mse_loss(model.apply)
  trainer = functools.partial(make_meta_trainer, loss_fn, optax.adam(config.optim.learning_rate),
                              config.optim.num_steps, k_shot=d.k_shot, num_query=d.train_query,
                              first_order=mc.first_order)
  evaluate, evaluate_adam = make_evaluator(model.apply, ft.lr, max(ft.steps),
                                           ft.scratch_adam_steps, ft.scratch_adam_lr)
  weigh = functools.partial(mmd.task_weights, y_scale=config.alpha.y_scale,
                            num_iters=config.alpha.qp_iters, unbiased=config.alpha.unbiased)
  cv = config.alpha.cv
  select = functools.partial(mmd.select_by_source_cv,
                             bandwidth_scales=tuple(cv.bandwidth_scales), lams=tuple(cv.lams),
                             num_splits=cv.num_splits, y_scale=config.alpha.y_scale,
                             num_iters=cv.qp_iters, unbiased=config.alpha.unbiased)
  return dict(model=model, train_maml=trainer(mc.num_inner_steps), train_pooled=trainer(0),
              evaluate=evaluate, evaluate_adam=evaluate_adam, weigh=weigh, select=select)


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """All arms over `config.num_seeds` seeds; writes results.json, metrics.jsonl, curves.npz and
  alpha_maml.png in `workdir`."""
  os.makedirs(workdir, exist_ok=True)
  structure = None
  if config.problem == "wheat":
    structure = task_clusters.load_wheat(config.data_dir, config.data.wheat_components,
                                         config.data.wheat_groups)
  fns = build(config)
  writer = metric_writer.MetricWriter(workdir, tensorboard=config.tensorboard)
  per_seed, alpha_stats, selections, bad, t0 = [], [], [], 0, time.time()
  for seed in range(config.num_seeds):
    problem = sample_problem(config, seed, structure)
    out = run_seed(config, seed, problem, fns)
    per_seed.append(out["curves"])
    alpha_stats.append(alpha_summary(out["alpha"], problem))
    selections.append({k: (v.tolist() if isinstance(v, np.ndarray) else v)
                       for k, v in out["selection"].items()})
    bad += out["nonfinite_training_runs"]
    if seed == 0:
      first = dict(problem=problem, alpha=out["alpha"])
      sweep = lambda_sweep(config, problem, fns["weigh"], selections[0]["bandwidth_scale"])
    for s in range(0, config.optim.num_steps, config.log_every):
      writer.write(seed * config.optim.num_steps + s,
                   {f"train/{k}_loss": v[s] for k, v in out["train_losses"].items()})
    logging.info("seed %d (%.0fs): step-1 target MSE %s, alpha %s", seed, time.time() - t0,
                 {a: round(float(c[:, min(1, c.shape[1] - 1)].mean()), 4)
                  for a, c in out["curves"].items()}, alpha_stats[-1])
  writer.close()
  # Per-target query MSE after 0..max fine-tune steps, [num_targets, steps + 1] per seed and arm.
  np.savez_compressed(os.path.join(workdir, "curves.npz"), **{
      f"seed{i}_{arm}": c for i, curves in enumerate(per_seed) for arm, c in curves.items()})
  results = summarise(per_seed, alpha_stats, config.finetune.steps)
  results.update(lambda_sweep=sweep, nonfinite_training_runs=bad, selection=selections,
                 wall_time_sec=time.time() - t0,
                 devices=f"{jax.device_count()} x {jax.devices()[0].platform}")
  metric_writer.write_results(workdir, results)
  plot(workdir, first, per_seed, sweep, config.finetune.steps)
  logging.info("Final: %s", json.dumps(results, indent=1))
  return results


def lambda_sweep(config, problem: dict, weigh, bandwidth_scale: float) -> list[dict]:
  """alpha statistics for each `config.alpha.lambda_sweep` value (the lambda -> inf control), at
  the seed's bandwidth."""
  src = (problem["source_x"], problem["source_y"], problem["source_mask"])
  out = []
  for lam in config.alpha.lambda_sweep:
    a = weigh(*src, problem["support_x"], problem["support_y"], lam=lam,
              bandwidth_scale=bandwidth_scale,
              allowed=problem["allowed"])["alpha"]
    out.append(dict(lam=float(lam), **alpha_summary(a, problem)))
  return out


def summarise(per_seed: list, alpha_stats: list, steps) -> dict:
  """Per arm and fine-tune step: mean over targets per seed, then mean and 95% t-interval over
  seeds; the paired difference alpha - uniform the same way."""
  out = {}
  for arm in per_seed[0]:
    cols = [0] if arm == "scratch_adam" else [0] + list(steps)
    for s in cols:
      vals = np.array([c[arm][:, s].mean() for c in per_seed])
      name = f"{arm}/final" if arm == "scratch_adam" else f"{arm}/step{s}"
      out[name], out[name + "_ci95"] = _t_interval(vals)
      # Fine-tuning at a fixed learning rate can blow up on some targets; the median over all
      # (seed, target) pairs and the count of blow-ups keep those from hiding the typical case.
      every = np.concatenate([c[arm][:, s] for c in per_seed])
      out[name + "_median"] = float(np.median(np.where(np.isfinite(every), every, np.inf)))
      out[name + "_diverged"] = int(np.sum(~(every < DIVERGED)))
  for s in [0] + list(steps):
    for ref in ("uniform", "oracle"):
      diff = np.array([c["alpha"][:, s].mean() - c[ref][:, s].mean() for c in per_seed])
      out[f"alpha_minus_{ref}/step{s}"], out[f"alpha_minus_{ref}/step{s}_ci95"] = _t_interval(diff)
      out[f"alpha_beats_{ref}_seeds/step{s}"] = int(np.sum(diff < 0))
  for k in alpha_stats[0]:
    out[f"alpha/{k}"], out[f"alpha/{k}_ci95"] = _t_interval([a[k] for a in alpha_stats])
  out["num_seeds"] = len(per_seed)
  out["num_targets"] = int(per_seed[0]["alpha"].shape[0])
  return out


def plot(workdir: str, first: dict, per_seed: list, sweep: list, steps) -> None:
  """alpha against the true group (seed 0), fine-tune curves, and the lambda sweep."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  problem, alpha = first["problem"], first["alpha"]
  t_order = np.argsort(problem["target_group"], kind="stable")
  s_order = np.argsort(problem["source_group"], kind="stable")
  fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
  im = axes[0].imshow(alpha[t_order][:, s_order], aspect="auto", cmap="viridis")
  axes[0].set_xlabel("source task (sorted by true group)")
  axes[0].set_ylabel("target (sorted by true group)")
  axes[0].set_title("alpha, seed 0")
  for b in np.flatnonzero(np.diff(problem["source_group"][s_order])):
    axes[0].axvline(b + 0.5, color="w", lw=0.8)
  for b in np.flatnonzero(np.diff(problem["target_group"][t_order])):
    axes[0].axhline(b + 0.5, color="w", lw=0.8)
  fig.colorbar(im, ax=axes[0])
  x = np.arange(max(steps) + 1)
  for arm in ("alpha", "uniform", "oracle", "pooled", "scratch"):
    # Median over all (seed, target) pairs: a few diverging fine-tunes would swamp the mean.
    every = np.concatenate([c[arm] for c in per_seed])
    axes[1].plot(x, np.median(np.where(np.isfinite(every), every, np.inf), axis=0), label=arm)
  axes[1].set_xscale("symlog", linthresh=1)
  axes[1].set_yscale("log")
  axes[1].set_xlabel("fine-tune steps on the target")
  axes[1].set_ylabel("target query MSE (median over targets)")
  axes[1].legend()
  lams = [max(r["lam"], 1e-3) for r in sweep]
  axes[2].plot(lams, [r["l1_to_uniform"] for r in sweep], "o-", label="L1(alpha, uniform)")
  axes[2].plot(lams, [r["mass_on_true_group"] for r in sweep], "s-", label="mass on true group")
  axes[2].set_xscale("log")
  axes[2].set_xlabel("lambda (0 drawn at 1e-3)")
  axes[2].legend()
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "alpha_maml.png"), dpi=110)
  plt.close(fig)
