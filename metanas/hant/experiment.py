"""HANT experiment: train a teacher, distil + score candidates, and sweep latency budgets on measured
CPU settings against width-scaled teachers, greedy and random selections (arXiv 2107.10624, Sec. 4).

`run(config, workdir)` writes results.json, metrics.jsonl, latency tables, `sweep.json` and plots
(`acc_vs_latency_{device}.png`, `additive_model_{device}.png`) to the workdir.
"""

import dataclasses
import json
import os
import pickle
import time

import jax
import numpy as np

from metanas import metric_writer
from metanas.hant import accelerate as acc_lib
from metanas.hant import data as data_lib
from metanas.hant import fit_scores
from metanas.hant import latency_tables
from metanas.hant import network
from metanas.hant import solver
from metanas.hant import training
from metanas.hardware import latency as hw


def make_arch(cfg, width_mult: float = 1.0) -> network.Arch:
  if cfg.name == "cnn":
    return network.cnn_arch(tuple(cfg.widths), tuple(cfg.depths), cfg.image_hw, cfg.image_c,
                            cfg.num_classes, width_mult)
  if cfg.name.startswith("efficientnet_"):
    return network.efficientnet_arch(cfg.name.split("_")[1], cfg.num_classes, cfg.image_hw or None,
                                     cfg.width_mult * width_mult, cfg.num_stages)
  raise ValueError(f"Unknown model {cfg.name!r}; use 'cnn' or 'efficientnet_b0'..'efficientnet_b4'.")


