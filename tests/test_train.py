"""The generic loop: resume after a kill equals an uninterrupted run; NaN stops with a message."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import chex

from metanas import metric_writer
from metanas import train


def _toy_task(nan_at=None, crash_at=None):
  """Linear regression by Adam with noisy (seeded) minibatches and a stochastic step."""
  opt = optax.adam(0.1)
  w_true = np.arange(1.0, 5.0, dtype=np.float32)

  def init(rng):
    params = {"w": jax.random.normal(rng, (4,))}
    return {"params": params, "opt": opt.init(params)}

  def step(state, batch, rng):
    def loss(p):
      noise = 0.01 * jax.random.normal(rng, batch["y"].shape)
      return jnp.mean((batch["x"] @ p["w"] - batch["y"] - noise) ** 2)
    value, g = jax.value_and_grad(loss)(state["params"])
    value = jnp.where(batch["poison"][0] > 0, jnp.nan, value)
    upd, o = opt.update(g, state["opt"])
    return {"params": optax.apply_updates(state["params"], upd), "opt": o}, {"loss": value}

  def sample_batch(step_num):
    if crash_at is not None and step_num == crash_at:
      raise KeyboardInterrupt("simulated kill")
    rng = np.random.default_rng([7, step_num])
    x = rng.normal(size=(8, 4)).astype(np.float32)
    poison = np.full((8,), float(step_num == nan_at), np.float32)
    return {"x": x, "y": x @ w_true, "poison": poison}

  def evaluate(state, step_num):
    return {"w_err": float(jnp.abs(state["params"]["w"] - w_true).max())}

  return train.Task(init=init, step=step, sample_batch=sample_batch, evaluate=evaluate)


def _config(num_steps=12):
  c = train.default_train_config()
  c.num_steps = num_steps
  c.log_every = 2
  c.eval_every = 6
  c.checkpoint_every = 4
  c.tensorboard = False
  return c


@pytest.mark.parametrize("kill_at", [5, 8])
def test_resume_equals_uninterrupted(tmp_path, kill_at):
  ref_metrics, ref_state = train.train(_config(), str(tmp_path / "ref"), _toy_task())
  wd = str(tmp_path / "killed")
  with pytest.raises(KeyboardInterrupt):
    train.train(_config(), wd, _toy_task(crash_at=kill_at))
  metrics, state = train.train(_config(), wd, _toy_task())
  chex.assert_trees_all_close(jax.device_get(state), jax.device_get(ref_state), rtol=0, atol=0)
  assert metrics == ref_metrics
  # The metric log is the same as the uninterrupted one, without duplicated steps.
  strip = lambda rs: [{k: v for k, v in r.items() if k != "train/steps_per_sec"} for r in rs]
  assert strip(metric_writer.read_metrics(wd)) == strip(
      metric_writer.read_metrics(str(tmp_path / "ref")))


def test_nan_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
  wd = str(tmp_path / "nan")
  with pytest.raises(train.NonFiniteLossError, match=r"Loss is nan at step 9.*step 8"):
    train.train(_config(), wd, _toy_task(nan_at=9))
  assert sorted(os.listdir(os.path.join(wd, "checkpoints")))[-1] == "8"
  # Restarting without the poison resumes from step 8 and finishes.
  metrics, _ = train.train(_config(), wd, _toy_task())
  assert np.isfinite(metrics["train/loss"])


def test_metrics_written_as_json_lines_and_tensorboard(tmp_path):
  c = _config(4)
  c.tensorboard = True
  train.train(c, str(tmp_path), _toy_task())
  records = metric_writer.read_metrics(str(tmp_path))
  assert [r["step"] for r in records if "train/loss" in r] == [2, 4]
  assert any("eval/w_err" in r for r in records)
  assert os.listdir(tmp_path / "tensorboard")
  json.dumps(records)


def test_checkpoint_interval_must_align_with_logging(tmp_path):
  c = _config()
  c.checkpoint_every = 3
  with pytest.raises(ValueError, match="multiple of train.log_every"):
    train.train(c, str(tmp_path), _toy_task())
