"""H-Meta-NAS: supernet masking vs plain networks, latency tables, GA, adaptation API."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metanas.hardware import latency
from metanas.meta import maml
from metanas.nas import genetic
from metanas.nas import hmetanas
from metanas.nas import hmetanas_latency
from metanas.nas import hmetanas_train
from metanas.nas import search_space as ss
from metanas.nas import supernet

# Tiny space: 8x8 images, up to 3 blocks of <= 8 channels.
SPACE = ss.SearchSpace(max_depth=3, depth_choices=(1, 2, 3), kernel_choices=(3, 5),
                       width_ratios=(0.5, 1.0), global_multipliers=(0.5, 1.0), base_width=8,
                       in_channels=2, image_size=8, num_classes=3)


@pytest.fixture(scope="module")
def params():
  return supernet.init(SPACE, jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def x():
  return jnp.asarray(np.random.default_rng(0).normal(size=(5, 8, 8, 2)), jnp.float32)


def test_search_space_encoding():
  table = SPACE.channel_table()
  np.testing.assert_array_equal(table, [[2, 4], [4, 8]])
  assert SPACE.spatial_sizes() == [8, 4, 2, 1]
  archs = ss.enumerate_all(SPACE)
  # Brute force: per depth d, 2 multipliers x (2 kernels x 2 ratios)^d.
  assert len(archs) == sum(2 * 4 ** d for d in (1, 2, 3))
  big = ss.largest(SPACE)
  assert ss.layers(SPACE, big) == [(5, 2, 8, 8), (5, 8, 8, 4), (5, 8, 8, 2)]
  assert ss.macs(SPACE, big) == 4 * 4 * 25 * 2 * 8 + 2 * 2 * 25 * 64 + 1 * 25 * 64 + 8 * 3
  assert ss.num_params(SPACE, big) == (25 * 2 * 8 + 24) + 2 * (25 * 64 + 24) + 8 * 3 + 3
  small = ss.smallest(SPACE)
  assert ss.describe(SPACE, small) == "g0.5 d1 [k3c2]"
  # Canonical form: genes of dropped layers do not matter.
  g = big.copy()
  g[1] = 0
  g2 = g.copy()
  g2[-1] = 0
  np.testing.assert_array_equal(ss.canonical(SPACE, g), ss.canonical(SPACE, g2))


def test_full_choice_equals_plain_network(params, x):
  """Largest sub-network (masks all ones) == the plain network on the unsliced weights."""
  arch = supernet.arch_arrays(SPACE, ss.largest(SPACE))
  got = jax.jit(supernet.apply, static_argnums=3)(params, x, arch, "im2col")
  want = jax.jit(supernet.plain_apply, static_argnums=2)(params, x, "lax")
  chex.assert_trees_all_close(got, want, atol=1e-5)
  chex.assert_shape(got, (5, 3))


def test_masked_subnetworks_match_sliced_ones_one_compile(params, x):
  """Every sampled sub-network, run through ONE compiled masked supernet, equals the explicitly
  sliced plain network (centre-cropped kernels, sliced channels, fewer blocks)."""
  fn = jax.jit(chex.assert_max_traces(
      lambda p, x, a: supernet.apply(p, x, a, conv_impl="im2col"), n=1))
  for genes in ss.random_genes(SPACE, np.random.default_rng(1), 12):
    got = fn(params, x, supernet.arch_arrays(SPACE, genes))
    want = supernet.plain_apply(supernet.slice_params(params, SPACE, genes), x, conv_impl="lax")
    chex.assert_trees_all_close(got, want, atol=1e-5)


def test_per_depth_heads_match_sliced_networks(x):
  """With one head per depth, each sub-network reads only the head of its own depth: masked ==
  sliced (with that head), and perturbing the other depths' heads leaves its logits unchanged."""
  p = supernet.init(SPACE, jax.random.PRNGKey(3), head_per_depth=True)
  chex.assert_shape(p["head"]["w"], (SPACE.max_depth, 8, 3))
  fn = jax.jit(lambda p, x, a: supernet.apply(p, x, a, conv_impl="im2col"))
  for genes in ss.random_genes(SPACE, np.random.default_rng(2), 8):
    arch = supernet.arch_arrays(SPACE, genes)
    got = fn(p, x, arch)
    want = supernet.plain_apply(supernet.slice_params(p, SPACE, genes), x, conv_impl="lax")
    chex.assert_trees_all_close(got, want, atol=1e-5)
    depth = int(arch["depth"])
    others = np.arange(SPACE.max_depth) != depth - 1
    bumped = jax.tree.map(lambda v: v, p)
    bumped["head"] = {k: v + 3.0 * others.reshape((-1,) + (1,) * (v.ndim - 1))
                      for k, v in p["head"].items()}
    chex.assert_trees_all_close(fn(bumped, x, arch), got, atol=1e-6)


