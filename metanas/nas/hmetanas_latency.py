"""Task-agnostic layer-wise latency profiling of the H-Meta-NAS search space (paper Sec. 3.3).

Each distinct block configuration (kernel, c_in, c_out, input size) and each head configuration is
timed once per device and stored in a `latency.LatencyTable`; a sub-network's latency is the sum of
its layers' entries plus one "dispatch" entry. Measured devices time every layer in its own jitted
call, which pays the per-call dispatch cost once per layer, whereas a whole network pays it once;
so the measured cost of an empty jitted call is subtracted from every layer and added back once per
network (the "dispatch" key). Analytic devices (roofline, `latency.analytic_latency_ms`) model
their per-layer overhead in the entries and have dispatch = 0.

Timing uses the MINIMUM over repeats, taken in several interleaved passes over all layers
(`latency.measure_in_subprocess(..., reduce="min", rounds=ROUNDS)`), rather than a median of
consecutive calls: on a shared, oversubscribed CPU a microsecond-scale layer is often pre-empted and
the median can be off by 100x, whereas the minimum over passes spread in time approaches the
uncontended cost.

Latencies are for deployment, so the measured functions use XLA's native convolution ("lax") and
the plain (sliced) network, not the masked supernet.
"""

import concurrent.futures
import os

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from metanas.hardware import latency
from metanas.nas import search_space as ss
from metanas.nas import supernet

DISPATCH_KEY = ss.DISPATCH_KEY
ROUNDS = 5  # Interleaved timing passes over all layers.


def _block(x, kernel, bias, scale, shift):
  y = jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
  return supernet._norm_relu(y, scale, shift)  # pylint: disable=protected-access


def build_layer(spec: dict, batch_size: int):
  """`measure_in_subprocess` builder for one table entry (spec from `ss.all_layer_specs`)."""
  if spec["kind"] == "dispatch":
    x = jnp.ones((batch_size, 4), jnp.float32)
    return DISPATCH_KEY, jax.jit(lambda x: x + 1.0), (x,)
  size, ci = int(spec["size"]), int(spec["c_in"])
  x = jnp.asarray(np.random.default_rng(0).random((batch_size, size, size, ci)), jnp.float32)
  if spec["kind"] == "conv":
    k, co = int(spec["kernel"]), int(spec["c_out"])
    args = (x, jnp.full((k, k, ci, co), 0.01), jnp.zeros((co,)), jnp.ones((co,)), jnp.zeros((co,)))
    return spec["key"], jax.jit(_block), args
  if spec["kind"] == "head":
    n = int(spec["num_classes"])
    fn = jax.jit(lambda x, w, b: jnp.mean(x, axis=(1, 2)) @ w + b)
    return spec["key"], fn, (x, jnp.full((ci, n), 0.01), jnp.zeros((n,)))
  raise ValueError(f"Unknown layer spec kind {spec['kind']!r}.")


def space_to_dict(space: ss.SearchSpace) -> dict:
  return {f: list(v) if isinstance(v, tuple) else v for f, v in space.__dict__.items()}


