"""Per-candidate latency lookup tables on measured CPU settings (HANT Sec. 3.3), and a check of the
additive model (network latency = sum of its layers' latencies) against whole-network timings.

Keys are `"{op}@{signature}"` (e.g. `"dws_k3_d1@14x14x32-32s1"`) plus `"stem_head"`. A jitted call
has a fixed dispatch overhead that a whole network pays once, not once per layer, so the table stores
per-layer latency minus the measured latency of an empty jitted call (`metadata["overhead_ms"]`,
clipped at 0), and the stem + head entry keeps it (`metanas.hardware.latency.measure_layer_table`,
whose worker is pinned to the device's threads).
"""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np

from metanas.hant import network
from metanas.hant import ops as ops_lib
from metanas.hardware import latency as hw

BUILDER = "metanas.hant.latency_tables:build"


def layer_key(op_name: str, layer: network.Layer) -> str:
  return f"{op_name}@{layer.signature}"


def arch_to_json(arch: network.Arch) -> dict:
  d = dataclasses.asdict(arch)
  d["layers"] = [dataclasses.asdict(l) for l in arch.layers]
  return d


def arch_from_json(d: dict) -> network.Arch:
  d = dict(d)
  d["layers"] = tuple(network.Layer(**l) for l in d["layers"])
  d["teacher_ops"] = tuple(d["teacher_ops"])
  return network.Arch(**d)


def build(spec: dict, batch_size: int):
  """Builder for `measure_in_subprocess`: spec -> (key, jitted fn, args) at `batch_size`.

  Spec kinds: {"kind": "noop"}; {"kind": "layer", "op", "layer": Layer fields};
  {"kind": "stem_head", "arch"}; {"kind": "net", "arch", "ops", "key"}.
  """
  rng = jax.random.key(0)
  kind = spec["kind"]
  if kind == "noop":
    x = jnp.ones((batch_size, 4))
    return "noop", jax.jit(lambda x: x + 1.0), (x,)
  if kind == "layer":
    layer = network.Layer(**spec["layer"])
    op = ops_lib.make_op(spec["op"], layer.c_in, layer.c_out, layer.stride)
    p = ops_lib.init(op, rng)
    x = jax.random.normal(rng, (batch_size, layer.h, layer.w, layer.c_in))
    return layer_key(op.name, layer), jax.jit(lambda p, x: ops_lib.apply(op, p, x)), (p, x)
  arch = arch_from_json(spec["arch"])
  images = jax.random.normal(rng, (batch_size, arch.image_hw, arch.image_hw, arch.image_c))
  if kind == "stem_head":
    p = network.init(arch, arch.teacher_ops, rng)
    fn = jax.jit(lambda p, x: network.head_apply(arch, p, _stem_to_last(arch, p, x)))
    return "stem_head", fn, (p, images)
  if kind == "net":
    ops = tuple(spec["ops"])
    p = network.init(arch, ops, rng)
    return spec["key"], jax.jit(lambda p, x: network.apply(arch, ops, p, x)), (p, images)
  raise ValueError(f"Unknown latency spec kind {kind!r}.")


def _stem_to_last(arch, p, x):
  """The stem, then a cheap reshape to the last layer's output shape (so the head gets real input).
  """
  y = network.stem_apply(arch, p, x)
  last = arch.layers[-1]
  h = -(-last.h // last.stride)
  y = jax.image.resize(y, (y.shape[0], h, h, y.shape[-1]), "nearest") if arch.layers else y
  reps = -(-last.c_out // y.shape[-1])
  return jnp.tile(y, (1, 1, 1, reps))[..., :last.c_out]


def build_table(arch: network.Arch, candidate_names: dict, device_name: str,
                repeats: int = 10) -> hw.LatencyTable:
  """Measures every (layer signature, candidate) once on a measured device.

  Args:
    arch: the network.
    candidate_names: {layer index: [op names]}.
    device_name: e.g. "cpu_1t_b1", "cpu_all_b25".
    repeats: timed calls per entry (median).
  """
  device = hw.get_device(device_name)
  specs, seen = [{"kind": "noop"}, {"kind": "stem_head", "arch": arch_to_json(arch)}], set()
  for i, layer in enumerate(arch.layers):
    for name in candidate_names[i]:
      key = layer_key(name, layer)
      if key not in seen:
        seen.add(key)
        specs.append({"kind": "layer", "op": name, "layer": dataclasses.asdict(layer)})
  return hw.measure_layer_table(BUILDER, specs, device, overhead_key="noop",
                                whole_call_keys=("stem_head",), repeats=repeats)


def network_keys(arch: network.Arch, ops: tuple) -> list:
  return ["stem_head"] + [layer_key(o, l) for o, l in zip(ops, arch.layers)]


def measure_networks(arch: network.Arch, selections: dict, device_name: str,
                     repeats: int = 10, reduce: str = "median", rounds: int = 1) -> dict:
  """Measured whole-network latency (ms) of each {key: ops tuple} on the device.

  By default the median of `repeats` back-to-back calls per network; `reduce="min"` with
  `rounds=repeats` instead interleaves the networks (one call of each per round) and keeps each
  one's fastest call, which is less disturbed by bursts of load (`hw.measure_in_subprocess`).
  """
  return measure_mixed({key: (arch, ops) for key, ops in selections.items()}, device_name,
                       repeats=repeats, reduce=reduce, rounds=rounds)


def measure_mixed(nets: dict, device_name: str, repeats: int = 10, reduce: str = "median",
                  rounds: int = 1) -> dict:
  """As `measure_networks` for {key: (arch, ops)} of different architectures, in one worker."""
  specs = [{"kind": "net", "arch": arch_to_json(arch), "ops": list(ops), "key": key}
           for key, (arch, ops) in nets.items()]
  return hw.measure_in_subprocess(BUILDER, specs, hw.get_device(device_name), repeats=repeats,
                                  reduce=reduce, rounds=rounds)


def additive_fit(predicted, measured) -> dict:
  """How well the summed table predicts measured latency: MAPE, Pearson r, Spearman rho."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  p, m = np.asarray(predicted, float), np.asarray(measured, float)
  out = {"mape": float(np.mean(np.abs(p - m) / m)), "n": int(len(p))}
  if len(p) > 2:
    out["pearson_r"] = float(stats.pearsonr(p, m)[0])
    out["spearman_rho"] = float(stats.spearmanr(p, m)[0])
  return out


def save_json(path: str, obj) -> None:
  with open(path, "w") as f:
    json.dump(obj, f, indent=1)
