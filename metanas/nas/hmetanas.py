"""H-Meta-NAS: MAML over a weight-sharing supernet, then hardware-constrained GA adaptation.

(Zhao, Gao, Shumailov, Fusi & Mullins, "Rapid Model Architecture Adaption for Meta-Learning",
NeurIPS 2022, arXiv 2109.04925. Section numbers below are approximate pointers into the paper.)

1. `meta_loss` (Sec. 3.2, the MAML objective of eq. 3 with a sub-network per task): each task i in
   the meta-batch comes with its own architecture a_i; its inner loop adapts the shared weights
   through the masks of a_i and its query loss is averaged into the meta-objective
   min_theta sum_i L_query(theta'_i(a_i); a_i). The architecture is a traced input, so one compiled
   step serves every sampled sub-network.
2. `population_accuracy`: few-shot accuracy after inner adaptation of P architectures on T tasks in
   one jitted call (`lax.map` over architectures, `vmap` over tasks) - the GA fitness (Sec. 3.4).
3. `adapt_architecture`: the user-facing call: (trained supernet, device, budget) -> architecture.
"""

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas.hardware import latency
from metanas.meta import maml
from metanas.nas import genetic
from metanas.nas import search_space as ss
from metanas.nas import supernet


@dataclasses.dataclass(frozen=True)
class MamlSettings:
  num_inner_steps: int = 1
  inner_lr: float = 0.4
  first_order: bool = True
  learn_inner_lr: bool = False


def sub_loss_fn(arch: dict, conv_impl: str) -> maml.LossFn:
  """Cross-entropy loss of the sub-network `arch` of the supernet (arch may be traced)."""
  return maml.cross_entropy_loss(lambda p, x: supernet.apply(p, x, arch, conv_impl))


def meta_loss(meta_params: dict, batch: dict, settings: MamlSettings,
              conv_impl: str = "im2col", teacher_arch: dict | None = None,
              distill_weight: float = 0.0) -> tuple[jax.Array, dict]:
  """Mean post-adaptation query loss over tasks, each on its own sub-network (MAML eq. 3).

  With `teacher_arch` (the largest sub-network, `supernet.arch_arrays`) and `distill_weight`
  w > 0, each task's query loss is (1 - w) * cross-entropy + w * KL(teacher || sub-network),
  where the teacher is the largest sub-network adapted on the same support set (in-place
  distillation; costs one more adaptation per task).

  Args:
    meta_params: {"model": supernet params, "inner_lr": per-leaf rates}.
    batch: support_x [T, n*k, h, w, c], support_y [T, n*k], query_x, query_y, and the per-task
      architecture depth [T], kernel [T, L], channels [T, L].

  Returns:
    (scalar loss, metrics averaged over tasks).
  """
  def one(task, arch):
    if teacher_arch is None or distill_weight == 0.0:
      return maml.task_loss(meta_params, task, sub_loss_fn(arch, conv_impl),
                            settings.num_inner_steps, settings.first_order,
                            settings.learn_inner_lr)
    # In-place distillation (BigNAS/OFA style, inside MAML): the largest sub-network is adapted
    # on the same support set and its query predictions (no gradient) are a soft target.
    lrs = meta_params["inner_lr"]
    if not settings.learn_inner_lr:
      lrs = jax.lax.stop_gradient(lrs)

    def adapted_logits(a):
      p = maml.adapt(meta_params["model"], lrs, sub_loss_fn(a, conv_impl), task["support_x"],
                     task["support_y"], settings.num_inner_steps, settings.first_order)
      return supernet.apply(p, task["query_x"], a, conv_impl)
    t_probs = jax.nn.softmax(jax.lax.stop_gradient(adapted_logits(teacher_arch)))
    logits = adapted_logits(arch)
    ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, task["query_y"]))
    kl = jnp.mean(optax.kl_divergence(jax.nn.log_softmax(logits), t_probs))
    loss = (1.0 - distill_weight) * ce + distill_weight * kl
    acc = jnp.mean(jnp.argmax(logits, -1) == task["query_y"])
    return loss, {"xent": ce, "accuracy": acc, "distill_kl": kl}
  tasks = {k: batch[k] for k in ("support_x", "support_y", "query_x", "query_y")}
  archs = {k: batch[k] for k in ("depth", "kernel", "channels")}
  losses, metrics = jax.vmap(one)(tasks, archs)
  return jnp.mean(losses), jax.tree.map(jnp.mean, metrics)