def _log(msg):
  print(f"[hant {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def fingerprint(config, keys) -> str:
  """The config entries a cached workdir artefact depends on, as a canonical JSON string."""
  to_plain = lambda v: v.to_dict() if hasattr(v, "to_dict") else v
  return json.dumps({k: to_plain(config[k]) for k in keys}, sort_keys=True, default=str)


def cached(path: str, fp: str, compute, log=_log, what: str = "artefact", info: dict | None = None):
  """`compute()` once per workdir: pickled to `path` with its config fingerprint `fp`.

  A cache whose fingerprint differs from `fp` (the config changed) is recomputed and overwritten; a
  legacy cache without a fingerprint (bare pickle from before fingerprints) is reused with a note.
  `info`, if given, receives "reused" (bool) and "compute_seconds" (the wall time of the compute()
  that made the value, also when it was made by an earlier run; None for a legacy cache).
  """
  info = {} if info is None else info
  if os.path.exists(path):
    with open(path, "rb") as f:
      obj = pickle.load(f)
    if isinstance(obj, dict) and {"fingerprint", "value"} <= set(obj) <= {
        "fingerprint", "value", "seconds"}:
      if obj["fingerprint"] == fp:
        log(f"{what}: reusing {path}")
        info.update(reused=True, compute_seconds=obj.get("seconds"))
        return obj["value"]
      log(f"{what}: {path} was made with another config; recomputing")
    else:
      log(f"{what}: reusing {path} (no config fingerprint stored)")
      info.update(reused=True, compute_seconds=None)
      return obj
  t = time.time()
  value = jax.device_get(compute())
  seconds = time.time() - t
  with open(path, "wb") as f:
    pickle.dump({"fingerprint": fp, "value": value, "seconds": seconds}, f)
  info.update(reused=False, compute_seconds=seconds)
  return value


def run_file(workdir: str, name: str) -> str:
  """Path of a run's `name`.json (e.g. "sweep", "results"), or of the `name`_partial.json that
  `run` keeps up to date while it runs, when the run was stopped before its end."""
  path = os.path.join(workdir, f"{name}.json")
  return path if os.path.exists(path) else os.path.join(workdir, f"{name}_partial.json")


def _on_host(cands: acc_lib.Candidates) -> acc_lib.Candidates:
  return dataclasses.replace(cands, bank=jax.device_get(cands.bank))


TEACHER_KEYS = ("seed", "data", "model", "teacher")
CANDIDATE_KEYS = TEACHER_KEYS + ("candidates", "distill")
# The fitted scores also depend on the devices' latency tables (measured once per workdir).
FIT_KEYS = CANDIDATE_KEYS + ("fit", "finetune", "devices")


def _parse_method(m: str) -> tuple[str, str, bool]:
  """(selection, score kind, receptive-field floor): 'ip' -> ('ip', 'single', False); 'ip_fit' ->
  ('ip', 'fit', False); 'ip_rf' -> ('ip', 'single', True); 'best_sample' -> (m, 'fit', False)."""
  rf = m.endswith("_rf")
  if rf:
    m = m[:-len("_rf")]
  if m == "best_sample":
    return m, "fit", rf
  if m.endswith("_fit"):
    return m[:-len("_fit")], "fit", rf
  return m, "single", rf


def _fit(config, arch, teacher, cands, tables, data, rng) -> dict:
  """Fitted scores (metanas/hant/fit_scores.py) from fine-tuned random students."""
  sc, f = cands.scores, config.fit
  problems = []
  for dev in config.devices:
    _, scores, lats = acc_lib.selection_problem(arch, cands, tables[dev])
    t_ms = tables[dev].predict(latency_tables.network_keys(arch, arch.teacher_ops))
    problems.append((scores, lats, t_ms, tables[dev]["stem_head"]))
  samples = fit_scores.sample_selections(problems, f.num_samples, tuple(f.budget_range),
                                         np.random.default_rng(config.seed + 7))
  names = sc["names"]
  ops_list = [tuple(names[l][c] for l, c in enumerate(ch)) for ch, _, _ in samples]
  ev = fit_scores.evaluate_samples(arch, teacher, cands.bank, ops_list, data, f.steps,
                                   f.batch_size, config.finetune, jax.random.fold_in(rng, 5),
                                   log=_log)
  single = [np.asarray(l) - sc["teacher_loss"] for l in sc["loss"]]
  teacher_idx = [ns.index(t) for ns, t in zip(names, arch.teacher_ops)]
  fit = fit_scores.fit_additive([ch for ch, _, _ in samples], ev["val_loss"], single, teacher_idx)
  return {"ops": ops_list, "sample_device": [config.devices[d] for _, d, _ in samples],
          "sample_frac": [fr for _, _, fr in samples], **ev, **fit}


def _train_net(config, arch, data, rng, writer=None, prefix=""):
  params = network.init(arch, arch.teacher_ops, rng)
  t = config.teacher
  log = (lambda s, m: writer.write(s, m, prefix=prefix)) if writer else None
  params, _ = training.train(arch, arch.teacher_ops, params, data["x_train"], data["y_train"],
                             t.steps, t.batch_size, t.learning_rate, jax.random.fold_in(rng, 1),
                             log=log)
  return params


def solver_benchmark(cfg, seed: int) -> dict:
  """Solve times of random L x C instances at several budgets (the paper's 50 x 197 scale)."""
  rng = np.random.default_rng(seed)
  times, statuses = [], []
  for _ in range(cfg.num_instances):
    s, t = solver.random_instance(cfg.num_layers, cfg.num_candidates, rng)
    lo, hi = sum(x.min() for x in t), sum(x.max() for x in t)
    for frac in cfg.budget_fracs:
      sol = solver.solve(s, t, lo + frac * (hi - lo), time_limit_s=cfg.time_limit_s)
      times.append(sol.solve_time_s)
      statuses.append(sol.status)
  return {"layers": cfg.num_layers, "candidates": cfg.num_candidates, "max_s": float(max(times)),
          "mean_s": float(np.mean(times)), "n": len(times),
          "optimal_fraction": float(np.mean([s == "OPTIMAL" for s in statuses]))}


def run(config, workdir: str) -> dict:
  os.makedirs(workdir, exist_ok=True)
  writer = metric_writer.MetricWriter(workdir)
  rng = jax.random.key(config.seed)
  t0 = time.time()
  arch = make_arch(config.model)
  data = data_lib.load(config.data, config.data_dir, arch.image_hw, arch.image_c)
  _log(f"data: train {data['x_train'].shape}, val {data['x_val'].shape}, test {data['x_test'].shape}")
  results: dict = {"num_layers": len(arch.layers)}

  # 0. Solver benchmark at the paper's scale.
  if config.solver_benchmark.num_instances:
    results["solver_benchmark"] = solver_benchmark(config.solver_benchmark, config.seed)
    _log(f"solver benchmark {results['solver_benchmark']}")

  # 1. Teacher (cached in the workdir so a rerun with other budgets skips training).
  teacher_info: dict = {}
  t_params = cached(os.path.join(workdir, "teacher.pkl"), fingerprint(config, TEACHER_KEYS),
                    lambda: _train_net(config, arch, data, jax.random.fold_in(rng, 0), writer,
                                       "teacher/"), what="teacher", info=teacher_info)
  teacher = acc_lib.Teacher(arch, t_params)
  t_eval = training.evaluate(arch, arch.teacher_ops, t_params, data["x_test"], data["y_test"])
  results["teacher_test_acc"] = t_eval["acc"]
  # The teacher's own training time, also when teacher.pkl was reused (as for distill_time_s).
  results["teacher_reused_cache"] = teacher_info["reused"]
  ts = teacher_info["compute_seconds"]
  results["teacher_time_s"] = float("nan") if ts is None else ts
  _log(f"teacher test acc {t_eval['acc']:.4f} ({results['teacher_time_s']:.0f} s)")

  # 2. Distil and score every candidate of every layer.
  t1 = time.time()
  names = list(config.candidates) if config.candidates else None
  # Cached like the teacher: a rerun with other budgets / methods skips the distillation.
  cache_info: dict = {}
  cands = cached(os.path.join(workdir, "candidates.pkl"), fingerprint(config, CANDIDATE_KEYS),
                 lambda: _on_host(acc_lib.prepare_candidates(
                     teacher, data, names, config.distill, jax.random.fold_in(rng, 2), log=_log)),
                 what="candidates", info=cache_info)
  sc = cands.scores
  results["candidates_per_layer"] = [len(n) for n in sc["names"]]
  # The distillation's own wall time, also when this run read it from the cache (then
  # distill_cache_read_s is this run's time for the step and distill_reused_cache is True).
  results["distill_reused_cache"] = cache_info["reused"]
  results["distill_cache_read_s"] = time.time() - t1 if cache_info["reused"] else 0.0
  cs = cache_info["compute_seconds"]
  results["distill_time_s"] = float("nan") if cs is None else cs   # None: legacy cache, unknown
  results["distill_loss_first_last"] = {k: [v[0], v[-1]] for k, v in cands.history.items()}
  results["val_teacher_loss"] = sc["teacher_loss"]
  per_layer = []
  for i, (ns, ls, accs, mses) in enumerate(zip(sc["names"], sc["loss"], sc["acc"], sc["mse"])):
    per_layer.append({n: {"val_loss": float(l), "val_acc": float(a), "rel_mse": float(m)}
                      for n, l, a, m in zip(ns, ls, accs, mses)})
  latency_tables.save_json(os.path.join(workdir, "scores.json"), per_layer)
  _log(f"distilled + scored {sum(results['candidates_per_layer'])} candidates in "
       f"{results['distill_time_s']:.0f} s")

  # 3. Latency tables and the additive model check.
  tables = {}
  for dev in config.devices:
    path = os.path.join(workdir, f"latency_{dev}.json")
    if os.path.exists(path):
      tables[dev] = hw.LatencyTable.load(path)
    else:
      tables[dev] = latency_tables.build_table(arch, dict(enumerate(sc["names"])), dev,
                                               repeats=config.latency.repeats)
      tables[dev].save(path)
  nprng = np.random.default_rng(config.seed)
  rand_nets = {"teacher": arch.teacher_ops}
  for k in range(config.latency.num_random_nets):
    rand_nets[f"rand{k}"] = tuple(ns[nprng.integers(len(ns))] for ns in sc["names"])

  # 3b. Fitted scores (an extension, metanas/hant/fit_scores.py), if a method asks for them.
  fit = None
  if any(_parse_method(m)[1] == "fit" for m in config.methods):
    fit_info: dict = {}
    fit = cached(os.path.join(workdir, "fit.pkl"), fingerprint(config, FIT_KEYS),
                 lambda: _fit(config, arch, teacher, cands, tables, data, rng), what="fit scores",
                 info=fit_info)
    sc["fit"] = fit["increase"]
    results["fit"] = {k: float(fit[k]) for k in ("beta", "intercept", "lambda", "loo_rmse", "train_rmse",
                                          "loo_rmse_single")}
    results["fit"].update(num_samples=len(fit["ops"]), time_s=fit_info["compute_seconds"],
                          sample_seconds_mean=float(np.mean(fit["seconds"])))
    latency_tables.save_json(os.path.join(workdir, "fit_samples.json"), [
        {"ops": list(o), "device": d, "frac": fr, "val_loss": float(l), "val_acc": float(a)}
        for o, d, fr, l, a in zip(fit["ops"], fit["sample_device"], fit["sample_frac"],
                                  fit["val_loss"], fit["val_acc"])])
    latency_tables.save_json(os.path.join(workdir, "fit_scores.json"), [
        dict(zip(ns, map(float, inc))) for ns, inc in zip(sc["names"], fit["increase"])])
    _log(f"fitted scores: {results['fit']}")

  # 4. Per device: budget sweep (IP, greedy, random; each distinct student fine-tuned once), then
  # one timing of every network (students, random nets) for the additive-model check.
  finetuned: dict = {}
  sweep, fits = [], {}
  # Receptive-field floor of the *_rf methods (an extension): 0 in the config = the default.
  rf_floor = config.get("rf_floor", 0) or network.default_rf_floor(arch)
  results["teacher_receptive_field"] = network.receptive_field(arch, arch.teacher_ops)
  results["rf_floor"] = rf_floor
  for dev in config.devices:
    table = tables[dev]
    t_pred = table.predict(latency_tables.network_keys(arch, arch.teacher_ops))
    results[f"{dev}/teacher_predicted_ms"] = t_pred
    results[f"{dev}/fastest_ms"] = acc_lib.fastest_latency(arch, cands, table)
    for frac in config.budget_fracs:
      budget = frac * t_pred
      for method in config.methods:
        row = {"device": dev, "frac": frac, "budget_ms": budget, "method": method}
        base, kind, rf = _parse_method(method)
        try:
          if base == "best_sample":
            ops, sol = _best_sample(arch, fit, table, budget)
          else:
            ops, sol = acc_lib.select(arch, cands, table, budget, method=base,
                                      rng=np.random.default_rng(config.seed), num_random=20,
                                      time_limit_s=config.solver_time_limit_s, score_kind=kind,
                                      min_rf=rf_floor if rf else 0)
        except solver.InfeasibleBudgetError as e:
          row["infeasible"] = str(e)
          sweep.append(row)
          continue
        if ops not in finetuned:
          finetuned[ops] = _finetune(config, teacher, cands, ops, data, rng)
        row.update(ops=list(ops), predicted_ms=table.predict(latency_tables.network_keys(arch, ops)),
                   receptive_field=network.receptive_field(arch, ops),
                   solve_time_s=sol.solve_time_s, score=sol.score, **finetuned[ops])
        sweep.append(row)
        latency_tables.save_json(os.path.join(workdir, "sweep_partial.json"), sweep)
        latency_tables.save_json(os.path.join(workdir, "results_partial.json"), results)
        _log(f"{dev} {frac:.2f} {method}: pred {row['predicted_ms']:.3f} ms, acc "
             f"{row['acc_before']:.4f} -> {row['test_acc']:.4f}")
    nets = dict(rand_nets)
    nets.update({"|".join(r["ops"]): tuple(r["ops"]) for r in sweep
                 if r["device"] == dev and "ops" in r})
    measured = latency_tables.measure_networks(arch, nets, dev, repeats=config.latency.repeats)
    pred = {k: table.predict(latency_tables.network_keys(arch, v)) for k, v in nets.items()}
    keys = sorted(nets)
    fits[dev] = latency_tables.additive_fit([pred[k] for k in keys], [measured[k] for k in keys])
    fits[dev]["points"] = [(pred[k], measured[k]) for k in keys]
    results[f"{dev}/teacher_measured_ms"] = measured["teacher"]
    for r in sweep:
      if r["device"] == dev and "ops" in r:
        r["measured_ms"] = measured["|".join(r["ops"])]
        r["speedup"] = measured["teacher"] / r["measured_ms"]
    results[f"{dev}/additive"] = {k: v for k, v in fits[dev].items() if k != "points"}
    _log(f"{dev}: additive model {results[f'{dev}/additive']}")
    latency_tables.save_json(os.path.join(workdir, "sweep_partial.json"), sweep)
    latency_tables.save_json(os.path.join(workdir, "results_partial.json"), results)

  # 5. Width-scaled teachers (trained with the teacher's recipe), timed on every device.
  for w in config.width_mults:
    arch_w = make_arch(config.model, w)
    p_w = _train_net(config, arch_w, data, jax.random.fold_in(rng, int(1000 * w)))
    acc_w = training.evaluate(arch_w, arch_w.teacher_ops, p_w, data["x_test"], data["y_test"])["acc"]
    _log(f"width x{w}: acc {acc_w:.4f}")
    accs = {"width": acc_w}
    if config.get("width_kd", False):
      p_kd = width_kd(config.finetune, arch_w, p_w, teacher, data, rng)
      accs["width_kd"] = training.evaluate(arch_w, arch_w.teacher_ops, p_kd, data["x_test"],
                                           data["y_test"])["acc"]
      _log(f"width x{w} + distillation: acc {accs['width_kd']:.4f}")
    for dev in config.devices:
      ms = latency_tables.measure_networks(arch_w, {"w": arch_w.teacher_ops}, dev,
                                           repeats=config.latency.repeats)["w"]
      for method, acc in accs.items():
        sweep.append({"device": dev, "method": method, "width_mult": w, "measured_ms": ms,
                      "speedup": results[f"{dev}/teacher_measured_ms"] / ms, "test_acc": acc})

  feasible = [r for r in sweep if "solve_time_s" in r and r["method"] == "ip"]
  if feasible:
    results["max_ip_solve_time_s"] = max(r["solve_time_s"] for r in feasible)
  results["total_time_s"] = time.time() - t0
  latency_tables.save_json(os.path.join(workdir, "sweep.json"), sweep)
  latency_tables.save_json(os.path.join(workdir, "additive_fit.json"), fits)
  _plots(workdir, sweep, fits, results, config.devices)
  writer.write(0, {k: v for k, v in results.items() if isinstance(v, (int, float))})
  writer.close()
  metric_writer.write_results(workdir, results)
  return results


def _best_sample(arch, fit, table, budget):
  """The fit sample with the lowest validation loss (after its short fine-tuning) within budget."""
  ok = [i for i, ops in enumerate(fit["ops"])
        if table.predict(latency_tables.network_keys(arch, ops)) <= budget + 1e-9]
  if not ok:
    raise solver.InfeasibleBudgetError(
        f"none of the {len(fit['ops'])} fit samples is within {budget:.4f} ms")
  i = min(ok, key=lambda i: fit["val_loss"][i])
  return tuple(fit["ops"][i]), solver.Solution(np.zeros(0, int), -float(fit["val_loss"][i]),
                                               float("nan"), 0.0, f"BEST_OF_{len(ok)}")


def width_kd(ft, arch_w, params, teacher, data, rng) -> dict:
  """Trains a width-scaled network on with distillation from the teacher, the students' recipe.

  Args:
    ft: the fine-tuning config (steps, batch_size, learning_rate, alpha, temperature).
    arch_w: the width-scaled architecture (its own teacher ops); params: its trained weights.
    teacher: the `acc_lib.Teacher` (another architecture).
    data: {"x_train", "y_train", ...}; rng: PRNG key (folded as the students' fine-tuning is).

  Returns:
    The new params of `arch_w`: uniform scaling given the students' extra training budget.
  """
  params, _ = training.train(arch_w, arch_w.teacher_ops, params, data["x_train"], data["y_train"],
                             ft.steps, ft.batch_size, ft.learning_rate, jax.random.fold_in(rng, 3),
                             teacher=(teacher.arch, teacher.arch.teacher_ops, teacher.params),
                             alpha=ft.alpha, temperature=ft.temperature)
  return params


def _finetune(config, teacher, cands, ops, data, rng) -> dict:
  from metanas.hant import distill  # pylint: disable=g-import-not-at-top
  arch = teacher.arch
  params = distill.student_params(cands.bank, ops, teacher.params)
  before = training.evaluate(arch, ops, params, data["x_test"], data["y_test"])["acc"]
  params = training.kd_finetune(arch, ops, params, teacher.params, data["x_train"],
                                data["y_train"], config.finetune, jax.random.fold_in(rng, 3))
  after = training.evaluate(arch, ops, params, data["x_test"], data["y_test"])["acc"]
  return {"acc_before": before, "test_acc": after}


def _plots(workdir, sweep, fits, results, devices):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  styles = {"ip": ("o-", "integer program"), "greedy": ("s--", "greedy"),
            "random": ("^:", "best of 20 random"), "width": ("D-.", "width-scaled teacher"),
            "ip_fit": ("o-", "integer program, fitted scores"),
            "greedy_fit": ("s--", "greedy, fitted scores"),
            "random_fit": ("^:", "best of 20 random, fitted scores"),
            "best_sample": ("v-.", "best fit sample"),
            "ip_rf": ("P-", "integer program, receptive-field floor"),
            "random_rf": ("x:", "best of 20 random, receptive-field floor")}
  for dev in devices:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m, (st, label) in styles.items():
      rows = sorted([r for r in sweep if r["device"] == dev and r["method"] == m
                     and "measured_ms" in r], key=lambda r: r["measured_ms"])
      if rows:
        ax.plot([r["measured_ms"] for r in rows], [100 * r["test_acc"] for r in rows], st,
                label=label)
    t_ms = results.get(f"{dev}/teacher_measured_ms")
    if t_ms:
      ax.plot([t_ms], [100 * results["teacher_test_acc"]], "k*", ms=12, label="teacher")
    ax.set_xlabel(f"measured latency on {dev} (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, f"acc_vs_latency_{dev}.png"), dpi=120)
    plt.close(fig)
    pts = np.array(fits[dev]["points"])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(pts[:, 0], pts[:, 1], "o")
    lim = [0, 1.05 * pts.max()]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set_xlabel("predicted (sum of table) ms")
    ax.set_ylabel("measured ms")
    ax.set_title(f"{dev}: MAPE {100 * fits[dev]['mape']:.1f}%")
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, f"additive_model_{dev}.png"), dpi=120)
    plt.close(fig)
