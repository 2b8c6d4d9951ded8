"""PARSEC: cell space, switch/mixed/plain nets agree, Monte-Carlo estimator, planted op."""

import functools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import config_dict

from metanas import config_lib
from metanas.nas import cell_net
from metanas.nas import cell_space
from metanas.nas import parsec
from metanas.nas import parsec_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_OPS = ("sep_conv_3x3", "max_pool_3x3", "skip_connect")


@pytest.fixture(scope="module")
def tiny():
  space = cell_space.CellSpace(num_nodes=2, ops=TINY_OPS)
  spec = cell_net.NetSpec(space=space, in_channels=1, num_classes=3, channels=4, num_cells=2,
                          reduce_before=(1,))
  params = cell_net.init(spec, jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 8, 8, 1))
  y = jnp.array([0, 1, 2, 0, 1, 2])
  return spec, params, x, y


def _arch(op, inp):
  return {"op": jnp.asarray(op, jnp.int32), "inp": jnp.asarray(inp, jnp.int32)}


def test_prior_is_normalised_and_entropy_matches_enumeration():
  space = cell_space.CellSpace(num_nodes=2, ops=TINY_OPS[:2])
  pi = jax.tree.map(lambda t: t + jax.random.normal(jax.random.PRNGKey(3), t.shape),
                    cell_space.uniform_logits(space))
  archs = cell_space.enumerate_all(space)
  assert archs["op"].shape[0] == space.num_architectures() == 2 ** 4 * 2 ** 2 * 3 ** 2
  lp = jax.vmap(lambda a: cell_space.log_prob(space, pi, a))(archs)
  np.testing.assert_allclose(float(jnp.sum(jnp.exp(lp))), 1.0, rtol=1e-5)
  np.testing.assert_allclose(float(cell_space.entropy(space, pi)),
                             float(-jnp.sum(jnp.exp(lp) * lp)), rtol=1e-4)
  np.testing.assert_allclose(float(cell_space.entropy(space, cell_space.uniform_logits(space))),
                             cell_space.max_entropy(space), rtol=1e-5)
  # Samples never pick an input that does not exist yet.
  s = cell_space.sample(space, pi, jax.random.PRNGKey(0), 2000)
  assert int(jnp.max(s["inp"][:, 0])) <= 1 and int(jnp.max(s["inp"][:, 1])) <= 2
  freq = np.mean(np.asarray(s["op"][:, 0]) == 0)
  np.testing.assert_allclose(freq, float(cell_space.probabilities(space, pi)["op"][0, 0]),
                             atol=0.04)


def test_one_hot_child_equals_plain_network(tiny):
  spec, params, x, y = tiny
  for op, inp in [([0, 1, 2, 0], [[0, 1], [2, 1]]), ([2, 2, 1, 0], [[1, 1], [0, 2]])]:
    arch = _arch(op, inp)
    plain = cell_net.apply_fixed(spec, params, arch, x)
    child = jax.jit(lambda p, a: cell_net.apply_child(spec, p, a, x))(params, arch)
    onehot = {"op": jax.nn.one_hot(arch["op"], len(TINY_OPS)),
              "inp": jax.nn.one_hot(arch["inp"], spec.space.max_inputs)}
    mixed = cell_net.apply_mixed(spec, params, onehot, x)
    chex.assert_trees_all_close(child, plain, atol=1e-5)
    chex.assert_trees_all_close(mixed, plain, atol=1e-5)
    if op[0] != 0:
      continue
    # The custom VJP of the switched op gives the plain network's gradient.
    g_child = jax.grad(lambda p: parsec.child_loglik(spec, p, arch, x, y))(params)
    g_plain = jax.grad(lambda p: cell_net.log_likelihood(
        cell_net.apply_fixed(spec, p, arch, x), y))(params)
    chex.assert_trees_all_close(g_child, g_plain, atol=1e-4, rtol=1e-4)


def test_one_compilation_serves_all_children(tiny):
  spec, params, x, y = tiny
  fn = chex.assert_max_traces(lambda p, a: parsec.child_loglik(spec, p, a, x, y), n=1)
  fn = jax.jit(fn)
  archs = cell_space.sample(spec.space, cell_space.uniform_logits(spec.space),
                            jax.random.PRNGKey(5), 3)
  for k in range(3):
    fn(params, jax.tree.map(lambda a, k=k: a[k], archs))