def test_masked_gradients_are_the_sliced_network_gradients(params, x):
  """Gradients of the masked supernet are zero outside the sub-network and equal the plain
  network's gradients inside it (so MAML updates only the sub-network's slice)."""
  genes = np.array([0, 1, 0, 1, 0, 1, 0, 0], np.int32)  # g0.5, depth 2, k3/k5, r1/r.5.
  genes = ss.canonical(SPACE, genes)
  y = jnp.array([0, 1, 2, 0, 1])
  loss = maml.cross_entropy_loss(
      lambda p, x: supernet.apply(p, x, supernet.arch_arrays(SPACE, genes)))
  g_super = jax.jit(jax.grad(lambda p: loss(p, x, y)[0]))(params)
  plain_loss = maml.cross_entropy_loss(lambda p, x: supernet.plain_apply(p, x, "lax"))
  sliced = supernet.slice_params(params, SPACE, genes)
  g_plain = jax.jit(jax.grad(lambda p: plain_loss(p, x, y)[0]))(sliced)
  chex.assert_trees_all_close(supernet.slice_params(g_super, SPACE, genes), g_plain, atol=1e-5)
  total = sum(float(jnp.sum(jnp.abs(l))) for l in jax.tree.leaves(g_super))
  inside = sum(float(jnp.sum(jnp.abs(l)))
               for l in jax.tree.leaves(supernet.slice_params(g_super, SPACE, genes)))
  np.testing.assert_allclose(total, inside, rtol=1e-5)
  assert np.all(np.asarray(g_super["blocks"][2]["kernel"]) == 0)  # Dropped block.


def _tasks(rng, num_tasks, n_support=3, n_query=6):
  return {"support_x": rng.normal(size=(num_tasks, n_support, 8, 8, 2)).astype(np.float32),
          "support_y": rng.integers(0, 3, (num_tasks, n_support)).astype(np.int32),
          "query_x": rng.normal(size=(num_tasks, n_query, 8, 8, 2)).astype(np.float32),
          "query_y": rng.integers(0, 3, (num_tasks, n_query)).astype(np.int32)}


@pytest.fixture(scope="module")
def single_task_fn():
  """One jitted (meta_params, task, arch) -> (loss, metrics) for the loop references."""
  return jax.jit(lambda mp, t, a: maml.task_loss(mp, t, hmetanas.sub_loss_fn(a, "im2col"), 1,
                                                 first_order=True))


def test_meta_loss_per_task_archs_matches_python_loop(params, single_task_fn):
  """vmapped meta-loss with one architecture per task == mean over a loop of single-task losses."""
  rng = np.random.default_rng(2)
  tasks = _tasks(rng, 3)
  genes = ss.random_genes(SPACE, rng, 3)
  batch = dict(tasks, **ss.decode(SPACE, genes))
  settings = hmetanas.MamlSettings(num_inner_steps=1, inner_lr=0.3, first_order=True)
  mp = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.3)}
  got, _ = jax.jit(hmetanas.meta_loss, static_argnums=(2, 3))(mp, batch, settings, "im2col")
  want = [single_task_fn(mp, {k: v[t] for k, v in tasks.items()},
                         supernet.arch_arrays(SPACE, genes[t]))[0] for t in range(3)]
  np.testing.assert_allclose(float(got), float(np.mean(want)), rtol=1e-4)


