"""MAML experiments (sinusoid regression and Omniglot classification) on the generic train loop."""

import functools
import json
import os
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas import parallel
from metanas import train
from metanas.data import omniglot
from metanas.data import sinusoid
from metanas.meta import maml
from metanas.models import maml_nets


@flax.struct.dataclass
class TrainState:
  meta_params: dict  # {"model": params, "inner_lr": lrs}
  opt_state: optax.OptState


def build_model(model_config: config_dict.ConfigDict, num_outputs: int):
  if model_config.name == "mlp":
    return maml_nets.MLP(hidden=tuple(model_config.hidden), out=num_outputs)
  if model_config.name == "conv4":
    return maml_nets.Conv4(num_classes=num_outputs, filters=model_config.filters,
                           downsample=model_config.downsample, conv_impl=model_config.conv_impl)
  raise ValueError(f"Unknown model {model_config.name!r}; use 'mlp' or 'conv4'.")


def build_optimizer(optim_config: config_dict.ConfigDict,
                    num_steps: int) -> optax.GradientTransformation:
  """Adam on the meta-parameters; `schedule="cosine"` anneals the rate to zero over the run
  (MAML++, Antoniou et al. 2019, "cosine annealing of the meta-optimizer learning rate")."""
  chain = []
  if optim_config.grad_clip > 0:
    chain.append(optax.clip_by_global_norm(optim_config.grad_clip))
  schedule = optim_config.get("schedule", "constant")
  if schedule == "constant":
    lr = optim_config.learning_rate
  elif schedule == "cosine":
    lr = optax.cosine_decay_schedule(optim_config.learning_rate, decay_steps=num_steps)
  else:
    raise ValueError(f"Unknown optim.schedule {schedule!r}; use 'constant' or 'cosine'.")
  chain.append(optax.adam(lr))
  return optax.chain(*chain)


class Problem:
  """Task sampling, model and loss of one MAML problem ("sinusoid" or "omniglot")."""

  def __init__(self, config: config_dict.ConfigDict):
    self.config = config
    if config.task == "sinusoid":
      self.model = build_model(config.model, 1)
      self.loss_fn = maml.mse_loss(self.model.apply)
      self.example_x = np.zeros((1, 1), np.float32)
      self.primary = "mse"
    elif config.task == "omniglot":
      d = config.data
      arrays = omniglot.load(config.data_dir, d.source)
      make = lambda split, rot: omniglot.OmniglotSampler(
          arrays, split, d.protocol, rotations=rot, num_val_chars=d.num_val_chars)
      self.samplers = {"train": make("train", d.train_rotations),
                       "test": make("test", d.test_rotations)}
      if d.num_val_chars:
        self.samplers["val"] = make("val", d.test_rotations)
      self.model = build_model(config.model, d.n_way)
      self.loss_fn = maml.cross_entropy_loss(self.model.apply)
      self.example_x = np.zeros((1, 28, 28, 1), np.float32)
      self.primary = "accuracy"
    else:
      raise ValueError(f"Unknown MAML task {config.task!r}; use 'sinusoid' or 'omniglot'.")

  def sample(self, rng: np.random.Generator, num_tasks: int, split: str, evaluation: bool):
    d = self.config.data
    if self.config.task == "sinusoid":
      num_query = self.config.eval.num_query if evaluation else d.num_query
      return sinusoid.sample_tasks(rng, num_tasks, d.k_shot, num_query)
    spec = omniglot.EpisodeSpec(d.n_way, d.k_shot, d.n_query)
    batch = self.samplers[split].sample(rng, num_tasks, spec)
    batch.pop("classes")
    return batch


def _summarise(values: np.ndarray) -> dict:
  """Mean, median and 95% normal interval half-width (of the mean) over tasks."""
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "median": float(np.median(values)),
          "ci95": float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.}