def test_weighted_gradient_is_gradient_of_log_mean_likelihood(tiny):
  """Online (sequential) sum_k omega_k grad l_k == grad_w log(1/K sum_k exp l_k) (dense)."""
  spec, params, x, y = tiny
  archs = cell_space.sample(spec.space, cell_space.uniform_logits(spec.space),
                            jax.random.PRNGKey(7), 3)
  logliks, g = jax.jit(lambda p: parsec.weighted_grad(spec, p, archs, x, y))(params)

  def log_mean(p):
    ls = [cell_net.log_likelihood(cell_net.apply_fixed(
        spec, p, jax.tree.map(lambda a, k=k: np.asarray(a[k]), archs), x), y) for k in range(3)]
    return jax.nn.logsumexp(jnp.stack(ls)) - jnp.log(3.0), jnp.stack(ls)

  (_, ls_ref), = [log_mean(params)]
  g_ref = jax.grad(lambda p: log_mean(p)[0])(params)
  np.testing.assert_allclose(logliks, ls_ref, rtol=1e-5, atol=1e-4)
  chex.assert_trees_all_close(g, g_ref, atol=1e-4, rtol=1e-3)


def _arch_index(space, archs):
  """Index of each arch in `enumerate_all` order (ops outer, inputs inner, mixed radix)."""
  o = space.num_ops
  op_idx = sum(archs["op"][:, e] * o ** (space.num_edges - 1 - e) for e in range(space.num_edges))
  radices = [i + 2 for i in range(space.num_nodes) for _ in range(2)]
  inp = archs["inp"].reshape(archs["inp"].shape[0], -1)
  inp_idx = 0
  for j, r in enumerate(radices):
    inp_idx = inp_idx * r + inp[:, j]
  return op_idx * int(np.prod(radices)) + inp_idx


def test_mc_pi_gradient_converges_to_exact_gradient():
  """On an enumerable space the importance-weighted pi gradient -> exact grad log p(y|X,w,pi)."""
  space = cell_space.CellSpace(num_nodes=1, ops=TINY_OPS)
  spec = cell_net.NetSpec(space=space, in_channels=1, num_classes=3, channels=3, num_cells=1,
                          reduce_before=())
  params = cell_net.init(spec, jax.random.PRNGKey(0))
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 6, 6, 1))
  y = jnp.array([0, 1, 2, 0, 1, 2])
  all_archs = cell_space.enumerate_all(space)
  table = jax.jit(lambda p: parsec.children_logliks(spec, p, all_archs, x, y))(params)
  assert float(jnp.std(table)) > 0.05  # Architectures really differ in likelihood.
  pi = jax.tree.map(lambda t: t + 0.5 * jax.random.normal(jax.random.PRNGKey(2), t.shape),
                    cell_space.uniform_logits(space))
  exact = jax.grad(lambda p: parsec.exact_log_marginal(space, p, all_archs, table))(pi)
  exact_vec = np.concatenate([np.ravel(exact["op"]), np.ravel(exact["inp"])])

  @jax.jit
  def mc_error(rng, k_dummy):
    archs = cell_space.sample(space, pi, rng, k_dummy.shape[0])
    g = parsec.pi_gradient(space, pi, archs, table[_arch_index(space, archs)])
    vec = jnp.concatenate([jnp.ravel(g["op"]), jnp.ravel(g["inp"])])
    return jnp.linalg.norm(vec - exact_vec)

  errors = {k: np.mean([float(mc_error(jax.random.PRNGKey(s), jnp.zeros(k)))
                        for s in range(8)]) for k in (4, 64, 4096)}
  # Error falls like 1/sqrt(K) (64x more samples: ~8x smaller) and ends well below |exact|.
  assert errors[4096] < errors[64] / 4 < errors[4] / 4 / 2, errors
  assert errors[4096] < 0.25 * np.linalg.norm(exact_vec), (errors, np.linalg.norm(exact_vec))