def test_inplace_distillation_loss(params, single_task_fn):
  """In-place distillation: the largest sub-network distilling into itself has KL 0, so its loss
  is (1 - w) x its plain MAML loss; a smaller sub-network pays a positive KL."""
  rng = np.random.default_rng(4)
  tasks = _tasks(rng, 2)
  big, small = ss.largest(SPACE), ss.smallest(SPACE)
  teacher = supernet.arch_arrays(SPACE, big)
  settings = hmetanas.MamlSettings(num_inner_steps=1, inner_lr=0.3, first_order=True)
  mp = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.3)}
  fn = jax.jit(hmetanas.meta_loss, static_argnums=(2, 3, 5))
  batch = dict(tasks, **ss.decode(SPACE, np.stack([big, big])))
  got, m = fn(mp, batch, settings, "im2col", teacher, 0.25)
  plain, _ = fn(mp, batch, settings, "im2col", None, 0.0)
  np.testing.assert_allclose(float(m["distill_kl"]), 0.0, atol=1e-6)
  np.testing.assert_allclose(float(got), 0.75 * float(plain), rtol=1e-5)
  batch = dict(tasks, **ss.decode(SPACE, np.stack([small, small])))
  got, m = fn(mp, batch, settings, "im2col", teacher, 0.25)
  plain, _ = fn(mp, batch, settings, "im2col", None, 0.0)
  assert float(m["distill_kl"]) > 1e-3
  np.testing.assert_allclose(float(got), 0.75 * float(plain) + 0.25 * float(m["distill_kl"]),
                             rtol=1e-5)
  jax.grad(lambda p: fn(dict(mp, model=p), batch, settings, "im2col", teacher, 0.25)[0])(params)


def test_population_accuracy_matches_per_arch_loop(params, single_task_fn):
  rng = np.random.default_rng(3)
  tasks = _tasks(rng, 3)
  genes = ss.random_genes(SPACE, rng, 3)
  mp = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.3)}
  acc = hmetanas.evaluate_genes(mp, SPACE, genes, tasks, 1, arch_chunk=2, task_chunk=2)
  chex.assert_shape(acc, (3, 3))
  for i, g in enumerate(genes):
    for t in range(3):
      want = single_task_fn(mp, {k: v[t] for k, v in tasks.items()},
                            supernet.arch_arrays(SPACE, g))[1]["accuracy"]
      np.testing.assert_allclose(acc[i, t], want, atol=1e-6)


def test_sandwich_rule():
  g = hmetanas_train.sample_archs(SPACE, np.random.default_rng(0), 4, sandwich=True)
  np.testing.assert_array_equal(g[0], ss.largest(SPACE))
  np.testing.assert_array_equal(g[1], ss.smallest(SPACE))


def test_progressive_shrinking_stages():
  """Stage by step; each stage varies only its genes (the rest at the largest network's values),
  its sandwich pair is the stage's largest and smallest network; "all" is the plain sampler."""
  stage = lambda step: hmetanas_train.progressive_stage(step, (3, 5, 8))
  assert [stage(s) for s in (0, 2, 3, 4, 5, 7, 8, 100)] == [
      "largest", "largest", "kernel", "kernel", "depth", "depth", "all", "all"]
  assert hmetanas_train.progressive_stage(0, ()) == "all"
  assert hmetanas_train.progressive_stage(4, (2,)) == "all"
  big, L = ss.largest(SPACE), SPACE.max_depth
  rng = lambda: np.random.default_rng(0)
  g = hmetanas_train.sample_archs(SPACE, rng(), 64, sandwich=False, stage="largest")
  np.testing.assert_array_equal(g, np.broadcast_to(big, g.shape))
  for name, free in (("kernel", list(range(2, 2 + L))), ("depth", [1] + list(range(2, 2 + L)))):
    g = hmetanas_train.sample_archs(SPACE, rng(), 64, sandwich=True, stage=name)
    fixed = np.setdiff1d(np.arange(SPACE.num_genes), free)
    live = g[2:]  # Rows 0 and 1 are the sandwich pair.
    dropped = np.arange(L) >= np.asarray(SPACE.depth_choices)[live[:, 1]][:, None]
    for col in fixed:
      if col >= 2 + L:  # Width genes of dropped layers are zeroed by `canonical`.
        want = np.where(dropped[:, col - 2 - L], 0, big[col])
      else:
        want = np.full(len(live), big[col])
      np.testing.assert_array_equal(live[:, col], want)
    assert all(len(np.unique(live[:, c])) > 1 for c in free)  # 62 draws vary every free gene.
    np.testing.assert_array_equal(g[0], big)
    want_small = ss.canonical(SPACE, np.where(np.isin(np.arange(SPACE.num_genes), free),
                                              ss.smallest(SPACE), big))
    np.testing.assert_array_equal(g[1], want_small)
  plain = ss.random_genes(SPACE, rng(), 8)  # The sampler without progressive shrinking.
  plain[0], plain[1] = big, ss.smallest(SPACE)
  np.testing.assert_array_equal(hmetanas_train.sample_archs(SPACE, rng(), 8, sandwich=True), plain)
  with pytest.raises(ValueError, match="progressive stage"):
    hmetanas_train.sample_archs(SPACE, rng(), 2, sandwich=False, stage="width")


