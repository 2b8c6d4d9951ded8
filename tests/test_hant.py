"""HANT: candidate ops, layer-wise distillation, the integer program, latency tables, accelerate()."""

import itertools
import json
import os
import pickle

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from ml_collections import config_dict

from metanas.hant import accelerate as acc_lib
from metanas.hant import distill
from metanas.hant import latency_tables
from metanas.hant import network
from metanas.hant import ops as ops_lib
from metanas.hant import solver
from metanas.hant import training
from metanas.hardware import latency as hw

NAMES = ("conv_k3", "conv_k1", "dws_k3_d1", "skip")


def test_registry_is_large_and_shapes_match():
  assert len(ops_lib.REGISTRY) >= 50
  x = jnp.ones((2, 6, 6, 8))
  for name in ops_lib.REGISTRY:
    for c_out, stride in ((8, 1), (16, 2)):
      op = ops_lib.make_op(name, 8, c_out, stride)
      if op is None:
        assert name == "skip" and stride == 2
        continue
      y = jax.eval_shape(lambda x, op=op: ops_lib.apply(op, ops_lib.init(op, jax.random.key(0)),
                                                        x), x)
      assert y.shape == (2, 6 // stride, 6 // stride, c_out), name
  with pytest.raises(ValueError, match="Unknown candidate op"):
    ops_lib.make_op("conv_k99", 8, 8, 1)


@pytest.mark.parametrize("groups,dilation,stride,c_out", [(1, 1, 2, 6), (2, 1, 1, 6), (4, 2, 1, 8),
                                                          (4, 1, 2, 8), (4, 1, 1, 12)])
def test_taps_conv_matches_lax(groups, dilation, stride, c_out):
  """Grouped / depthwise (groups == c_in) / dilated convs: the CPU lowering equals XLA's conv."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 7, 7, 4)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(3, 3, 4 // groups, c_out)), jnp.float32)
  ref = lax.conv_general_dilated(x, k, (stride, stride), "SAME", rhs_dilation=(dilation,) * 2,
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                 feature_group_count=groups)
  got = ops_lib._group_conv(x, k, stride, groups, dilation, "taps")  # pylint: disable=protected-access
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_cost_counts_macs_of_a_plain_conv():
  op = ops_lib.make_op("conv_k3", 8, 16, 2)
  c = ops_lib.cost(op, 10, 10)
  assert c["flops"] == 2 * 5 * 5 * 16 * 8 * 9 and c["params"] == 9 * 8 * 16 + 16


def _brute(scores, lats, budget):
  best = max((sum(s[c] for s, c in zip(scores, ch)), ch)
             for ch in itertools.product(*[range(len(s)) for s in scores])
             if sum(t[c] for t, c in zip(lats, ch)) <= budget)
  return best


def test_ip_matches_brute_force_on_random_5x4_instances():
  rng = np.random.default_rng(1)
  for _ in range(10):
    scores, lats = solver.random_instance(5, 4, rng)
    lo, hi = sum(t.min() for t in lats), sum(t.max() for t in lats)
    budget = rng.uniform(lo, hi)
    sol = solver.solve(scores, lats, budget, latency_resolution_ms=1e-7)
    best_score, best_choice = _brute(scores, lats, budget)
    assert sol.status == "OPTIMAL"
    np.testing.assert_allclose(sol.score, best_score, rtol=1e-6)
    np.testing.assert_array_equal(sol.choice, best_choice)
    assert sol.latency <= budget + 1e-6
    bf = solver.brute_force(scores, lats, budget)
    np.testing.assert_allclose(bf.score, best_score)
    # Baselines are feasible and never beat the optimum.
    g = solver.greedy(scores, lats, budget)
    assert g.latency <= budget + 1e-9 and g.score <= sol.score + 1e-9
    for r in solver.random_feasible(scores, lats, budget, 5, rng):
      assert r.latency <= budget + 1e-9 and r.score <= sol.score + 1e-9


def test_ip_with_params_budget_matches_brute_force():
  rng = np.random.default_rng(2)
  scores, lats = solver.random_instance(4, 4, rng)
  params = [rng.uniform(1, 10, 4) for _ in range(4)]
  budget, p_budget = 0.6 * sum(t.max() for t in lats), 0.6 * sum(p.max() for p in params)
  sol = solver.solve(scores, lats, budget, extra=[(params, p_budget)], latency_resolution_ms=1e-7)
  best = max(sum(s[c] for s, c in zip(scores, ch))
             for ch in itertools.product(range(4), repeat=4)
             if sum(t[c] for t, c in zip(lats, ch)) <= budget
             and sum(p[c] for p, c in zip(params, ch)) <= p_budget)
  np.testing.assert_allclose(sol.score, best, rtol=1e-6)


def test_infeasible_budget_names_fastest_latency():
  scores, lats = [np.zeros(2), np.zeros(2)], [np.array([1.0, 2.0]), np.array([0.5, 3.0])]
  with pytest.raises(ValueError, match=r"fastest achievable .* 1\.5000 ms"):
    solver.solve(scores, lats, 1.2)


def test_solver_50x197_in_seconds():
  scores, lats = solver.random_instance(50, 197, np.random.default_rng(3))
  budget = 0.5 * (sum(t.min() for t in lats) + sum(t.max() for t in lats))
  sol = solver.solve(scores, lats, budget, time_limit_s=20.0)
  assert sol.solve_time_s < 20.0 and sol.latency <= budget + 50e-3
  assert sol.score >= solver.greedy(scores, lats, budget).score - 1e-6


def test_latency_table_save_load(tmp_path):
  table = hw.LatencyTable(hw.get_device("cpu_1t_b1"), {"stem_head": 0.1, "conv_k3@a": 0.25},
                          {"overhead_ms": 0.01})
  table.save(str(tmp_path / "t.json"))
  back = hw.LatencyTable.load(str(tmp_path / "t.json"))
  assert back.entries == table.entries and back.device == table.device
  assert back.predict(["stem_head", "conv_k3@a"]) == pytest.approx(0.35)
  with pytest.raises(KeyError, match="not in the latency table"):
    back.predict(["nope"])


# ----- A tiny teacher, shared by the distillation / accelerate tests ------------------------------

@pytest.fixture(scope="module")
def tiny():
  arch = network.cnn_arch(widths=(4, 8), depths=(3, 2), image_hw=8)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(96, 8, 8, 1)).astype(np.float32)
  y = rng.integers(0, 10, 96).astype(np.int32)
  params = network.init(arch, arch.teacher_ops, jax.random.key(0))
  teacher = acc_lib.Teacher(arch, params)
  data = {"x_train": x[:64], "y_train": y[:64], "x_val": x[64:], "y_val": y[64:],
          "x_test": x[64:], "y_test": y[64:]}
  cfg = config_dict.ConfigDict(dict(num_images=64, num_val=32, steps=40, batch_size=32,
                                    learning_rate=1e-2))
  acts = distill.layer_io(arch, params, x[:64])
  bank0 = distill.init_bank(arch, NAMES, params, jax.random.key(1))
  cands = acc_lib.prepare_candidates(teacher, data, NAMES, cfg, jax.random.key(2))
  return dict(arch=arch, teacher=teacher, data=data, acts=acts, bank0=bank0, cands=cands)


def test_layered_network_runs_teacher_ops(tiny):
  arch, params = tiny["arch"], tiny["teacher"].params
  assert len(arch.layers) == 4
  logits = network.apply(arch, arch.teacher_ops, params, jnp.asarray(tiny["data"]["x_val"]))
  chex_shape = logits.shape
  assert chex_shape == (32, 10)
  acts = network.activations(arch, arch.teacher_ops, params, jnp.asarray(tiny["data"]["x_val"]))
  np.testing.assert_allclose(network.head_apply(arch, params, acts[-1]), logits, rtol=1e-5,
                             atol=1e-5)


def test_distillation_reduces_mse_and_teacher_op_is_exact(tiny):
  arch, acts = tiny["arch"], tiny["acts"]
  for g0, g1 in zip(tiny["bank0"], tiny["cands"].bank):
    x = np.stack([acts[i] for i in g0.layers])
    y = np.stack([acts[i + 1] for i in g0.layers])
    before, after = distill.group_mse(g0, x, y), distill.group_mse(g1, x, y)
    for c, op in enumerate(g0.ops):
      if op.name == "conv_k3":  # The teacher's own op starts (and stays) at the teacher's weights.
        np.testing.assert_allclose(after[c], 0.0, atol=1e-10)
      elif op.name != "skip":   # No parameters to train. (A 1x1 conv barely improves on a random
        # 3x3 teacher of noise images, so only a strict decrease is required.)
        assert np.all(after[c] < before[c]), (op.name, before[c], after[c])
  del arch


def test_vmapped_group_equals_per_layer_loop(tiny):
  group = max(tiny["cands"].bank, key=lambda g: len(g.layers))
  assert len(group.layers) >= 2
  acts = tiny["acts"]
  x = jnp.asarray(np.stack([acts[i] for i in group.layers]))
  outs = distill._group_outputs(group.ops, group.params, x, "lax")  # pylint: disable=protected-access
  for c, op in enumerate(group.ops):
    for j in range(len(group.layers)):
      p = jax.tree.map(lambda a, j=j: a[j], group.params[c])
      np.testing.assert_allclose(outs[c][j], ops_lib.apply(op, p, x[j]), rtol=1e-5, atol=1e-5)


def _table(arch, cands):
  """A synthetic table: latency proportional to FLOPs (exercises accelerate without timing)."""
  entries = {"stem_head": 0.05}
  for names, layer in zip(cands.scores["names"], arch.layers):
    for n in names:
      op = ops_lib.make_op(n, layer.c_in, layer.c_out, layer.stride)
      entries[latency_tables.layer_key(n, layer)] = 0.01 + ops_lib.cost(op, layer.h, layer.w)[
          "flops"] * 1e-6
  return hw.LatencyTable(hw.get_device("cpu_1t_b1"), entries)


def test_accelerate_at_teacher_budget_returns_teacher_and_infeasible_errors(tiny):
  """A trained teacher's own op is the best-scoring candidate of each layer (swapping it raises the
  val loss); the tiny teacher here is untrained, so its scores are set to make that hold."""
  arch, cands = tiny["arch"], tiny["cands"]
  sc = dict(cands.scores)
  sc["loss"] = [np.where(np.array(n) == "conv_k3", sc["teacher_loss"],
                         np.maximum(l, sc["teacher_loss"] + 1e-3)) for n, l in zip(sc["names"],
                                                                                   sc["loss"])]
  cands = acc_lib.Candidates(cands.bank, sc, cands.history)
  table = _table(arch, cands)
  t_ms = table.predict(latency_tables.network_keys(arch, arch.teacher_ops))
  ft = config_dict.ConfigDict(dict(steps=0, batch_size=16, learning_rate=1e-3, alpha=0.5,
                                   temperature=1.0))
  out = acc_lib.accelerate(tiny["teacher"], tiny["data"], table, t_ms, cands, ft,
                           jax.random.key(0), measure=False)
  assert out["ops"] == arch.teacher_ops
  assert out["predicted_ms"] == pytest.approx(t_ms)
  assert out["receptive_field"] == network.receptive_field(arch, arch.teacher_ops)
  fastest = acc_lib.fastest_latency(arch, cands, table)
  low = acc_lib.accelerate(tiny["teacher"], tiny["data"], table, 0.5 * (fastest + t_ms), cands, ft,
                           jax.random.key(0), measure=False)
  assert low["predicted_ms"] <= 0.5 * (fastest + t_ms) + 1e-2 and low["ops"] != arch.teacher_ops
  wide = acc_lib.accelerate(tiny["teacher"], tiny["data"], table, 0.5 * (fastest + t_ms), cands,
                            ft, jax.random.key(0), measure=False, min_rf=10**6)
  assert wide["receptive_field"] >= low["receptive_field"]
  with pytest.raises(ValueError, match=f"fastest achievable network takes {fastest:.4f} ms"):
    acc_lib.accelerate(tiny["teacher"], tiny["data"], table, 0.9 * fastest, cands, ft,
                       jax.random.key(0), measure=False)


def test_kd_finetune_skips_the_teacher_and_trains_a_student_like_train(tiny):
  arch, teacher, data = tiny["arch"], tiny["teacher"], tiny["data"]
  ft = config_dict.ConfigDict(dict(steps=3, batch_size=16, learning_rate=1e-2, alpha=0.5,
                                   temperature=2.0))
  same = training.kd_finetune(arch, arch.teacher_ops, teacher.params, teacher.params,
                              data["x_train"], data["y_train"], ft, jax.random.key(0))
  assert same is teacher.params
  ops = ("conv_k1",) + tuple(arch.teacher_ops[1:])
  student = distill.student_params(tiny["cands"].bank, ops, teacher.params)
  assert training.kd_finetune(arch, ops, student, teacher.params, data["x_train"],
                              data["y_train"], ft, jax.random.key(0), steps=0) is student
  got = training.kd_finetune(arch, ops, student, teacher.params, data["x_train"], data["y_train"],
                             ft, jax.random.key(0))
  want, _ = training.train(arch, ops, student, data["x_train"], data["y_train"], 3, 16, 1e-2,
                           jax.random.key(0), teacher=(arch, arch.teacher_ops, teacher.params),
                           alpha=0.5, temperature=2.0)
  chex.assert_trees_all_close(got, want)
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(student)))


def test_scores_of_teacher_op_equal_teacher(tiny):
  sc = tiny["cands"].scores
  for names, loss in zip(sc["names"], sc["loss"]):
    np.testing.assert_allclose(loss[names.index("conv_k3")], sc["teacher_loss"], rtol=1e-5)


def test_measured_table_and_additive_model(tiny):
  """Real timings in a worker process (one layer signature, 2 ops) and a whole-network check."""
  arch = tiny["arch"]
  table = latency_tables.build_table(arch, {0: ["conv_k3", "skip"], 1: ["conv_k3"], 3: ["conv_k3"],
                                            2: ["conv_k3"]}, "cpu_all_b25", repeats=3)
  assert table.metadata["overhead_ms"] > 0
  assert set(table.entries) >= {"stem_head", latency_tables.layer_key("skip", arch.layers[0])}
  fit = latency_tables.additive_fit([1.0, 2.0, 3.0], [1.1, 1.9, 3.3])
  assert 0 < fit["mape"] < 0.1 and fit["pearson_r"] > 0.9
  nets = {"teacher": arch.teacher_ops, "skip0": ("skip",) + tuple(arch.teacher_ops[1:])}
  ms = latency_tables.measure_networks(arch, nets, "cpu_1t_b1", repeats=3, reduce="min", rounds=3)
  assert set(ms) == set(nets) and all(v > 0 for v in ms.values())
  with pytest.raises(ValueError, match="reduce"):
    latency_tables.measure_networks(arch, nets, "cpu_1t_b1", reduce="mean")
  narrow = network.cnn_arch(widths=(2, 4), depths=(3, 2), image_hw=8)  # Two archs, one worker.
  mixed = latency_tables.measure_mixed({"wide": (arch, arch.teacher_ops),
                                        "narrow": (narrow, narrow.teacher_ops)}, "cpu_1t_b1",
                                       repeats=3)
  assert set(mixed) == {"wide", "narrow"} and all(v > 0 for v in mixed.values())


def test_workdir_cache_reuses_recomputes_on_config_change_and_reads_legacy(tmp_path):
  from metanas.hant import experiment  # pylint: disable=g-import-not-at-top
  cfg = config_dict.ConfigDict({"seed": 0, "distill": {"steps": 3}, "budget_fracs": (0.5,)})
  calls, logs = [], []
  compute = lambda: calls.append(1) or {"w": jnp.arange(3.0)}
  path = str(tmp_path / "c.pkl")
  fp = experiment.fingerprint(cfg, ("seed", "distill"))
  info1, info2 = {}, {}
  first = experiment.cached(path, fp, compute, log=logs.append, info=info1)
  again = experiment.cached(path, fp, compute, log=logs.append, info=info2)
  assert len(calls) == 1 and isinstance(first["w"], np.ndarray)   # stored on the host
  # The reuse reports the compute time of the run that made the value, not its own read time.
  assert not info1["reused"] and info2["reused"]
  assert info2["compute_seconds"] == info1["compute_seconds"] >= 0
  np.testing.assert_array_equal(again["w"], [0.0, 1.0, 2.0])
  cfg.budget_fracs = (0.2, 0.9)   # not a key of this artefact: still reused
  assert experiment.fingerprint(cfg, ("seed", "distill")) == fp
  cfg.distill.steps = 4           # a key of it: recomputed and overwritten
  fp2 = experiment.fingerprint(cfg, ("seed", "distill"))
  experiment.cached(path, fp2, compute, log=logs.append)
  assert len(calls) == 2 and "another config" in logs[-1]
  experiment.cached(path, fp2, compute, log=logs.append)
  assert len(calls) == 2
  legacy = str(tmp_path / "legacy.pkl")   # a bare pickle from before fingerprints
  with open(legacy, "wb") as f:
    pickle.dump({"w": np.ones(2)}, f)
  info3 = {}
  np.testing.assert_array_equal(
      experiment.cached(legacy, fp, compute, log=logs.append, info=info3)["w"], 1.0)
  assert len(calls) == 2 and "no config fingerprint" in logs[-1]
  assert info3 == {"reused": True, "compute_seconds": None}


def test_fitted_scores_recover_a_planted_additive_model_and_samples_are_feasible():
  from metanas.hant import fit_scores  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  layers, cands = 6, 5
  teacher_idx = [0] * layers
  single = [np.concatenate([[0.0], rng.uniform(0.0, 1.0, cands - 1)]) for _ in range(layers)]
  # Truth: 2 x the single-swap increase, plus a correction that single swaps do not see (the
  # "receptive-field" candidate 1 hurts far more in combination than alone).
  delta = [np.zeros(cands) for _ in range(layers)]
  for d in delta:
    d[1] = 0.8
  truth = [2.0 * s + d for s, d in zip(single, delta)]
  for t in truth:
    t[0] = 0.0
  choices = [rng.integers(0, cands, layers) for _ in range(300)]
  y = np.array([0.3 + sum(truth[l][c] for l, c in enumerate(ch)) for ch in choices])
  y = y + 0.01 * rng.standard_normal(len(y))
  fit = fit_scores.fit_additive(choices, y, single, teacher_idx)
  for t, inc in zip(truth, fit["increase"]):
    np.testing.assert_allclose(inc, t, atol=0.05)
  assert abs(fit["intercept"] - 0.3) < 0.05
  assert fit["loo_rmse"] < 0.03 < fit["loo_rmse_single"]   # the correction is needed and found
  # Pure single-swap truth: the fit keeps beta * single and the corrections shrink to ~0.
  y2 = np.array([0.3 + 2.0 * sum(single[l][c] for l, c in enumerate(ch)) for ch in choices])
  fit2 = fit_scores.fit_additive(choices, y2 + 0.01 * rng.standard_normal(len(y2)), single,
                                 teacher_idx)
  assert abs(fit2["beta"] - 2.0) < 0.05
  # Samples: spread over both devices, every one within its drawn budget.
  lats = [rng.uniform(0.1, 1.0, cands) for _ in range(layers)]
  for t in lats:
    t[0] = 1.0          # the teacher's op is the slowest
  problems = [(single, lats, 0.5 + layers, 0.5), (single, [2 * t for t in lats], 1 + 2 * layers, 1.0)]
  samples = fit_scores.sample_selections(problems, 20, (0.3, 0.9), rng)
  assert {d for _, d, _ in samples} == {0, 1}
  for ch, d, frac in samples:
    _, lt, t_ms, fixed = problems[d]
    assert fixed + sum(lt[l][c] for l, c in enumerate(ch)) <= frac * t_ms + 1e-9
    assert 0.3 <= frac <= 0.9


def test_select_with_fitted_scores_needs_them():
  arch = network.cnn_arch((4, 8, 8), (1, 1, 1), 8, 1, 10)
  cands = acc_lib.Candidates([], {"names": [["conv_k3"]] * 3, "loss": [np.zeros(1)] * 3,
                                  "teacher_loss": 0.0}, {})
  with pytest.raises(ValueError, match="fitted scores"):
    acc_lib.selection_problem(arch, cands, None, score_kind="fit")
  with pytest.raises(ValueError, match="Unknown score_kind"):
    acc_lib.selection_problem(arch, cands, None, score_kind="magic")


# ----- Receptive-field floor (an extension: experiments/hant/rf/RULE.md) --------------------------

def test_receptive_field_equals_the_support_of_an_output_units_gradient():
  """The additive count equals the input pixels one central output unit depends on (positive
  weights and inputs keep every ReLU open; avg-pool spreads its gradient over its window)."""
  arch = network.cnn_arch(widths=(4, 8), depths=(3, 2), image_hw=48)
  mixes = [arch.teacher_ops, ("conv_k1",) * 4, ("skip", "lr_r2_k3", "conv_k5", "skip"),
           ("dws_k5_d2", "bn_r2_k3", "ir_e3_k3", "pool_avg_k3"),
           ("conv_k3_d2", "skip", "fac_k5", "conv_k1")]
  for ops in mixes:
    params = jax.tree.map(jnp.abs, network.init(arch, ops, jax.random.key(0)))
    x = jnp.ones((1, 48, 48, 1))

    def centre(x, ops=ops, params=params):
      acts = network.activations(arch, ops, params, x)
      h = acts[-1].shape[1] // 2
      return jnp.sum(acts[-1][0, h, h])

    g = np.asarray(jax.grad(centre)(x))[0, :, :, 0]
    rows = np.nonzero(np.any(g != 0, axis=1))[0]
    cols = np.nonzero(np.any(g != 0, axis=0))[0]
    support = min(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    assert support == network.receptive_field(arch, ops), ops
  assert network.receptive_field(network.cnn_arch(), network.cnn_arch().teacher_ops) == 37
  assert network.default_rf_floor(network.cnn_arch()) == 28


def test_ip_with_a_lower_bound_matches_brute_force_and_random_draws_meet_it():
  rng = np.random.default_rng(4)
  for _ in range(5):
    scores, lats = solver.random_instance(5, 4, rng)
    rf = [rng.integers(0, 5, 4) for _ in range(5)]
    budget = 0.5 * (sum(t.min() for t in lats) + sum(t.max() for t in lats))
    feasible = [ch for ch in itertools.product(range(4), repeat=5)
                if sum(t[c] for t, c in zip(lats, ch)) <= budget]
    floor = int(np.median([sum(v[c] for v, c in zip(rf, ch)) for ch in feasible]))
    best = max(sum(s[c] for s, c in zip(scores, ch)) for ch in feasible
               if sum(v[c] for v, c in zip(rf, ch)) >= floor)
    sol = solver.solve(scores, lats, budget, at_least=[(rf, floor)], latency_resolution_ms=1e-7)
    np.testing.assert_allclose(sol.score, best, rtol=1e-6)
    assert sum(v[c] for v, c in zip(rf, sol.choice)) >= floor
    draws = solver.random_feasible(scores, lats, budget, 5, rng, at_least=[(rf, floor)])
    assert len(draws) == 5
    for d in draws:
      assert d.latency <= budget + 1e-9 and sum(v[c] for v, c in zip(rf, d.choice)) >= floor
  with pytest.raises(ValueError, match="lower bounds"):
    solver.solve([np.zeros(2)], [np.array([1.0, 2.0])], 1.5, at_least=[([np.array([0, 5])], 1)])


def test_select_with_rf_floor_caps_it_at_the_widest_field_within_budget(tiny):
  arch, cands = tiny["arch"], tiny["cands"]
  table = _table(arch, cands)
  t_ms = table.predict(latency_tables.network_keys(arch, arch.teacher_ops))
  fastest = acc_lib.fastest_latency(arch, cands, table)
  names, _, lats = acc_lib.selection_problem(arch, cands, table)
  for frac in (0.1, 0.5):
    budget = fastest + frac * (t_ms - fastest)
    rf, floor = acc_lib.rf_floor_problem(arch, names, lats, budget - table["stem_head"], 10**6)
    widest = network.STEM_RF + floor  # An unreachable floor is capped at the widest field.
    for method in ("ip", "random"):
      ops, _ = acc_lib.select(arch, cands, table, budget, method=method, min_rf=10**6,
                              rng=np.random.default_rng(0))
      # The IP may exceed the budget by its 1 us rounding per layer (solver docstring).
      slack = len(arch.layers) * 1e-3 if method == "ip" else 1e-9
      assert table.predict(latency_tables.network_keys(arch, ops)) <= budget + slack
      assert network.receptive_field(arch, ops) == widest
    ops, _ = acc_lib.select(arch, cands, table, budget, min_rf=widest - 2)
    assert network.receptive_field(arch, ops) >= widest - 2
  with pytest.raises(ValueError, match="greedy"):
    acc_lib.select(arch, cands, table, t_ms, method="greedy", min_rf=5)


def test_parse_method_suffixes():
  from metanas.hant import experiment  # pylint: disable=g-import-not-at-top
  parse = experiment._parse_method  # pylint: disable=protected-access
  assert parse("ip") == ("ip", "single", False)
  assert parse("ip_rf") == ("ip", "single", True)
  assert parse("random_fit_rf") == ("random", "fit", True)
  assert parse("best_sample") == ("best_sample", "fit", False)


def test_rf_verdict_rule_flags_a_worse_ip_and_a_dominating_width_point(load_script):
  verdict = load_script("experiments", "hant", "rf", "verdict.py")
  row = lambda m, f, ms, acc: {"device": "d", "method": m, "frac": f, "measured_ms": ms,
                               "test_acc": acc}
  sweep = [row("ip_rf", 0.5, 1.0, 0.90), row("random", 0.5, 1.2, 0.902),
           row("greedy", 0.5, 0.9, 0.88), row("ip_rf", 0.8, 2.0, 0.92),
           row("random", 0.8, 2.0, 0.93), {"device": "d", "method": "width", "width_mult": 0.5,
                                            "measured_ms": 1.5, "test_acc": 0.912}]
  rows, ok = verdict.check(sweep)
  got = {what: good for _, what, good, _ in rows}
  assert got == {"50% vs random": True, "80% vs random": False, "50% vs greedy": True,
                 "width x0.5": True} and not ok
  sweep[-1]["test_acc"] = 0.915  # 0.4 points above the interpolated 91.0%.
  assert not dict((w, g) for _, w, g, _ in verdict.check(sweep)[0])["width x0.5"]
  sweep.append(dict(sweep[-1], method="width_kd", test_acc=0.9))  # The distilled width row too.
  assert dict((w, g) for _, w, g, _ in verdict.check(sweep)[0])["width x0.5 + KD"]


def test_matched_latency_margins_use_the_upper_envelope_of_the_ip_points(load_script):
  matched = load_script("experiments", "hant", "s16", "matched_latency.py")
  row = lambda m, f, ms, acc: {"method": m, "frac": f, "measured_ms": ms, "test_acc": acc}
  rows = [row("ip", 0.2, 1.0, 0.60), row("ip", 0.5, 3.0, 0.90), row("ip", 0.8, 4.0, 0.88),
          row("greedy", 0.5, 2.0, 0.80), row("random", 0.8, 3.5, 0.905),
          row("random", 0.1, 0.5, 0.99), row("greedy", 1.0, 5.0, 0.91)]
  got = {(m, f): round(d, 6) for d, m, f, _ in matched.margins(rows, "ip")}
  # 2.0 ms: halfway between 60% and 90% -> 75%; 3.5 ms: the envelope keeps 90% (not 89%);
  # 5.0 ms: slower than every IP student -> the best one; 0.5 ms: faster than all -> skipped.
  assert got == {("greedy", 0.5): 5.0, ("random", 0.8): 0.5, ("greedy", 1.0): 1.0}


def test_s16_merge_keeps_all_thread_rows_drops_timings_and_adds_the_ip_row(load_script, tmp_path):
  merge = load_script("experiments", "hant", "s16", "merge.py")
  r = lambda dev, m, f: {"device": dev, "method": m, "frac": f, "ops": [m], "test_acc": 0.9,
                         "measured_ms": 1.0, "speedup": 2.0}
  srcs = {"hant_rf14_merged": [r("cpu_1t_b1", "ip", 0.5), r("cpu_all_b25", "ip", 0.5),
                               {"device": "cpu_all_b25", "method": "width_kd", "test_acc": 0.9}],
          "hant_rf14_all80": [r("cpu_all_b25", "greedy", 0.8)],
          "hant_rf15_all42": [r("cpu_all_b25", "greedy", 0.42)], "hant_s16_all100": []}
  for w, rows in srcs.items():
    os.makedirs(tmp_path / w)
    (tmp_path / w / "sweep.json").write_text(json.dumps(rows))
    (tmp_path / w / "results.json").write_text(json.dumps({"teacher_test_acc": 0.92}))
  got = merge.merge("d", str(tmp_path))
  assert [(x["method"], x["frac"], x["source"][:15]) for x in got] == [
      ("ip", 0.5, "hant_rf14_merge"), ("greedy", 0.8, "hant_rf14_all80"),
      ("greedy", 0.42, "hant_rf15_all42"), ("ip", 0.42, "hant_rf15_all42")]
  assert not any("measured_ms" in x or "speedup" in x for x in got)
  results = json.loads((tmp_path / "hant_s16_all3k" / "results.json").read_text())
  assert results["teacher_test_acc"] == 0.92


def test_width_kd_distils_a_narrower_network_towards_the_teacher(tiny):
  from metanas.hant import experiment  # pylint: disable=g-import-not-at-top
  teacher, data = tiny["teacher"], tiny["data"]
  arch_w = network.cnn_arch(widths=(2, 4), depths=(3, 2), image_hw=8)
  params = network.init(arch_w, arch_w.teacher_ops, jax.random.key(5))
  ft = config_dict.ConfigDict(dict(steps=30, batch_size=32, learning_rate=1e-2, alpha=1.0,
                                   temperature=1.0))
  x = jnp.asarray(data["x_train"])
  t_prob = jax.nn.softmax(network.apply(teacher.arch, teacher.arch.teacher_ops, teacher.params, x))

  def kl(p):
    logp = jax.nn.log_softmax(network.apply(arch_w, arch_w.teacher_ops, p, x))
    return float(jnp.mean(jnp.sum(t_prob * (jnp.log(t_prob) - logp), -1)))

  got = experiment.width_kd(ft, arch_w, params, teacher, data, jax.random.key(0))
  chex.assert_trees_all_equal_shapes(got, params)
  assert kl(got) < 0.5 * kl(params)
