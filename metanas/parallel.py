"""Data parallelism over a named mesh axis with `jit` + `NamedSharding`.

The leading `[num_tasks]` (or batch) axis of a batch is split over the mesh axis `"data"`; parameters
and optimiser state are replicated. XLA inserts the cross-device reductions for means over tasks.
Multi-host runs call `jax.distributed.initialize` first (see `maybe_initialize_distributed`).
"""

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D mesh over the first `num_devices` devices (all by default)."""
  devices = jax.devices()
  num_devices = num_devices or len(devices)
  if num_devices > len(devices):
    raise ValueError(f"Asked for {num_devices} devices but only {len(devices)} are visible.")
  return jax.sharding.Mesh(np.asarray(devices[:num_devices]), (AXIS,))


def data_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding of arrays whose leading axis is split over devices."""
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def shard_batch(batch: Any, mesh: jax.sharding.Mesh) -> Any:
  """Places a host batch (pytree, leading axis divisible by the mesh size) on the mesh."""
  size = mesh.devices.size

  def put(x):
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] % size:
      raise ValueError(f"Leading batch axis {x.shape[:1]} is not divisible by the {size} devices "
                       "of the mesh; choose a meta-batch / batch size that is a multiple of it.")
    return jax.device_put(x, data_sharding(mesh))

  return jax.tree.map(put, batch)


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  return jax.device_put(tree, replicated(mesh))


def maybe_initialize_distributed(config) -> None:
  """Calls `jax.distributed.initialize` when the config asks for a multi-host run.

  Reads `config.distributed.{coordinator_address,num_processes,process_id}` if present; with
  `coordinator_address == "auto"` JAX discovers the cluster (TPU pods, SLURM).
  """
  dist = config.get("distributed") if hasattr(config, "get") else None
  if not dist or not dist.get("enabled", False):
    return
  if dist.get("coordinator_address", "auto") == "auto":
    jax.distributed.initialize()
  else:
    jax.distributed.initialize(coordinator_address=dist.coordinator_address,
                               num_processes=dist.num_processes, process_id=dist.process_id)