def _planted_batch(rng, n, size=8):
  """Class 0: flat images; class 1: sparse spikes with the same mean. Only max-pool separates
  them after global average pooling (every other op here is linear)."""
  k1, k2, k3 = jax.random.split(rng, 3)
  y = jax.random.bernoulli(k1, 0.5, (n,)).astype(jnp.int32)
  flat = 0.1 + 0.03 * jax.random.normal(k2, (n, size, size, 1))
  spiky = jax.random.bernoulli(k3, 0.1, (n, size, size, 1)).astype(jnp.float32)
  return jnp.where(y[:, None, None, None] == 1, spiky, flat), y


def test_planted_task_concentrates_pi_on_the_required_op():
  ops = ("skip_connect", "avg_pool_3x3", "max_pool_3x3")
  space = cell_space.CellSpace(num_nodes=1, ops=ops)
  spec = cell_net.NetSpec(space=space, in_channels=1, num_classes=2, channels=2, num_cells=1,
                          reduce_before=())
  cfg = config_dict.ConfigDict(dict(w_lr=0.02, pi_lr=0.1, grad_clip=5.0))
  w_opt, pi_opt = parsec.make_optimizers(cfg)
  state = parsec.init_state(spec, jax.random.PRNGKey(0), w_opt, pi_opt)
  step = jax.jit(parsec.make_step("parsec", spec, w_opt, pi_opt, num_samples=4))

  def p_has_max(pi):
    p = cell_space.probabilities(space, pi)["op"][:, 2]
    return float(1 - jnp.prod(1 - p))

  start = p_has_max(state["pi"])
  for i in range(120):
    xt, yt = _planted_batch(jax.random.PRNGKey(2 * i), 32)
    xv, yv = _planted_batch(jax.random.PRNGKey(2 * i + 1), 32)
    state, metrics = step(state, dict(x_train=xt, y_train=yt, x_val=xv, y_val=yv),
                          jax.random.PRNGKey(10_000 + i))
  end = p_has_max(state["pi"])
  best = cell_space.most_probable(space, state["pi"])
  assert start < 0.6 and end > 0.9, (start, end)
  assert 2 in np.asarray(best["op"]).tolist()
  assert np.isfinite(float(metrics["loss"]))


def test_darts_step_runs_and_updates_architecture(tiny):
  spec, _, x, y = tiny
  cfg = config_dict.ConfigDict(dict(w_lr=0.01, pi_lr=0.1, grad_clip=0.0))
  w_opt, pi_opt = parsec.make_optimizers(cfg)
  state = parsec.init_state(spec, jax.random.PRNGKey(0), w_opt, pi_opt)
  new, m = parsec.make_step("darts", spec, w_opt, pi_opt, 1)(
      state, dict(x_train=x, y_train=y, x_val=x, y_val=y), jax.random.PRNGKey(0))
  assert float(jnp.abs(new["pi"]["op"] - state["pi"]["op"]).max()) > 0
  assert float(m["entropy"]) < cell_space.max_entropy(spec.space)


def test_warmup_step_trains_weights_with_frozen_architecture(tiny):
  """Warm-up lowers the training loss of the shared weights and leaves pi untouched."""
  spec, _, x, y = tiny
  cfg = config_dict.ConfigDict(dict(w_lr=0.02, pi_lr=0.1, grad_clip=0.0))
  w_opt, pi_opt = parsec.make_optimizers(cfg)
  batch = dict(x_train=x, y_train=y, x_val=x, y_val=y)
  for method in ("parsec", "darts"):
    state = parsec.init_state(spec, jax.random.PRNGKey(0), w_opt, pi_opt)
    pi0 = state["pi"]
    step = jax.jit(functools.partial(parsec.warmup_step, spec=spec, w_opt=w_opt, method=method))
    losses = []
    for i in range(20):
      state, m = step(state, batch, jax.random.PRNGKey(i))
      losses.append(float(m["loss"]))
    chex.assert_trees_all_equal(state["pi"], pi0)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]), (method, losses)


def test_bad_inputs_name_the_fix():
  with pytest.raises(ValueError, match="Unknown or empty op list"):
    cell_space.CellSpace(ops=("sep_conv_3x3", "conv_9x9"))
  with pytest.raises(ValueError, match="reduce_before"):
    cell_net.NetSpec(space=cell_space.CellSpace(), num_cells=2, reduce_before=(2,))
  data = {"x_train": np.zeros((10, 4, 4, 1)), "y_train": np.zeros(10), "x_test": np.zeros((2,)),
          "y_test": np.zeros(2)}
  with pytest.raises(ValueError, match="data.num_train"):
    parsec_data.search_splits(data, 8, 8, 2, 0)
  with pytest.raises(ValueError, match="search method"):
    parsec.make_step("enas", None, None, None, 1)