def space_from_dict(d: dict) -> ss.SearchSpace:
  return ss.SearchSpace(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def network_key(genes) -> str:
  return "net_" + "-".join(str(int(g)) for g in genes)


def build_network(spec: dict, batch_size: int):
  """Builder for a whole sub-network {"space": dict, "genes": list} (table validation)."""
  space = space_from_dict(spec["space"])
  genes = np.asarray(spec["genes"], np.int32)
  params = supernet.plain_init(space, genes, jax.random.PRNGKey(0))
  x = jnp.asarray(np.random.default_rng(0).random(
      (batch_size, space.image_size, space.image_size, space.in_channels)), jnp.float32)
  fn = jax.jit(lambda p, x: supernet.plain_apply(p, x, conv_impl="lax"))
  return network_key(genes), fn, (params, x)


def analytic_table(space: ss.SearchSpace, device: latency.Device) -> latency.LatencyTable:
  """Roofline table: blocks cost a stride-2 conv plus one extra pass over the output (norm and
  ReLU); heads a pooling pass plus a dense layer. FLOPs and bytes at the device's batch size."""
  b = device.batch_size
  costs = {DISPATCH_KEY: (0.0, 0.0)}
  for s in ss.all_layer_specs(space):
    if s["kind"] == "conv":
      f, by = latency.conv2d_cost(b, s["size"], s["size"], s["c_in"], s["c_out"], s["kernel"],
                                  stride=2)
      out = -(-s["size"] // 2)
      by += 2 * 4 * b * out * out * s["c_out"]
    else:
      f, by = latency.dense_cost(b, s["c_in"], s["num_classes"])
      by += 4 * b * s["size"] ** 2 * s["c_in"]
    costs[s["key"]] = (f, by)
  table = latency.LatencyTable.from_costs(device, costs)
  table.entries[DISPATCH_KEY] = 0.0
  return table


def measured_table(space: ss.SearchSpace, device: latency.Device, repeats: int = 10,
                   timeout_s: float | None = None) -> latency.LatencyTable:
  """Times every layer configuration of `space` on this CPU under the device's thread setting."""
  specs = [{"kind": "dispatch", "key": DISPATCH_KEY}] + ss.all_layer_specs(space)
  if device.kind != "measured":
    raise ValueError(f"Device {device.name!r} is analytic; use analytic_table.")
  return latency.measure_layer_table("metanas.nas.hmetanas_latency:build_layer", specs, device,
                                     overhead_key=DISPATCH_KEY, repeats=repeats,
                                     timeout_s=timeout_s, reduce="min", rounds=ROUNDS)


def measure_min_in_subprocess(builder: str, specs: list[dict], device: latency.Device,
                              warmup: int = 2, repeats: int = 20,
                              timeout_s: float | None = None) -> dict[str, float]:
  """{key: minimum wall ms over `repeats` calls in ROUNDS interleaved passes} of every spec, in a
  worker process pinned to the device's thread setting (`latency.measure_in_subprocess`)."""
  if device.kind != "measured":
    raise ValueError(f"Device {device.name!r} is analytic; use analytic_table.")
  return latency.measure_in_subprocess(builder, specs, device, warmup=warmup, repeats=repeats,
                                       timeout_s=timeout_s, reduce="min", rounds=ROUNDS)


def predict(table: latency.LatencyTable, space: ss.SearchSpace, genes) -> float:
  """Predicted latency (ms) of one architecture: sum of its layer entries plus dispatch."""
  return table.predict(ss.cost_keys(space, genes))


def build_tables(space: ss.SearchSpace, device_names, out_dir: str | None = None,
                 repeats: int = 10) -> dict:
  """{device name: table}; tables found in `out_dir` (latency_<device>.json) are reused. Measured
  devices are profiled concurrently (each in its own worker process)."""
  def one(name):
    path = os.path.join(out_dir, f"latency_{name}.json") if out_dir else None
    if path and os.path.exists(path):
      table = latency.LatencyTable.load(path)
      if all(s["key"] in table.entries for s in ss.all_layer_specs(space)):
        return table
    device = latency.get_device(name)
    table = (measured_table(space, device, repeats) if device.kind == "measured"
             else analytic_table(space, device))
    if path:
      table.save(path)
    return table
  with concurrent.futures.ThreadPoolExecutor(max(1, len(device_names))) as pool:
    tables = dict(zip(device_names, pool.map(one, device_names)))
  return tables


def validate_table(table: latency.LatencyTable, space: ss.SearchSpace, genes: np.ndarray,
                   repeats: int = 10) -> dict:
  """Predicted vs measured latency of whole sub-networks on a measured device.

  Args:
    genes: int [n, num_genes] architectures (the issue asks for >= 30 random ones).

  Returns:
    dict with predicted/measured lists (ms), Pearson and Spearman correlation, mean absolute error
    (ms) and mean absolute relative error.
  """
  specs = [{"space": space_to_dict(space), "genes": [int(v) for v in g]} for g in genes]
  measured = measure_min_in_subprocess("metanas.nas.hmetanas_latency:build_network", specs,
                                       table.device, repeats=repeats)
  meas = np.array([measured[network_key(g)] for g in genes])
  pred = np.array([predict(table, space, g) for g in genes])
  return {"predicted_ms": pred.tolist(), "measured_ms": meas.tolist(),
          "pearson": float(stats.pearsonr(pred, meas)[0]),
          "spearman": float(stats.spearmanr(pred, meas)[0]),
          "mean_abs_error_ms": float(np.mean(np.abs(pred - meas))),
          "mean_rel_error": float(np.mean(np.abs(pred - meas) / meas))}