def make_evaluator(problem: Problem, config, mesh):
  """Returns `evaluate(meta_params, split, num_tasks, seed) -> metrics`.

  Adapts each task with each of `config.eval.inner_steps` (plus 0 = no adaptation) and reports
  query-set metrics, mean and 95% interval over tasks.
  """
  @functools.partial(jax.jit, static_argnums=2)
  def per_task(meta_params, tasks, num_steps):
    one = lambda t: maml.task_loss(meta_params, t, problem.loss_fn, num_steps)[1]
    return jax.vmap(one)(tasks)

  size = mesh.devices.size
  chunk = max(size, int(config.eval.chunk) // size * size)

  def evaluate(meta_params, split, num_tasks, seed):
    rng = np.random.default_rng([config.train.seed, seed])
    tasks = problem.sample(rng, num_tasks, split, evaluation=True)
    results = {}
    for n in (0,) + tuple(config.eval.inner_steps):
      outs = []
      for s in range(0, num_tasks, chunk):
        part = {k: v[s:s + chunk] for k, v in tasks.items()}
        m = part["support_x"].shape[0]
        pad = -m % size
        part = {k: np.concatenate([v, np.repeat(v[-1:], pad, 0)]) for k, v in part.items()}
        out = jax.device_get(per_task(meta_params, parallel.shard_batch(part, mesh), n))
        outs.append({k: v[:m] for k, v in out.items()})
      for k in outs[0]:
        stats = _summarise(np.concatenate([o[k] for o in outs]))
        results[f"{split}/step{n}_{k}"] = stats["mean"]
        results[f"{split}/step{n}_{k}_ci95"] = stats["ci95"]
        results[f"{split}/step{n}_{k}_median"] = stats["median"]
    return results

  return evaluate


def make_task(config: config_dict.ConfigDict, mesh) -> tuple[train.Task, Problem]:
  """The generic loop's `Task` for a MAML config."""
  problem = Problem(config)
  mc = config.maml
  optimizer = build_optimizer(config.optim, config.train.num_steps)
  value_and_grad = functools.partial(
      maml.meta_value_and_grad, loss_fn=problem.loss_fn, num_steps=mc.num_inner_steps,
      first_order=mc.first_order, learn_inner_lr=mc.learn_inner_lr, task_chunk=mc.task_chunk)

  def init(rng):
    params = problem.model.init(rng, problem.example_x)
    meta_params = {"model": params,
                   "inner_lr": maml.init_inner_lrs(params, mc.num_inner_steps, mc.inner_lr)}
    return TrainState(meta_params=meta_params, opt_state=optimizer.init(meta_params))

  def step(state, batch, rng):
    del rng  # MAML's step is deterministic given the batch.
    (value, metrics), grads = value_and_grad(state.meta_params, batch)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.meta_params)
    meta_params = optax.apply_updates(state.meta_params, updates)
    metrics = dict(metrics, loss=value, grad_norm=optax.global_norm(grads))
    return TrainState(meta_params=meta_params, opt_state=opt_state), metrics

  def sample_batch(step_num):
    rng = np.random.default_rng([config.train.seed, 1, step_num])
    return problem.sample(rng, mc.meta_batch_size, "train", evaluation=False)

  evaluator = make_evaluator(problem, config, mesh)
  num_steps = config.train.num_steps

  def evaluate(state, step_num):
    if step_num == num_steps:  # Final: the test split, fixed tasks.
      return evaluator(state.meta_params, "test", config.eval.num_tasks, seed=10**6)
    split = "val" if "val" in getattr(problem, "samplers", {}) else "test"
    return evaluator(state.meta_params, split, config.eval.periodic_num_tasks, seed=10**6 + 1)

  return train.Task(init=init, step=step, sample_batch=sample_batch, evaluate=evaluate), problem


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Meta-trains, evaluates on the test split, and writes `results.json` in `workdir`."""
  mesh = parallel.make_mesh(config.train.num_devices or None)
  if config.maml.meta_batch_size % mesh.devices.size:
    raise ValueError(f"maml.meta_batch_size={config.maml.meta_batch_size} must be divisible by the "
                     f"{mesh.devices.size} devices; set --config.train.num_devices.")
  os.makedirs(workdir, exist_ok=True)
  task, _ = make_task(config, mesh)
  t0 = time.time()
  final, _ = train.train(config.train, workdir, task, mesh)
  final["wall_time_sec"] = time.time() - t0
  final["devices"] = f"{mesh.devices.size} x {jax.devices()[0].platform}"
  metric_writer.write_results(workdir, final)
  logging.info("Final: %s", json.dumps(final, indent=1))
  return final
