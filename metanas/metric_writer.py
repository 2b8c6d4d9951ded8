"""Metrics to the workdir: JSON lines (`metrics.jsonl`), TensorBoard summaries and `results.json`."""

import json
import math
import os
from typing import Any, Mapping

import numpy as np


def _to_python(value: Any) -> Any:
  if isinstance(value, Mapping):
    return {str(k): _to_python(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_to_python(v) for v in value]
  if hasattr(value, "tolist"):  # NumPy / JAX arrays and scalars.
    return _to_python(np.asarray(value).tolist())
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


class MetricWriter:
  """Appends scalar metrics to `workdir/metrics.jsonl` and TensorBoard event files.

  Re-opening an existing workdir appends; on resume, lines for steps past the restored checkpoint
  are dropped so the log matches an uninterrupted run.
  """

  def __init__(self, workdir: str, tensorboard: bool = True):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def truncate_after(self, step: int) -> None:
    """Drops logged lines with step > `step` (written after the last checkpoint)."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [l for l in f if l.strip() and json.loads(l).get("step", -1) <= step]
    with open(self.path, "w") as f:
      f.writelines(lines)

  def write(self, step: int, metrics: Mapping[str, Any], prefix: str = "") -> None:
    record = {"step": int(step)}
    record.update({f"{prefix}{k}": _to_python(v) for k, v in metrics.items()})
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for k, v in record.items():
        if k != "step" and isinstance(v, (int, float)):
          self._tb.add_scalar(k, v, step)
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All JSON-lines records of a workdir."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(l) for l in f if l.strip()]


def write_results(workdir: str, results: Mapping[str, Any], name: str = "results.json") -> str:
  """Writes final results (a nested dict) as JSON in the workdir; returns the path."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, name)
  with open(path, "w") as f:
    json.dump(_to_python(results), f, indent=2, sort_keys=True)
  return path


def write_config(workdir: str, config) -> str:
  """Writes the run's full config as `config.json` in the workdir (every method, via main.run)."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  with open(path, "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  return path