@functools.partial(jax.jit, static_argnames=("num_steps", "conv_impl"))
def population_accuracy(meta_params: dict, tasks: dict, archs: dict, num_steps: int,
                        conv_impl: str = "im2col") -> jax.Array:
  """Query accuracy after `num_steps` inner steps, for every (architecture, task) pair.

  Args:
    tasks: support_x [T, ...], support_y, query_x, query_y.
    archs: depth [P], kernel [P, L], channels [P, L].

  Returns:
    accuracy [P, T].
  """
  def per_arch(arch):
    fn = lambda t: maml.task_loss(meta_params, t, sub_loss_fn(arch, conv_impl), num_steps)[1]
    return jax.vmap(fn)(tasks)["accuracy"]
  return jax.lax.map(per_arch, archs)


def evaluate_genes(meta_params: dict, space: ss.SearchSpace, genes: np.ndarray, tasks: dict,
                   num_steps: int, conv_impl: str = "im2col", arch_chunk: int = 8,
                   task_chunk: int = 50) -> np.ndarray:
  """Host wrapper of `population_accuracy` with fixed chunk shapes (no recompiles).

  Args:
    genes: int [P, num_genes].
    tasks: NumPy episodes with a leading [T] axis.

  Returns:
    float [P, T] accuracies.
  """
  genes = np.asarray(genes, np.int32)
  P, T = genes.shape[0], tasks["support_x"].shape[0]
  tc = min(task_chunk, T)
  rows = []
  for a in range(0, P, arch_chunk):
    g = genes[a:a + arch_chunk]
    g = np.concatenate([g, np.repeat(g[-1:], arch_chunk - len(g), 0)])
    arch = supernet.arch_arrays(space, g)
    cols = []
    for s in range(0, T, tc):
      part = {k: v[s:s + tc] for k, v in tasks.items() if k != "classes"}
      m = part["support_x"].shape[0]
      part = {k: np.concatenate([v, np.repeat(v[-1:], tc - m, 0)]) for k, v in part.items()}
      acc = population_accuracy(meta_params, part, arch, num_steps=num_steps, conv_impl=conv_impl)
      cols.append(np.asarray(acc)[:, :m])
    rows.append(np.concatenate(cols, axis=1)[:len(genes[a:a + arch_chunk])])
  return np.concatenate(rows, axis=0)


@dataclasses.dataclass
class Supernet:
  """What `adapt_architecture` needs from a meta-trained supernet.

  Attributes:
    meta_params: {"model": params, "inner_lr": lrs}.
    space: its search space.
    tables: {device name: latency.LatencyTable}.
    settings: the MAML inner-loop settings used at adaptation time.
    conv_impl: convolution lowering for evaluation.
  """
  meta_params: Any
  space: ss.SearchSpace
  tables: dict
  settings: MamlSettings = MamlSettings()
  conv_impl: str = "im2col"


def cost_function(sn: Supernet, device_name: str, metric: str):
  """cost(genes) -> float for metric "latency" (ms on the device, table lookup), "params", "macs"."""
  if metric == "latency":
    if device_name not in sn.tables:
      latency.get_device(device_name)  # Unknown device -> ValueError listing the devices.
      raise ValueError(f"No latency table for device {device_name!r}; profiled devices: "
                       f"{sorted(sn.tables)}.")
    table = sn.tables[device_name]
    return lambda g: table.predict(ss.cost_keys(sn.space, g))
  if metric == "params":
    return lambda g: float(ss.num_params(sn.space, g))
  if metric == "macs":
    return lambda g: float(ss.macs(sn.space, g))
  raise ValueError(f"Unknown budget metric {metric!r}; use 'latency', 'params' or 'macs'.")


