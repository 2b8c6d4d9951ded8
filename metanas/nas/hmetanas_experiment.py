"""The H-Meta-NAS experiment: supernet MAML, latency tables, GA adaptation, manual baselines.

`run(config, workdir)` (method "hmetanas"):
1. builds a latency table per device (measured on this CPU or analytic) and validates the measured
   ones on random whole sub-networks (in worker processes, concurrently with step 2);
2. meta-trains the supernet (`hmetanas_train.supernet_task`) in workdir/supernet;
3. trains the manual baselines (fixed Conv-N shapes, same episodes and step budget), or takes them
   from an earlier run's results.json (`baselines_from`: same data, seed and test tasks);
4. for every device and every budget (by default the latencies of the manual baselines on that
   device) runs the GA and reports the chosen sub-network's test accuracy; also MAC budgets at a
   fraction of each baseline's MACs (the "40% fewer MACs" target);
5. ablations on one device/budget: without Global Expansion, without Adaptive Number of Layers,
   random search with the same number of evaluations, and a GA pool-size x generations sweep;
6. writes results.json, pareto_<device>.png, pareto_macs.png.
Every stage is resumable: supernet/baseline checkpoints and latency tables are reused.
"""

import concurrent.futures
import json
import os
import time

import jax
import numpy as np
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas import parallel
from metanas import train
from metanas.nas import genetic
from metanas.nas import hmetanas
from metanas.nas import hmetanas_latency
from metanas.nas import hmetanas_plots
from metanas.nas import hmetanas_train
from metanas.nas import search_space as ss
from metanas.nas import supernet


def _load_data(config):
  """Samplers {split: sampler} and (spec, image_size, in_channels)."""
  from metanas.data import omniglot  # pylint: disable=g-import-not-at-top
  d = config.data
  if d.name == "omniglot":
    arrays = omniglot.load(config.data_dir, d.source)
    make = lambda split, rot: omniglot.OmniglotSampler(arrays, split, d.protocol, rotations=rot,
                                                       num_val_chars=d.num_val_chars)
    samplers = {"train": make("train", True), "val": make("val", False),
                "test": make("test", False)}
    return samplers, 28, 1
  if d.name == "miniimagenet":
    from metanas.data import miniimagenet  # pylint: disable=g-import-not-at-top
    samplers = {s: miniimagenet.MiniImageNetSampler(miniimagenet.load(config.data_dir, s, d.source))
                for s in ("train", "val", "test")}
    return samplers, miniimagenet.IMAGE_SIZE, 3
  raise ValueError(f"Unknown data.name {d.name!r}; use 'omniglot' or 'miniimagenet'.")


def baseline_genes(space: ss.SearchSpace, spec) -> np.ndarray:
  """(multiplier, depth, kernel, ratio) -> genes of a uniform plain network."""
  g, depth, k, r = spec
  try:
    genes = [space.global_multipliers.index(g), space.depth_choices.index(depth)]
    genes += [space.kernel_choices.index(k)] * space.max_depth
    genes += [space.width_ratios.index(r)] * space.max_depth
  except ValueError as e:
    raise ValueError(f"Baseline {spec} is not in the search space ({e}); use values from "
                     "config.space.") from e
  return ss.canonical(space, np.array(genes, np.int32))


def _train_log(run_dir: str) -> dict:
  """Last logged training metrics and the training time they imply (sum over log windows of
  window steps / logged steps-per-second, compile excluded), so that a resumed run still reports
  the real cost of training."""
  path = os.path.join(run_dir, "metrics.jsonl")
  last, seconds, prev = {}, 0.0, 0
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        rec = json.loads(line)
        if "train/steps_per_sec" in rec:
          seconds += (rec["step"] - prev) / rec["train/steps_per_sec"]
          prev, last = rec["step"], rec
  if not last:
    return {}
  return {"steps": last["step"], "train_time_from_log_sec": seconds,
          **{k: v for k, v in last.items() if k.startswith("train/")}}


def _ga_config(c) -> genetic.GAConfig:
  return genetic.GAConfig(pop_size=c.pop_size, generations=c.generations,
                          tournament_size=c.tournament_size, mutation_prob=c.mutation_prob)


