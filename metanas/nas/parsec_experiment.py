"""PARSEC experiment: memory sweep, search on an image set, retraining comparison, transfer.

`run(config, workdir)` (see configs/parsec_fashion_mnist.py) does, as enabled in the config:
1. memory sweep PARSEC vs DARTS over op counts (table + plot);
2. PARSEC search (train.train in workdir/search_parsec): entropy of pi over training, most
   probable architecture;
3. DARTS search on the same space and budget (workdir/search_darts);
4. retraining with one budget: PARSEC arch (seeds), random archs from the space, DARTS arch;
5. transfer: pi learnt here as the prior for a search on a second dataset vs a uniform prior.
"""

import functools
import json
import os
import time

import jax
import numpy as np
from absl import logging

from metanas import metric_writer
from metanas import train
from metanas.nas import cell_net
from metanas.nas import cell_space
from metanas.nas import parsec
from metanas.nas import parsec_data
from metanas.nas import parsec_memory
from metanas.nas import parsec_retrain


def build_spec(config, in_channels: int, num_classes: int) -> cell_net.NetSpec:
  space = cell_space.CellSpace(num_nodes=config.model.num_nodes, ops=tuple(config.model.ops))
  return cell_net.NetSpec(space=space, in_channels=in_channels, num_classes=num_classes,
                          channels=config.model.channels, num_cells=config.model.num_cells,
                          reduce_before=tuple(config.model.reduce_before))