def test_cifar10_paper_config_reads_tfds_cifar10(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  config = config_lib.load_config(os.path.join(ROOT, "configs", "parsec_cifar10.py:paper"))
  assert (config.data.name, config.data.source) == ("cifar10", "tfds")
  assert (config.model.num_nodes, config.model.channels, config.model.num_cells,
          config.search.num_samples) == (4, 16, 8, 16)
  with tfds.testing.mock_data(num_examples=12):
    data = parsec_data.load(config.data.name, config.data.source, str(tmp_path))
  assert data["x_train"].shape == (12, 32, 32, 3) and data["x_train"].dtype == np.float32
  assert data["y_test"].shape == (12,)
  np.testing.assert_allclose(data["x_train"].mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
  from metanas.nas import parsec_experiment  # pylint: disable=g-import-not-at-top
  spec = parsec_experiment.build_spec(config, 3, 10)
  assert spec.space.ops == cell_space.PAPER_OPS and spec.reduce_before == (2, 5)


def test_seed_merge_reads_runs_and_summarises_across_search_seeds(tmp_path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      "parsec_seeds", os.path.join(ROOT, "experiments", "parsec_seeds.py"))
  merge = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(merge)
  accs = {("parsec", 0): [0.70, 0.72], ("parsec", 1): [0.74, 0.76], ("darts", 0): [0.80, 0.80]}
  dirs = []
  for (key, seed), a in accs.items():
    d = tmp_path / f"{key}{seed}"
    os.makedirs(d / f"search_{key}")
    (d / f"search_{key}" / "metrics.jsonl").write_text(
        json.dumps({"step": 5, "train/loss": 1.0, "train/ess_train": 3.0}) + "\n")
    (d / "results.json").write_text(json.dumps({"config": {"train": {"seed": seed}}}))
    (d / "summary.json").write_text(json.dumps({
        key: {"genotype": ["n0 = dil_conv_5x5(c_{k-1})"], "search_seconds": 1.0,
              "final": {"eval/entropy": 2.5}},
        "retrain": {key: {"all": a}, "seconds": 2.0}}))
    dirs.append(str(d))
  rows = [r for d in dirs for r in merge.load_run(d)]
  assert [(r["method"], r["seed"], r["entropy"], r["ess"]) for r in rows] == [
      ("parsec", 0, 2.5, 3.0), ("parsec", 1, 2.5, 3.0), ("darts", 0, 2.5, 3.0)]
  assert rows[0]["genotype"] == "n0 = dil5(c_{k-1})"
  s = merge.summarise(rows)
  np.testing.assert_allclose(s["parsec"]["seed_means"], [0.71, 0.75])
  np.testing.assert_allclose(s["parsec"]["mean"], 0.73)
  np.testing.assert_allclose(s["parsec"]["sd_across_seeds"], np.std([0.71, 0.75], ddof=1))
  np.testing.assert_allclose(s["parsec"]["pooled_mean"], 0.73)
  assert np.isnan(s["darts"]["sd_across_seeds"])


def test_cpu_long_variant_changes_only_the_budgets_of_the_long_protocol():
  """`:cpu_long` = `:cpu` with the settings of experiments/parsec/long/RULE.md, nothing else."""
  flat = lambda c, p="": ({k2: v2 for k, v in c.items() for k2, v2 in flat(v, f"{p}{k}.").items()}
                          if hasattr(c, "items") else {p[:-1]: c})
  cpu = flat(config_lib.load_config("configs/parsec_fashion_mnist.py:cpu").to_dict())
  long = flat(config_lib.load_config("configs/parsec_fashion_mnist.py:cpu_long").to_dict())
  diff = {k: (cpu[k], long[k]) for k in cpu if cpu[k] != long[k]}
  assert cpu.keys() == long.keys()
  assert diff == {"search.warmup_steps": (400, 2000), "train.num_steps": (50, 150),
                  "retrain.num_steps": (300, 1500), "transfer.num_steps": (20, 50)}
