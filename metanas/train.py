"""The one generic training loop: init, jit(step), log, evaluate, checkpoint, resume.

A method supplies a `Task` (how to build the state, one pure step, a deterministic batch for each
step number, and an evaluation); this loop owns everything else. Because batches are a function of
(seed, step) and the step key is `fold_in(key, step)`, a run killed at any point and restarted with
the same command resumes from its last checkpoint and ends with exactly the metrics of an
uninterrupted run.
"""

import contextlib
import dataclasses
import json
import math
import os
import time
from typing import Any, Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from ml_collections import config_dict

from metanas import metric_writer
from metanas import parallel


@contextlib.contextmanager
def _quiet():
  """Orbax logs every save at INFO through absl; keep the progress lines readable."""
  level = logging.get_verbosity()
  logging.set_verbosity(logging.WARNING)
  try:
    yield
  finally:
    logging.set_verbosity(level)

State = Any
Batch = Any
Metrics = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Task:
  """What a method plugs into `train`.

  Attributes:
    init: rng -> state pytree (arrays only; it is what gets checkpointed).
    step: pure `(state, batch, rng) -> (state, metrics)`; metrics a flat dict of scalars that
      includes "loss". Jitted once by the loop with the state donated.
    sample_batch: host function `step -> batch` (pytree of NumPy arrays, leading axis the
      task/example axis that is sharded over devices). Must be deterministic in `step`.
    evaluate: optional host function `(state, step) -> metrics` run every `eval_every` steps and
      at the end.
  """
  init: Callable[[jax.Array], State]
  step: Callable[[State, Batch, jax.Array], tuple[State, Metrics]]
  sample_batch: Callable[[int], Batch]
  evaluate: Callable[[State, int], Metrics] | None = None


class NonFiniteLossError(FloatingPointError):
  """Training produced NaN/Inf; the last good checkpoint is kept."""


def default_train_config() -> config_dict.ConfigDict:
  """Fields of `config.train` read by `train` (experiments derive theirs from this)."""
  return config_dict.ConfigDict(dict(
      num_steps=1000,
      seed=0,
      log_every=100,
      eval_every=1000,
      checkpoint_every=1000,
      max_checkpoints=2,
      num_devices=0,  # 0 = all visible devices.
      tensorboard=True,
  ))


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _all_finite(tree) -> bool:
  return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


def train(train_config: config_dict.ConfigDict, workdir: str, task: Task,
          mesh: jax.sharding.Mesh | None = None) -> tuple[Metrics, State]:
  """Runs (or resumes) training in `workdir` and returns the final metrics.

  Args:
    train_config: see `default_train_config`.
    workdir: output folder: metrics.jsonl, tensorboard/, checkpoints/, results.json.
    task: the method's pieces.
    mesh: device mesh; by default all devices (or `train_config.num_devices`) on one axis.

  Returns:
    (final metrics, final state). The metrics are the last training metrics (mean over the last
    log window) and the final evaluation, prefixed "train/" and "eval/".
  """
  if train_config.checkpoint_every % train_config.log_every:
    raise ValueError("train.checkpoint_every must be a multiple of train.log_every so that a "
                     "resumed run logs the same windows as an uninterrupted one.")
  os.makedirs(workdir, exist_ok=True)
  mesh = mesh or parallel.make_mesh(train_config.num_devices or None)
  num_steps = int(train_config.num_steps)
  init_rng, base_rng = jax.random.split(jax.random.PRNGKey(train_config.seed))

  state = parallel.replicate(task.init(init_rng), mesh)
  ckpt_dir = os.path.abspath(os.path.join(workdir, "checkpoints"))
  with _quiet():
    manager = ocp.CheckpointManager(
        ckpt_dir, options=ocp.CheckpointManagerOptions(
            max_to_keep=train_config.max_checkpoints, create=True,
            enable_async_checkpointing=False))
    latest = manager.latest_step()
  start = 0
  if latest is not None:
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    with _quiet():
      state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
    start = int(latest)
    logging.info("Resumed from checkpoint at step %d in %s", start, ckpt_dir)
  writer = metric_writer.MetricWriter(workdir, tensorboard=train_config.tensorboard)
  writer.truncate_after(start)

  step_fn = jax.jit(task.step, donate_argnums=0)
  window: list[Metrics] = []
  train_metrics: Metrics = {}
  eval_metrics: Metrics = {}
  t0, steps_timed = time.time(), 0

  def save(step_count):
    if not _all_finite(state):
      raise NonFiniteLossError(f"Parameters are not finite at step {step_count}; not saving.")
    with _quiet():
      manager.save(step_count, args=ocp.args.StandardSave(state), force=True)
      manager.wait_until_finished()

  def run_eval(step_count):
    if task.evaluate is None:
      return {}
    metrics = task.evaluate(state, step_count)
    writer.write(step_count, metrics, prefix="eval/")
    logging.info("eval @ %d: %s", step_count, json.dumps(metric_writer._to_python(metrics)))  # pylint: disable=protected-access
    return metrics

  try:
    for step in range(start, num_steps):
      batch = parallel.shard_batch(task.sample_batch(step), mesh)
      state, metrics = step_fn(state, batch, jax.random.fold_in(base_rng, step))
      metrics = jax.device_get(metrics)
      loss = float(metrics["loss"])
      if not math.isfinite(loss):
        last = manager.latest_step()
        raise NonFiniteLossError(
            f"Loss is {loss} at step {step}. Training stopped; the last good checkpoint "
            f"(step {last}) is kept in {ckpt_dir} and metrics up to it in {writer.path}. Lower the "
            "learning rate(s) or enable gradient clipping, then rerun the same command to resume.")
      window.append(metrics)
      steps_timed += 1
      step_count = step + 1
      if step_count % train_config.log_every == 0 or step_count == num_steps:
        train_metrics = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
        rate = steps_timed / max(time.time() - t0, 1e-9)
        train_metrics["steps_per_sec"] = rate
        writer.write(step_count, train_metrics, prefix="train/")
        logging.info("step %d/%d  loss %.4f  %.2f steps/s  ETA %s", step_count, num_steps,
                     train_metrics["loss"], rate, _format_eta((num_steps - step_count) / rate))
        window = []
      if step_count % train_config.eval_every == 0 and step_count != num_steps:
        eval_metrics = run_eval(step_count)
      if step_count % train_config.checkpoint_every == 0 or step_count == num_steps:
        save(step_count)
    eval_metrics = run_eval(num_steps)
  finally:
    writer.close()
    with _quiet():
      manager.close()
  final = {f"train/{k}": v for k, v in train_metrics.items() if k != "steps_per_sec"}
  final.update({f"eval/{k}": v for k, v in eval_metrics.items()})
  return final, state