def smallest_cost(space: ss.SearchSpace, cost_fn, allowed: np.ndarray | None = None) -> float:
  """The smallest cost any (allowed) architecture reaches: exact by enumeration when the space is
  small enough, otherwise the cost of the smallest network."""
  try:
    grid = ss.enumerate_all(space)
  except ValueError:
    return float(cost_fn(ss.smallest(space)))
  if allowed is not None:
    ok = np.all(allowed[np.arange(grid.shape[1]), grid], axis=1)
    grid = ss.canonical(space, grid[ok])
    grid = np.unique(grid, axis=0)
  return float(min(cost_fn(g) for g in grid))


def adapt_architecture(sn: Supernet, device_name: str, budget: float, val_tasks: dict,
                       rng: np.random.Generator, metric: str = "latency",
                       ga: genetic.GAConfig = genetic.GAConfig(), test_tasks: dict | None = None,
                       allowed: np.ndarray | None = None, search: str = "ga") -> dict:
  """Picks the sub-network for one (device, budget) and task distribution (H-Meta-NAS Sec. 3.4).

  Args:
    sn: the meta-trained supernet with its latency tables.
    device_name: a key of `sn.tables` (for metric "latency").
    budget: maximum latency in ms (or parameters / MACs).
    val_tasks: meta-validation episodes scoring the GA fitness (accuracy after adaptation).
    rng: NumPy generator.
    metric: "latency", "params" or "macs".
    ga: pool size, generations, operator rates.
    test_tasks: optional episodes on which the chosen architecture is reported.
    allowed: optional gene restriction (`genetic.restrict`).
    search: "ga" or "random" (random search with the GA's number of evaluations).

  Returns:
    dict: genes, arch (readable), predicted latency (ms on `device_name`, when a table exists),
    params, macs, val_accuracy, test_accuracy (if test_tasks), num_evaluations, history.

  Raises:
    ValueError: the budget is below the smallest achievable cost (the message names it).
  """
  cost_fn = cost_function(sn, device_name, metric)
  floor = smallest_cost(sn.space, cost_fn, allowed)
  if budget < floor:
    raise ValueError(f"Budget {budget:g} ({metric} on {device_name}) is infeasible: the smallest "
                     f"achievable value in this search space is {floor:.4g}. Raise the budget.")
  fitness = lambda g: evaluate_genes(sn.meta_params, sn.space, g, val_tasks,
                                     sn.settings.num_inner_steps, sn.conv_impl).mean(axis=1)
  if search == "ga":
    res = genetic.evolve(sn.space, fitness, cost_fn, budget, rng, ga, allowed)
  elif search == "random":
    n = ga.pop_size * (ga.generations + 1)
    res = genetic.random_search(sn.space, fitness, cost_fn, budget, rng, n, allowed)
  else:
    raise ValueError(f"Unknown search {search!r}; use 'ga' or 'random'.")
  out = {"genes": res.genes.tolist(), "arch": ss.describe(sn.space, res.genes),
         "budget": budget, "metric": metric, "device": device_name,
         "params": ss.num_params(sn.space, res.genes), "macs": ss.macs(sn.space, res.genes),
         "val_accuracy": res.fitness, "num_evaluations": res.num_evaluations,
         "history": res.history}
  if device_name in sn.tables:
    out["latency_ms"] = sn.tables[device_name].predict(ss.cost_keys(sn.space, res.genes))
  if test_tasks is not None:
    acc = evaluate_genes(sn.meta_params, sn.space, res.genes[None], test_tasks,
                         sn.settings.num_inner_steps, sn.conv_impl, arch_chunk=1)[0]
    out["test_accuracy"] = float(acc.mean())
    out["test_ci95"] = float(1.96 * acc.std(ddof=1) / np.sqrt(acc.size)) if acc.size > 1 else 0.
  return out