def _phase_config(config, num_steps: int):
  """The generic loop's config for a phase of `num_steps` steps (one eval, at the end)."""
  tc = config.train.copy_and_resolve_references()
  with tc.unlocked():
    tc.num_steps = num_steps
    tc.eval_every = max(num_steps, 1)
    tc.log_every = min(tc.log_every, max(num_steps, 1))
    tc.checkpoint_every = (num_steps // tc.log_every) * tc.log_every or tc.log_every
  return tc


def _search(method: str, config, spec, splits, workdir: str, prior=None, num_steps=None):
  """Runs one search with the generic loop; returns (final metrics, final state, wall seconds).

  First `config.search.warmup_steps` steps train only the shared weights with the architecture
  distribution frozen at its initial value (workdir/warmup), then the alternating search
  (workdir) starts from the warmed-up weights. Both phases count in the wall time. With
  search.warmup_net="child" the warm-up trains one sampled child per step for both methods (same
  seed, so PARSEC and DARTS start their searches from identical weights); "own" warms DARTS up
  with its mixed network.
  """
  s = config.search
  w_opt, pi_opt = parsec.make_optimizers(s)
  size = splits["x_train"].shape[1]
  costs = cell_net.op_costs_mflops(spec, size, splits["x_train"].shape[2])
  step = parsec.make_step(method, spec, w_opt, pi_opt, s.num_samples, s.cost_weight, costs)
  b = s.batch_size
  rng = np.random.default_rng(config.train.seed)
  n_tr, n_va = splits["x_train"].shape[0], splits["x_val"].shape[0]
  seeds = rng.integers(0, 2**31, size=2)

  def make_sampler(seed):
    def sample_batch(i):
      r = np.random.default_rng([int(seed), i])
      it, iv = r.integers(0, n_tr, b), r.integers(0, n_va, b)
      return {"x_train": splits["x_train"][it], "y_train": splits["y_train"][it],
              "x_val": splits["x_val"][iv], "y_val": splits["y_val"][iv]}
    return sample_batch

  evaluate = lambda st, i: {"entropy": float(cell_space.entropy(spec.space, st["pi"]))}
  init = lambda r: parsec.init_state(spec, r, w_opt, pi_opt, prior)
  t = time.time()
  if s.warmup_steps > 0:
    if s.warmup_net not in ("child", "own"):
      raise ValueError(f"search.warmup_net must be 'child' or 'own', got {s.warmup_net!r}.")
    warm = functools.partial(parsec.warmup_step, spec=spec, w_opt=w_opt,
                             method="parsec" if s.warmup_net == "child" else method)
    _, warm_state = train.train(
        _phase_config(config, s.warmup_steps), os.path.join(workdir, "warmup"),
        train.Task(init=init, step=warm, sample_batch=make_sampler(seeds[1]), evaluate=evaluate))
    warm_state = jax.device_get(warm_state)
    init = lambda r: warm_state
  tc = (config.train.copy_and_resolve_references() if num_steps is None
        else _phase_config(config, num_steps))
  task = train.Task(init=init, step=step, sample_batch=make_sampler(seeds[0]), evaluate=evaluate)
  final, state = train.train(tc, workdir, task)
  return final, jax.device_get(state), time.time() - t


def _entropy_curve(workdir: str) -> tuple[list[int], list[float]]:
  recs = [r for r in metric_writer.read_metrics(workdir) if "train/entropy" in r]
  return [r["step"] for r in recs], [r["train/entropy"] for r in recs]


def _summary(accs: list[float]) -> dict:
  a = np.asarray(accs)
  return {"mean": float(a.mean()), "std": float(a.std()), "median": float(np.median(a)),
          "min": float(a.min()), "max": float(a.max()), "all": a.tolist()}


def _plot_entropy(curves: dict, max_entropy: float, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name, (steps, ent) in curves.items():
    ax.plot(steps, ent, label=name)
  ax.axhline(max_entropy, color="grey", ls=":", label="uniform prior")
  ax.set_xlabel("search step")
  ax.set_ylabel("entropy of p(alpha | pi) (nats)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run(config, workdir: str) -> dict:
  """Runs the enabled phases; writes results.json, table.md and figures into workdir."""
  os.makedirs(workdir, exist_ok=True)
  results: dict = {"config": config.to_dict()}
  d = config.data
  if config.memory.enabled:
    m = config.memory
    rows = parsec_memory.sweep(tuple(m.op_counts), config.model.num_nodes, m.channels,
                               m.num_cells, m.image_size, m.in_channels, m.batch_size,
                               config.search.num_samples, m.repeats,
                               on_row=lambda rows: metric_writer.write_results(
                                   workdir, {"memory": rows}, name="memory_partial.json"))
    results["memory"] = rows
    parsec_memory.plot(rows, os.path.join(workdir, "memory.png"), config.search.num_samples)
    with open(os.path.join(workdir, "memory_table.md"), "w") as f:
      f.write(parsec_memory.table_markdown(rows, config.search.num_samples) + "\n")
    logging.info("memory sweep:\n%s", parsec_memory.table_markdown(rows, config.search.num_samples))
  if not config.search.enabled:
    metric_writer.write_results(workdir, results)
    return results

  data = parsec_data.load(d.name, d.source, config.data_dir, d.downsample)
  splits = parsec_data.search_splits(data, d.num_train, d.num_val, d.num_test, d.split_seed)
  spec = build_spec(config, splits["x_train"].shape[-1], int(data["y_train"].max()) + 1)
  space = spec.space
  results["space"] = {"ops": list(space.ops), "num_nodes": space.num_nodes,
                      "num_architectures": space.num_architectures(),
                      "max_entropy": cell_space.max_entropy(space)}
  # PARSEC search.
  archs, curves, pi = {}, {}, None
  if config.parsec.enabled:
    final, state, secs = _search("parsec", config, spec, splits,
                                 os.path.join(workdir, "search_parsec"))
    pi = state["pi"]
    arch = jax.device_get(cell_space.most_probable(space, pi))
    curves["PARSEC"] = _entropy_curve(os.path.join(workdir, "search_parsec"))
    results["parsec"] = {"final": final, "search_seconds": secs,
                         "arch": cell_space.arch_to_list(arch),
                         "genotype": cell_space.describe(space, arch),
                         "op_probs": np.asarray(cell_space.probabilities(space, pi)["op"]).tolist(),
                         "entropy_curve": curves["PARSEC"],
                         "final_entropy": float(cell_space.entropy(space, pi))}
    archs["parsec"] = arch
  if config.darts.enabled:
    final_d, state_d, secs_d = _search("darts", config, spec, splits,
                                       os.path.join(workdir, "search_darts"))
    arch_d = jax.device_get(cell_space.most_probable(space, state_d["pi"]))
    curves["DARTS (softmax entropy)"] = _entropy_curve(os.path.join(workdir, "search_darts"))
    results["darts"] = {"final": final_d, "search_seconds": secs_d,
                        "arch": cell_space.arch_to_list(arch_d),
                        "genotype": cell_space.describe(space, arch_d),
                        "op_probs": np.asarray(cell_space.probabilities(
                            space, state_d["pi"])["op"]).tolist(),
                        "entropy_curve": curves["DARTS (softmax entropy)"]}
    archs["darts"] = arch_d
  if curves:
    _plot_entropy(curves, cell_space.max_entropy(space), os.path.join(workdir, "entropy.png"))

  # Retraining comparison, one budget for all. Random archs: the `num_random` uniform draws of
  # `random_seed`, of which this run retrains shard i of n (random_shard = (i, n)), so the random
  # baseline can be split over processes and merged (experiments/parsec_tables.py).
  r = config.retrain
  if r.enabled and r.compare:
    retrain = parsec_retrain.make_retrainer(spec, r.num_steps, r.batch_size, r.learning_rate,
                                            r.eval_batch)
    rsplits = {"x_train": splits["x_train"][:r.num_train],
               "y_train": splits["y_train"][:r.num_train],
               "x_test": splits["x_test"], "y_test": splits["y_test"]}
    t = time.time()
    ret = {}
    seeds = list(range(r.num_seeds))[r.seed_shard[0]::r.seed_shard[1]]
    for name, a in archs.items():
      if seeds:
        ret[name] = _summary([retrain(a, 100 + s, rsplits)["test_accuracy"] for s in seeds])
        ret[name]["seeds"] = seeds
    shard, num_shards = r.random_shard
    ids = list(range(r.num_random))[shard::num_shards]
    if ids:
      rand = parsec_retrain.random_archs(space, r.num_random, r.random_seed)
      ret["random"] = _summary([retrain(rand[i], 100, rsplits)["test_accuracy"] for i in ids])
      ret["random"]["ids"] = ids
      ret["random"]["genotypes"] = [cell_space.describe(space, rand[i]) for i in ids]
    ret["seconds"] = time.time() - t
    results["retrain"] = ret

  # Transfer: pi from this search as the prior on a second dataset vs a uniform prior.
  tr = config.transfer
  if tr.enabled and pi is not None:
    data2 = parsec_data.load(tr.name, d.source, config.data_dir, d.downsample)
    splits2 = parsec_data.search_splits(data2, d.num_train, d.num_val, d.num_test, d.split_seed)
    out = {}
    retrain2 = parsec_retrain.make_retrainer(spec, r.num_steps, r.batch_size, r.learning_rate,
                                             r.eval_batch)
    rs2 = {"x_train": splits2["x_train"][:r.num_train], "y_train": splits2["y_train"][:r.num_train],
           "x_test": splits2["x_test"], "y_test": splits2["y_test"]}
    for name, prior in (("transferred_prior", pi), ("uniform_prior", None)):
      wd = os.path.join(workdir, f"transfer_{name}")
      f2, st2, s2 = _search("parsec", config, spec, splits2, wd, prior=prior,
                            num_steps=tr.num_steps)
      a2 = jax.device_get(cell_space.most_probable(space, st2["pi"]))
      recs = [m for m in metric_writer.read_metrics(wd) if "train/val_log_marginal" in m]
      out[name] = {"final": f2, "search_seconds": s2, "genotype": cell_space.describe(space, a2),
                   "val_log_marginal_curve": [(m["step"], m["train/val_log_marginal"])
                                              for m in recs],
                   "retrain": _summary([retrain2(a2, 100 + s, rs2)["test_accuracy"]
                                        for s in range(r.num_seeds)]) if r.enabled else None}
    results["transfer"] = out

  metric_writer.write_results(workdir, results)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    plain = metric_writer._to_python(results)  # pylint: disable=protected-access
    json.dump({k: v for k, v in plain.items() if k != "config"}, f, indent=1)
  return results