def test_latency_table_round_trip_and_analytic_model(tmp_path):
  device = latency.get_device("iot")
  table = hmetanas_latency.analytic_table(SPACE, device)
  assert set(table.entries) == {s["key"] for s in ss.all_layer_specs(SPACE)} | {"dispatch"}
  path = str(tmp_path / "t.json")
  table.save(path)
  back = latency.LatencyTable.load(path)
  assert back.device == device and back.entries == table.entries
  big, small = ss.largest(SPACE), ss.smallest(SPACE)
  # Compute-bound iot: the prediction is the sum of per-layer roofline times.
  keys = ss.cost_keys(SPACE, big)
  want = 0.0
  for k, ci, co, size in ss.layers(SPACE, big):
    f, b = latency.conv2d_cost(1, size, size, ci, co, k, stride=2)
    b += 2 * 4 * (-(-size // 2)) ** 2 * co
    want += latency.analytic_latency_ms(f, b, device)
  f, b = latency.dense_cost(1, 8, 3)
  want += latency.analytic_latency_ms(f, b + 4 * 1 * 8, device)
  np.testing.assert_allclose(back.predict(keys), want, rtol=1e-9)
  assert hmetanas_latency.predict(back, SPACE, big) > hmetanas_latency.predict(back, SPACE, small)


def test_measured_table():
  """Real measurement in a worker process on a 1-layer space (whole-network validation runs in
  the experiment, experiments/hmetanas.md)."""
  space = ss.SearchSpace(max_depth=1, depth_choices=(1,), kernel_choices=(3, 5),
                         width_ratios=(1.0,), global_multipliers=(1.0,), base_width=4,
                         in_channels=1, image_size=8, num_classes=2)
  device = latency.get_device("cpu_1t_b1")
  table = hmetanas_latency.measured_table(space, device, repeats=3)
  assert table.metadata["source"].startswith("measured") and table.entries["dispatch"] > 0
  assert set(table.entries) == {s["key"] for s in ss.all_layer_specs(space)} | {"dispatch"}
  assert all(v >= 0 for v in table.entries.values())


def _toy_problem(seed):
  """Fitness with an interior optimum and an analytic latency cost on SPACE."""
  w = np.random.default_rng(seed).normal(size=SPACE.num_genes)
  fitness = lambda genes: np.array([float(np.sin(g @ w) + 0.01 * ss.macs(SPACE, g) ** 0.5)
                                    for g in np.atleast_2d(genes)])
  table = hmetanas_latency.analytic_table(SPACE, latency.get_device("iot"))
  cost = lambda g: hmetanas_latency.predict(table, SPACE, g)
  return fitness, cost


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ga_finds_brute_force_optimum_and_stays_feasible(seed):
  fitness, cost = _toy_problem(seed)
  archs = ss.enumerate_all(SPACE)
  costs = np.array([cost(g) for g in archs])
  budget = float(np.quantile(costs, 0.4))
  feasible = archs[costs <= budget]
  best = float(fitness(feasible).max())
  res = genetic.evolve(SPACE, fitness, cost, budget, np.random.default_rng(seed),
                       genetic.GAConfig(pop_size=16, generations=25, mutation_prob=0.2))
  assert cost(res.genes) <= budget
  assert all(cost(np.array(g)) <= budget for g in res.evaluated)  # Never scores infeasible ones.
  np.testing.assert_allclose(res.fitness, best)
  assert res.history == sorted(res.history)  # Elitist: best fitness never decreases.


def test_ga_respects_restrictions():
  fitness, cost = _toy_problem(0)
  allowed = genetic.restrict(SPACE, global_multipliers=(1.0,), depth_choices=(3,))
  res = genetic.evolve(SPACE, fitness, cost, 1e9, np.random.default_rng(0),
                       genetic.GAConfig(pop_size=6, generations=3), allowed)
  for g in res.evaluated:
    assert SPACE.global_multipliers[g[0]] == 1.0 and SPACE.depth_choices[g[1]] == 3
  rs = genetic.random_search(SPACE, fitness, cost, 1e9, np.random.default_rng(0), 10, allowed)
  assert rs.num_evaluations == 10


def test_adapt_architecture_api(params):
  tables = {"iot": hmetanas_latency.analytic_table(SPACE, latency.get_device("iot"))}
  mp = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, 0.3)}
  sn = hmetanas.Supernet(mp, SPACE, tables, hmetanas.MamlSettings(1, 0.3))
  rng = np.random.default_rng(4)
  val, test = _tasks(rng, 4), _tasks(rng, 4)
  floor = hmetanas_latency.predict(tables["iot"], SPACE, ss.smallest(SPACE))
  with pytest.raises(ValueError, match=f"smallest achievable value in this search space is "
                                       f"{floor:.4g}"):
    hmetanas.adapt_architecture(sn, "iot", 0.5 * floor, val, rng)
  with pytest.raises(ValueError, match="No latency table for device 'gpu_like'"):
    hmetanas.adapt_architecture(sn, "gpu_like", 1.0, val, rng)
  with pytest.raises(ValueError, match="Unknown device"):
    hmetanas.adapt_architecture(sn, "toaster", 1.0, val, rng)
  budget = 2 * floor
  out = hmetanas.adapt_architecture(sn, "iot", budget, val, rng, test_tasks=test,
                                    ga=genetic.GAConfig(pop_size=4, generations=2))
  assert out["latency_ms"] <= budget
  assert 0.0 <= out["test_accuracy"] <= 1.0 and 0.0 <= out["val_accuracy"] <= 1.0
  assert out["macs"] == ss.macs(SPACE, np.array(out["genes"]))