def _summ(acc: np.ndarray) -> dict:
  acc = np.asarray(acc, np.float64)
  return {"accuracy": float(acc.mean()),
          "ci95": float(1.96 * acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else 0.0}


def _setup(config):
  """Samplers, training episode spec, search space, and the fixed validation / test tasks."""
  samplers, image_size, in_ch = _load_data(config)
  d = config.data
  from metanas.data import omniglot  # pylint: disable=g-import-not-at-top
  train_spec = omniglot.EpisodeSpec(d.n_way, d.k_shot, d.n_query)
  eval_spec = omniglot.EpisodeSpec(d.n_way, d.k_shot, config.eval.n_query)
  space = hmetanas_train.space_from(config, d.n_way, image_size, in_ch)
  val_tasks = hmetanas_train.episodes(samplers["val"], np.random.default_rng([config.seed, 2]),
                                      config.ga.num_val_tasks, eval_spec)
  test_tasks = hmetanas_train.episodes(samplers["test"], np.random.default_rng([config.seed, 3]),
                                       config.eval.num_test_tasks, eval_spec)
  return samplers, train_spec, space, val_tasks, test_tasks


def _earlier_baselines(config) -> dict:
  """The "baselines" of an earlier run's results.json (`config.baselines_from`), or {}."""
  path = config.get("baselines_from")
  if not path:
    return {}
  with open(path) as f:
    earlier = json.load(f)
  if earlier.get("num_test_tasks") != config.eval.num_test_tasks:
    raise ValueError(f"baselines_from {path} was tested on {earlier.get('num_test_tasks')} tasks, "
                     f"this run on {config.eval.num_test_tasks}; the accuracies would not compare.")
  return {name: dict(b, reused_from=path) for name, b in earlier["baselines"].items()}


def _reuse_baseline(earlier: dict, name: str, genes: np.ndarray, steps: int) -> dict:
  """The trained-network fields of an earlier run's baseline `name` (accuracy, its interval,
  training log, time and steps), checked to be the same shape trained for the same steps."""
  b = earlier[name]
  if list(b["genes"]) != genes.tolist() or int(b["steps"]) != steps:
    raise ValueError(f"Baseline {name} of {b['reused_from']} has genes {b['genes']} and "
                     f"{b['steps']} steps; this run needs {genes.tolist()} and {steps}.")
  keep = ("accuracy", "ci95", "train_wall_time_sec", "train_log", "steps", "reused_from")
  return {k: b[k] for k in keep if k in b}


def finetune_subnets(config, workdir: str, meta_params: dict, space: ss.SearchSpace, rows,
                     sampler, train_spec, test_tasks, steps: int, mesh=None,
                     inherit: bool = True) -> None:
  """Meta-fine-tunes every searched sub-network in `rows` from the weights it inherits.

  Each row with "genes" gets its weights cut out of the supernet (`supernet.slice_params`), is
  meta-trained alone for `steps` first-order MAML steps (the baselines' optimiser, schedule and
  episodes) in workdir/finetune_<steps>/<architecture>, and is tested on `test_tasks`. Adds to the row
  "finetuned_accuracy" (+ "_ci95"), "finetune_steps" and "finetune_sec" (training wall time). The
  latency and MACs of a row do not change (same shape). A shape found twice is trained once.
  `inherit=False` is the control: the same shapes and budget from a fresh initialisation, in
  workdir/scratch_<steps>/<architecture>, reported as "scratch_accuracy" (+ "_ci95"), "scratch_steps",
  "scratch_sec".
  """
  prefix = "finetune" if inherit else "scratch"
  acc_key = "finetuned_accuracy" if inherit else "scratch_accuracy"
  settings = hmetanas_train.settings_from(config)
  impl = config.model.conv_impl
  done = {}
  for row in rows:
    if "genes" not in row:
      continue
    genes = np.asarray(row["genes"])
    key = "-".join(str(int(g)) for g in genes)
    if key not in done:
      t = time.time()
      tcfg = config.train.copy_and_resolve_references()
      tcfg.num_steps = int(steps)
      tcfg.checkpoint_every = tcfg.log_every * max(1, int(steps) // tcfg.log_every)
      init = (jax.device_get(supernet.slice_params(meta_params["model"], space, genes))
              if inherit else None)
      task = hmetanas_train.baseline_task(config, space, genes, sampler, train_spec,
                                          num_steps=int(steps), init_params=init)
      _, state = train.train(tcfg, os.path.join(workdir, f"{prefix}_{steps}", key), task, mesh)
      acc = hmetanas_train.plain_accuracy(jax.device_get(state.meta_params), test_tasks,
                                          settings.num_inner_steps, impl)
      done[key] = {acc_key: float(acc.mean()), f"{acc_key}_ci95": _summ(acc)["ci95"],
                   f"{prefix}_steps": int(steps), f"{prefix}_sec": time.time() - t}
      logging.info("%s %s, %d steps: %.4f (searched %.4f)", prefix, row.get("arch"), steps,
                   acc.mean(), row.get("test_accuracy", float("nan")))
    row.update(done[key])


def finetune_workdir(config: config_dict.ConfigDict, workdir: str, steps: int,
                     inherit: bool = True, devices: tuple[str, ...] = ()) -> dict:
  """`finetune_subnets` on a finished run: reads workdir/results.json and the supernet checkpoint,
  writes workdir/results_finetuned_<steps>.json (results.json plus the fine-tuned accuracies; or
  results_scratch_<steps>.json with `inherit=False`). `devices`: only the sub-networks searched
  for these devices ("macs" = the MAC budgets); all by default."""
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  mesh = parallel.make_mesh(config.train.num_devices or None)
  samplers, train_spec, space, _, test_tasks = _setup(config)
  task = hmetanas_train.supernet_task(config, space, samplers["train"], train_spec)
  _, state = train.train(config.train, os.path.join(workdir, "supernet"), task, mesh)
  groups = dict(results["adaptation"], macs=results["mac_budgets"])
  rows = [r for name, rs in groups.items() if not devices or name in devices for r in rs]
  finetune_subnets(config, workdir, jax.device_get(state.meta_params), space, rows,
                   samplers["train"], train_spec, test_tasks, steps, mesh, inherit)
  key = "finetuned_accuracy" if inherit else "scratch_accuracy"
  if not devices:  # The summary needs every searched sub-network's accuracy.
    results["summary_" + key.split("_")[0]] = hmetanas_plots.pareto_summary(results, key)
  metric_writer.write_results(workdir, results, name=f"results_{key.split('_')[0]}_{steps}.json")
  return results


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs the whole H-Meta-NAS pipeline (module doc) and writes results.json in `workdir`."""
  os.makedirs(workdir, exist_ok=True)
  mesh = parallel.make_mesh(config.train.num_devices or None)
  samplers, train_spec, space, val_tasks, test_tasks = _setup(config)
  settings = hmetanas_train.settings_from(config)
  impl = config.model.conv_impl
  try:
    num_archs = len(ss.enumerate_all(space))
  except ValueError:
    num_archs = None
  results: dict = {"search_space": {"num_architectures": num_archs,
                                    "max_channels": space.max_channels,
                                    "channel_table": space.channel_table().tolist()}}
  writer = metric_writer.MetricWriter(workdir, tensorboard=False)

  # 1-2. Latency tables (profiled in worker processes from a background thread while the supernet
  # trains) and their validation on whole random sub-networks (measured devices; during the search).
  # `latency.background=False` does both first, so no training shares the CPU with the timings.
  rng = np.random.default_rng([config.seed, 4])
  val_genes = np.unique(ss.random_genes(space, rng, config.latency.num_validation * 2), axis=0)
  val_genes = val_genes[rng.permutation(len(val_genes))[:config.latency.num_validation]]

  def profile():
    t = time.time()
    tables = hmetanas_latency.build_tables(space, config.devices, workdir, config.latency.repeats)
    return tables, {"wall_time_sec": time.time() - t,
                    "num_entries": {n: len(tb.entries) for n, tb in tables.items()}}

  def validate(tables):
    out = {}
    for name, table in tables.items():
      if table.device.kind == "measured" and config.latency.num_validation > 0:
        path = os.path.join(workdir, f"latency_validation_{name}.json")
        if os.path.exists(path):  # Resumed run: keep the earlier measurement.
          with open(path) as f:
            out[name] = json.load(f)
          continue
        t = time.time()
        v = hmetanas_latency.validate_table(table, space, val_genes, config.latency.repeats)
        v["wall_time_sec"] = time.time() - t
        v["architectures"] = [ss.describe(space, g) for g in val_genes]
        with open(path, "w") as f:
          json.dump(v, f, indent=1)
        out[name] = v
        logging.info("Latency table %s: pearson %.3f, rel err %.3f", name, v["pearson"],
                     v["mean_rel_error"])
    return out

  pool = concurrent.futures.ThreadPoolExecutor(1)
  background = config.latency.get("background", True)
  if background:
    profiling = pool.submit(profile)
  else:  # Profile and validate on a quiet machine, before any training starts.
    profiling = concurrent.futures.Future()
    profiling.set_result(profile())
    validating = concurrent.futures.Future()
    validating.set_result(validate(profiling.result()[0]))

  # 3. Supernet meta-training.
  t0 = time.time()
  task = hmetanas_train.supernet_task(config, space, samplers["train"], train_spec)
  final, state = train.train(config.train, os.path.join(workdir, "supernet"), task, mesh)
  results["supernet_train"] = {"wall_time_sec": time.time() - t0, **final,
                               **_train_log(os.path.join(workdir, "supernet"))}
  meta_params = jax.device_get(state.meta_params)
  tables, results["latency_tables"] = profiling.result()
  if background:
    validating = pool.submit(validate, tables)  # Runs in worker processes during the search.
  sn = hmetanas.Supernet(meta_params, space, tables, settings, impl)
  logging.info("Supernet trained in %.0f s", results["supernet_train"]["wall_time_sec"])

  # 4. Manual baselines (separately trained) and the same shapes inside the supernet.
  results["baselines"] = {}
  earlier = _earlier_baselines(config)
  for i, spec in enumerate(config.baselines):
    genes = baseline_genes(space, spec)
    name = f"g{spec[0]}_d{spec[1]}_k{spec[2]}_r{spec[3]}"
    steps = int(config.baseline_steps or config.train.num_steps)
    if name in earlier:
      trained = _reuse_baseline(earlier, name, genes, steps)
    else:
      t = time.time()
      bcfg = config.train.copy_and_resolve_references()
      bcfg.num_steps = steps
      btask = hmetanas_train.baseline_task(config, space, genes, samplers["train"], train_spec,
                                           num_steps=steps)
      bdir = os.path.join(workdir, f"baseline_{i}")
      _, bstate = train.train(bcfg, bdir, btask, mesh)
      acc = hmetanas_train.plain_accuracy(jax.device_get(bstate.meta_params), test_tasks,
                                          settings.num_inner_steps, impl)
      trained = {**_summ(acc), "train_wall_time_sec": time.time() - t,
                 "train_log": _train_log(bdir), "steps": steps}
    in_super = hmetanas.evaluate_genes(meta_params, space, genes[None], test_tasks,
                                       settings.num_inner_steps, impl, arch_chunk=1)[0]
    results["baselines"][name] = {
        "genes": genes.tolist(), "arch": ss.describe(space, genes), **trained,
        "supernet_accuracy": float(in_super.mean()), "macs": ss.macs(space, genes),
        "params": ss.num_params(space, genes),
        "latency_ms": {n: hmetanas_latency.predict(tb, space, genes) for n, tb in tables.items()}}
    writer.write(i, {f"baseline/{name}/accuracy": trained["accuracy"]})
    logging.info("Baseline %s: %.4f (inside the supernet %.4f)", name, trained["accuracy"],
                 in_super.mean())

  # 5. GA adaptation per device and latency budget, and per MAC budget.
  ga_cfg = _ga_config(config.ga)
  results["adaptation"] = {}
  for name in config.search_devices:
    budgets = sorted({b["latency_ms"][name] for b in results["baselines"].values()})
    budgets = [b * config.budget_scale for b in budgets]
    rows = []
    for j, budget in enumerate(budgets):
      t = time.time()
      try:
        out = hmetanas.adapt_architecture(sn, name, budget, val_tasks,
                                          np.random.default_rng([config.seed, 5, j]),
                                          ga=ga_cfg, test_tasks=test_tasks)
      except ValueError as e:  # E.g. no feasible architecture found by random sampling.
        logging.warning("%s budget %.4g ms failed: %s", name, budget, e)
        continue
      out["wall_time_sec"] = time.time() - t
      out["latency_ms_all"] = {n: hmetanas_latency.predict(tb, space, out["genes"])
                               for n, tb in tables.items()}
      rows.append(out)
      logging.info("%s budget %.4g ms: %s acc %.4f (%.0f s)", name, budget, out["arch"],
                   out["test_accuracy"], out["wall_time_sec"])
    results["adaptation"][name] = rows
  rows = []
  for j, b in enumerate(results["baselines"].values()):
    budget = config.mac_fraction * b["macs"]
    try:
      out = hmetanas.adapt_architecture(sn, "", budget, val_tasks,
                                        np.random.default_rng([config.seed, 6, j]), metric="macs",
                                        ga=ga_cfg, test_tasks=test_tasks)
    except ValueError as e:
      out = {"budget": budget, "error": str(e)}
    out["baseline"] = b["arch"]
    out["baseline_accuracy"] = b["accuracy"]
    rows.append(out)
  results["mac_budgets"] = rows
  if config.get("finetune_steps", 0):
    finetune_subnets(config, workdir, meta_params, space,
                     [r for rs in results["adaptation"].values() for r in rs] + rows,
                     samplers["train"], train_spec, test_tasks, config.finetune_steps, mesh)
  metric_writer.write_results(workdir, results)  # Partial results, in case an ablation fails.

  # 6. Ablations on the first search device at the median budget.
  if config.ablations.enabled:
    try:
      results["ablations"] = _ablations(config, sn, results, val_tasks, test_tasks, ga_cfg)
    except ValueError as e:
      results["ablations"] = {"error": str(e)}

  results["latency_validation"] = validating.result()
  pool.shutdown()
  results["num_test_tasks"] = int(config.eval.num_test_tasks)
  results["search_cost"] = {
      "supernet_train_sec": results["supernet_train"].get(
          "train_time_from_log_sec", results["supernet_train"]["wall_time_sec"]),
      "mean_adaptation_sec": float(np.mean([r["wall_time_sec"]
                                            for rs in results["adaptation"].values()
                                            for r in rs])) if results["adaptation"] else None,
      "baselines_train_sec": float(sum(b["train_wall_time_sec"]
                                       for b in results["baselines"].values()))}
  results["summary"] = hmetanas_plots.pareto_summary(results)
  if config.get("finetune_steps", 0):
    results["summary_finetuned"] = hmetanas_plots.pareto_summary(results, "finetuned_accuracy")
  hmetanas_plots.plot_all(results, workdir)
  writer.close()
  metric_writer.write_results(workdir, results)
  logging.info("Summary: %s", json.dumps(results["summary"], indent=1))
  return results


def _ablations(config, sn, results, val_tasks, test_tasks, ga_cfg) -> dict:
  name = config.search_devices[0]
  budgets = sorted(r["budget"] for r in results["adaptation"][name])
  if not budgets:
    return {"error": f"no successful adaptation on {name} to take a budget from"}
  budget = budgets[len(budgets) // 2]
  space = sn.space
  variants = {
      "full": None,
      "no_global_expansion": genetic.restrict(space, global_multipliers=(
          config.ablations.no_ge_multiplier,)),
      "no_adaptive_layers": genetic.restrict(space, depth_choices=(max(space.depth_choices),)),
  }
  out = {"device": name, "budget_ms": budget}
  for k, allowed in variants.items():
    try:
      r = hmetanas.adapt_architecture(sn, name, budget, val_tasks,
                                      np.random.default_rng([config.seed, 7]), ga=ga_cfg,
                                      test_tasks=test_tasks, allowed=allowed)
    except ValueError as e:
      r = {"error": str(e)}
    out[k] = r
  out["random_search"] = hmetanas.adapt_architecture(
      sn, name, budget, val_tasks, np.random.default_rng([config.seed, 7]), ga=ga_cfg,
      test_tasks=test_tasks, search="random")
  sweep = []
  for pop in config.ablations.pop_sizes:
    for gens in config.ablations.generations:
      ga = genetic.GAConfig(pop_size=pop, generations=gens,
                            tournament_size=ga_cfg.tournament_size,
                            mutation_prob=ga_cfg.mutation_prob)
      t = time.time()
      r = hmetanas.adapt_architecture(sn, name, budget, val_tasks,
                                      np.random.default_rng([config.seed, 8]), ga=ga,
                                      test_tasks=test_tasks)
      sweep.append({"pop_size": pop, "generations": gens, "val_accuracy": r["val_accuracy"],
                    "test_accuracy": r["test_accuracy"], "arch": r["arch"],
                    "num_evaluations": r["num_evaluations"], "wall_time_sec": time.time() - t})
  out["ga_sweep"] = sweep
  return out