def test_optimizer_schedule_spans_the_given_steps():
  """Supernet and baselines use the MAML experiment's optimiser: a cosine rate reaches zero at
  the step budget handed to it (baselines may have their own budget)."""
  from ml_collections import config_dict  # pylint: disable=g-import-not-at-top
  cfg = config_dict.ConfigDict({"optim": {"learning_rate": 1.0, "grad_clip": 0.0,
                                          "schedule": "cosine"}})
  params = {"w": jnp.zeros(3)}
  grads = {"w": jnp.ones(3)}
  for steps in (4, 10):
    tx = hmetanas_train._optimizer(cfg, steps)  # pylint: disable=protected-access
    state = tx.init(params)
    sizes = []
    for _ in range(steps + 1):
      updates, state = tx.update(grads, state, params)
      sizes.append(float(jnp.abs(updates["w"]).max()))
    assert sizes[0] == pytest.approx(1.0, rel=1e-3)  # Adam's first step has size lr.
    assert sizes[steps // 2] < 0.9 and sizes[steps] == pytest.approx(0.0, abs=1e-6)
  cfg.optim.schedule = "constant"
  tx = hmetanas_train._optimizer(cfg, 4)  # pylint: disable=protected-access
  state = tx.init(params)
  for _ in range(5):
    updates, state = tx.update(grads, state, params)
  assert float(jnp.abs(updates["w"]).max()) == pytest.approx(1.0, rel=1e-3)


def test_finetuning_starts_from_the_inherited_subnetwork(params, x):
  """`baseline_task(init_params=slice_params(...))` starts exactly where the supernet's
  sub-network is: same weights, same logits as the masked supernet; without init_params the
  weights are fresh."""
  from ml_collections import config_dict  # pylint: disable=g-import-not-at-top
  cfg = config_dict.ConfigDict({
      "maml": {"num_inner_steps": 1, "inner_lr": 0.4, "first_order": True,
               "learn_inner_lr": False, "meta_batch_size": 2},
      "optim": {"learning_rate": 1e-3, "grad_clip": 0.0, "schedule": "cosine"},
      "model": {"conv_impl": "im2col"}, "train": {"num_steps": 4, "seed": 0},
      "supernet": {}})
  genes = ss.random_genes(SPACE, np.random.default_rng(5), 1)[0]
  sliced = supernet.slice_params(params, SPACE, genes)
  task = hmetanas_train.baseline_task(cfg, SPACE, genes, None, None, init_params=sliced)
  got = task.init(jax.random.PRNGKey(1)).meta_params["model"]
  chex.assert_trees_all_equal(got, sliced)
  want = supernet.apply(params, x, supernet.arch_arrays(SPACE, genes), "im2col")
  chex.assert_trees_all_close(supernet.plain_apply(got, x, "im2col"), want, atol=1e-5)
  fresh = hmetanas_train.baseline_task(cfg, SPACE, genes, None, None).init(jax.random.PRNGKey(1))
  assert not np.allclose(fresh.meta_params["model"]["blocks"][0]["kernel"],
                         sliced["blocks"][0]["kernel"])


def test_finetune_finished_run(tmp_path, data_dir):
  """`finetune_workdir` on a finished :smoke run: fine-tuned and from-scratch accuracies of the
  searched sub-networks, the latency/MAC rows unchanged, one file per (kind, steps)."""
  del data_dir  # The fixture checks METANAS_DATA_DIR.
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from metanas import config_lib  # pylint: disable=g-import-not-at-top
  from metanas.nas import hmetanas_experiment  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = config_lib.load_config(os.path.join(root, "configs", "hmetanas_omniglot.py:smoke"))
  config.finetune_steps = 0
  run = hmetanas_experiment.run(config, str(tmp_path))
  assert "finetuned_accuracy" not in run["adaptation"]["iot"][0]
  out = hmetanas_experiment.finetune_workdir(config, str(tmp_path), 2)
  rows = out["adaptation"]["iot"] + [r for r in out["mac_budgets"] if "genes" in r]
  assert rows and all(0.0 <= r["finetuned_accuracy"] <= 1.0 for r in rows)
  assert all(r["finetune_steps"] == 2 for r in rows)
  assert out["summary_finetuned"]["iot"]["all_on_or_above"] in (True, False)
  scratch = hmetanas_experiment.finetune_workdir(config, str(tmp_path), 2, inherit=False,
                                                 devices=("iot",))
  assert "scratch_accuracy" in scratch["adaptation"]["iot"][0]
  assert all("scratch_accuracy" not in r for r in scratch["mac_budgets"])
  with open(tmp_path / "results_finetuned_2.json") as f:
    saved = json.load(f)
  assert saved["adaptation"]["iot"][0]["macs"] == run["adaptation"]["iot"][0]["macs"]
  assert (tmp_path / "results_scratch_2.json").exists()
  assert (tmp_path / "finetune_2").is_dir() and (tmp_path / "scratch_2").is_dir()
  # A second supernet (progressive shrinking) against the first run's trained baselines.
  config.baselines_from = str(tmp_path / "results.json")
  config.supernet.progressive_steps = (1,)
  again = hmetanas_experiment.run(config, str(tmp_path / "reuse"))
  for name, b in again["baselines"].items():
    first = run["baselines"][name]
    assert b["accuracy"] == first["accuracy"] and b["reused_from"] == config.baselines_from
    assert 0.0 <= b["supernet_accuracy"] <= 1.0
  assert not (tmp_path / "reuse" / "baseline_0").exists()
  config.baseline_steps = 7
  with pytest.raises(ValueError, match="steps"):
    hmetanas_experiment.run(config, str(tmp_path / "reuse7"))
  config.supernet.progressive_steps = (2, 1)
  with pytest.raises(ValueError, match="progressive_steps"):
    hmetanas_experiment.run(config, str(tmp_path / "bad"))


def test_pareto_summary_margins_and_mac_reduction():
  """Margins against the manual front at each point's latency and at its budget; MAC reduction
  only counts points with fewer MACs than the baseline; `accuracy_key` switches the accuracy."""
  from metanas.nas import hmetanas_plots  # pylint: disable=g-import-not-at-top
  base = {"small": {"latency_ms": {"d": 1.0}, "accuracy": 0.80, "macs": 100},
          "big": {"latency_ms": {"d": 2.0}, "accuracy": 0.90, "macs": 400}}
  rows = [{"latency_ms": 0.9, "budget": 1.0, "test_accuracy": 0.82, "ft": 0.85, "macs": 50},
          {"latency_ms": 1.5, "budget": 2.0, "test_accuracy": 0.85, "ft": 0.95, "macs": 300}]
  res = {"baselines": base, "adaptation": {"d": rows}, "mac_budgets": []}
  s = hmetanas_plots.pareto_summary(res)
  assert s["d"]["margins_vs_manual_front"][0] is None  # No manual network is that fast.
  np.testing.assert_allclose(s["d"]["margins_vs_manual_front"][1], 0.05)   # vs small at 1.0 ms
  np.testing.assert_allclose(s["d"]["margins_at_budget"], [0.02, -0.05])
  assert s["d"]["all_on_or_above"]
  assert s["mac_reduction_at_baseline_accuracy"] == {"small": 0.5, "big": None}
  f = hmetanas_plots.pareto_summary(res, "ft")
  np.testing.assert_allclose(f["d"]["margins_at_budget"], [0.05, 0.05])
  np.testing.assert_allclose(f["mac_reduction_at_baseline_accuracy"]["big"], 0.25)
  # A more accurate point with MORE MACs than the baseline is no reduction.
  rows[0]["macs"] = 150
  rows[0]["test_accuracy"] = 0.80
  assert hmetanas_plots.pareto_summary(res)["mac_reduction_at_baseline_accuracy"]["small"] is None
