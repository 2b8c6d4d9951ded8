"""Layer-wise latency lookup tables: measured on this CPU, or from an analytic roofline model.

Hardware-aware NAS (H-Meta-NAS, arXiv 2109.04925, Sec. 3.3; HANT, arXiv 2107.10624, Sec. 3.3)
predicts a network's latency as the sum of per-layer latencies looked up in a table measured once
per device. This module holds the device registry, the table (with its device description, saved
as JSON), the timing primitive and a worker process that measures a list of layer specs under a
given thread setting.

Thread settings are per process in XLA, so a measured device's latencies are taken in a fresh
worker process: `threads=1` pins the worker to one core (`sched_setaffinity`) and turns off XLA's
intra-op thread pool; `threads=0` uses every core the machine has.

Analytic devices are models, not measurements: latency = per-layer overhead + max(FLOPs / peak,
bytes / bandwidth) (a roofline). Their constants describe device classes (a datacentre GPU, a
phone's big core, a microcontroller, an edge accelerator) and are documented in `DEVICES`; use them
to rank architectures across device classes, not to quote absolute times.
"""

import dataclasses
import importlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Iterable


@dataclasses.dataclass(frozen=True)
class Device:
  """One target device: measured on this machine or modelled analytically.

  Attributes:
    name: registry key.
    kind: "measured" (timed on this CPU) or "analytic" (roofline model).
    batch_size: the batch size latencies refer to.
    threads: measured devices only: 1 = one core, 0 = all cores.
    peak_gflops: analytic devices: peak compute, GFLOP/s.
    bandwidth_gbs: analytic devices: memory bandwidth, GB/s.
    overhead_ms: analytic devices: fixed cost per layer (kernel launch / dispatch), ms.
    description: what the device stands for.
  """
  name: str
  kind: str
  batch_size: int
  threads: int | None = None
  peak_gflops: float | None = None
  bandwidth_gbs: float | None = None
  overhead_ms: float = 0.0
  description: str = ""


DEVICES: dict[str, Device] = {
    "cpu_1t_b1": Device("cpu_1t_b1", "measured", batch_size=1, threads=1,
                        description="this machine's CPU, one core, batch 1 (on-device inference)"),
    "cpu_all_b25": Device("cpu_all_b25", "measured", batch_size=25, threads=0,
                          description="this machine's CPU, all cores, batch 25 (a 5-way 5-query "
                                      "episode)"),
    # Analytic device classes (roofline constants are order-of-magnitude class figures).
    "gpu_like": Device("gpu_like", "analytic", batch_size=25, peak_gflops=14_000.0,
                       bandwidth_gbs=900.0, overhead_ms=0.01,
                       description="datacentre GPU class (~14 TFLOP/s fp32, 900 GB/s HBM, 10 us "
                                   "kernel launch)"),
    "mobile_cpu": Device("mobile_cpu", "analytic", batch_size=1, peak_gflops=30.0,
                         bandwidth_gbs=15.0, overhead_ms=0.02,
                         description="phone big core class (~30 GFLOP/s NEON fp32, 15 GB/s LPDDR)"),
    "iot": Device("iot", "analytic", batch_size=1, peak_gflops=0.4, bandwidth_gbs=0.4,
                  overhead_ms=0.005,
                  description="microcontroller class (Cortex-M7 at ~400 MHz, ~0.4 GFLOP/s, "
                              "SRAM ~0.4 GB/s)"),
    "accelerator": Device("accelerator", "analytic", batch_size=1, peak_gflops=2_000.0,
                          bandwidth_gbs=8.0, overhead_ms=0.05,
                          description="edge NPU class (~2 TOP/s, 8 GB/s off-chip, 50 us per op "
                                      "dispatch): memory-bound for most layers"),
}


def get_device(name: str) -> Device:
  if name not in DEVICES:
    raise ValueError(f"Unknown device {name!r}; known devices: {', '.join(DEVICES)} "
                     "(metanas/hardware/latency.py DEVICES).")
  return DEVICES[name]


def conv2d_cost(batch: int, height: int, width: int, cin: int, cout: int, kernel: int,
                stride: int = 1, groups: int = 1, itemsize: int = 4) -> tuple[float, float]:
  """(FLOPs, bytes moved) of one 'SAME' conv layer on [batch, height, width, cin] inputs.

  FLOPs count a multiply-add as 2. Bytes = input + output activations + weights, each once.
  """
  ho, wo = -(-height // stride), -(-width // stride)
  macs = batch * ho * wo * cout * (cin // groups) * kernel * kernel
  weights = kernel * kernel * (cin // groups) * cout + cout
  bytes_moved = itemsize * (batch * height * width * cin + batch * ho * wo * cout + weights)
  return 2.0 * macs, float(bytes_moved)


def dense_cost(batch: int, din: int, dout: int, itemsize: int = 4) -> tuple[float, float]:
  """(FLOPs, bytes moved) of one dense layer."""
  return 2.0 * batch * din * dout, float(itemsize * (batch * (din + dout) + din * dout + dout))


def analytic_latency_ms(flops: float, bytes_moved: float, device: Device) -> float:
  """Roofline latency of one layer: overhead + max(compute time, memory time), in ms.

  Args:
    flops: FLOPs of the layer at the device's batch size.
    bytes_moved: bytes read and written at the device's batch size.
    device: an analytic `Device`.
  """
  if device.kind != "analytic":
    raise ValueError(f"Device {device.name!r} is measured, not analytic; build its table with "
                     "measure_in_subprocess.")
  compute_s = flops / (device.peak_gflops * 1e9)
  memory_s = bytes_moved / (device.bandwidth_gbs * 1e9)
  return device.overhead_ms + 1e3 * max(compute_s, memory_s)


@dataclasses.dataclass
class LatencyTable:
  """Latency (ms) per layer configuration key on one device; a network's latency is the sum."""
  device: Device
  entries: dict[str, float]
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __getitem__(self, key: str) -> float:
    if key not in self.entries:
      raise KeyError(f"Layer configuration {key!r} is not in the latency table of device "
                     f"{self.device.name!r} ({len(self.entries)} entries); profile it first.")
    return self.entries[key]

  def predict(self, keys: Iterable[str]) -> float:
    """Predicted latency (ms) of a network made of the given layer configurations."""
    return float(sum(self[k] for k in keys))

  def save(self, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {"device": dataclasses.asdict(self.device), "entries": self.entries,
               "metadata": self.metadata}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(payload, f, indent=1, sort_keys=True)
    os.replace(tmp, path)

  @classmethod
  def load(cls, path: str) -> "LatencyTable":
    try:
      with open(path) as f:
        payload = json.load(f)
      device = Device(**payload["device"])
      entries = {str(k): float(v) for k, v in payload["entries"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise ValueError(f"Cannot read latency table {path!r} ({e}); delete it to re-profile.") from e
    return cls(device, entries, payload.get("metadata", {}))

  @classmethod
  def from_costs(cls, device: Device, costs: dict[str, tuple[float, float]]) -> "LatencyTable":
    """Analytic table from {key: (flops, bytes)} at the device's batch size."""
    entries = {k: analytic_latency_ms(f, b, device) for k, (f, b) in costs.items()}
    return cls(device, entries, {"source": "analytic roofline", **host_description()})


def host_description() -> dict[str, Any]:
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
    cpu = names[0] if names else cpu
  except OSError:
    pass
  return {"host_cpu": cpu, "host_cores": os.cpu_count(), "python": platform.python_version(),
          "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def measure_ms(fn: Callable, *args, warmup: int = 2, repeats: int = 10) -> float:
  """Median wall-clock time (ms) of `fn(*args)`, waiting for the result; `fn` should be jitted.

  The first `warmup` calls (compilation, caches) are not timed.
  """
  import jax  # pylint: disable=g-import-not-at-top
  for _ in range(max(warmup, 1)):
    jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  times.sort()
  return 1e3 * times[len(times) // 2]


def measure_layer_table(builder: str, specs: list[dict], device: Device, overhead_key: str,
                        whole_call_keys: Iterable[str] = (), **measure_kwargs) -> LatencyTable:
  """Measured per-layer table with the per-call dispatch overhead taken out of the layer entries.

  Each layer is timed in its own jitted call, which pays a fixed dispatch overhead that a whole
  network pays only once. `specs` must include an empty call whose key is `overhead_key`; its time
  is subtracted from every other entry (clipped at 0) except `whole_call_keys` (entries that stand
  for a whole call, e.g. stem + head), and kept under `overhead_key` so a network can add it once.

  Args:
    builder, specs, device: see `measure_in_subprocess`.
    overhead_key: key of the empty-call spec.
    whole_call_keys: entries kept as measured.
    **measure_kwargs: warmup, repeats, timeout_s, reduce, rounds of `measure_in_subprocess`.
  """
  raw = measure_in_subprocess(builder, specs, device, **measure_kwargs)
  overhead = raw[overhead_key]
  keep = set(whole_call_keys) | {overhead_key}
  entries = {k: (v if k in keep else max(v - overhead, 0.0)) for k, v in raw.items()}
  meta = {"source": f"measured ({measure_kwargs.get('reduce', 'median')} over repeats)",
          "overhead_ms": overhead, "raw_ms": raw, **host_description()}
  return LatencyTable(device, entries, meta)


def dense_builder(spec: dict, batch_size: int):
  """Reference builder for `measure_in_subprocess`: one dense layer {"din": int, "dout": int}."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  din, dout = int(spec["din"]), int(spec["dout"])
  x = jnp.ones((batch_size, din), jnp.float32)
  w = jnp.ones((din, dout), jnp.float32) / din
  return f"dense_{din}x{dout}", jax.jit(lambda x, w: jnp.tanh(x @ w)), (x, w)


def _worker_env(device: Device) -> dict[str, str]:
  env = dict(os.environ)
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  if device.threads == 1:
    flags += ["--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=1"]
  env["XLA_FLAGS"] = " ".join(flags)
  env["JAX_PLATFORMS"] = "cpu"
  env["METANAS_PROFILE_THREADS"] = str(device.threads or 0)
  return env


def measure_in_subprocess(builder: str, specs: list[dict], device: Device,
                          warmup: int = 2, repeats: int = 10,
                          timeout_s: float | None = None, reduce: str = "median",
                          rounds: int = 1) -> dict[str, float]:
  """Measures every spec on a measured device in a fresh worker process.

  The worker compiles every spec first, then times them in `rounds` interleaved passes of
  `repeats // rounds` calls each, so a burst of contention from other processes hits one pass of
  every layer rather than every call of one layer; `reduce="min"` then keeps the least-disturbed
  call (robust on a shared machine), `"median"` the typical one.

  Args:
    builder: "package.module:function"; `function(spec, batch_size) -> (key, jitted_fn, args)`.
    specs: JSON-serialisable layer (or whole-network) descriptions.
    device: a measured `Device` (its threads and batch size are applied in the worker).
    warmup, repeats: see `measure_ms`.
    timeout_s: kill the worker after this long.
    reduce: "median" or "min" over all timed calls of a spec.
    rounds: number of interleaved passes.

  Returns:
    {key: latency in ms}; duplicate keys are measured once.
  """
  if reduce not in ("median", "min"):
    raise ValueError(f"reduce must be 'median' or 'min', got {reduce!r}.")
  if device.kind != "measured":
    raise ValueError(f"Device {device.name!r} is analytic; use LatencyTable.from_costs.")
  with tempfile.TemporaryDirectory() as tmp:
    spec_path, out_path = os.path.join(tmp, "specs.json"), os.path.join(tmp, "out.json")
    with open(spec_path, "w") as f:
      json.dump({"builder": builder, "specs": specs, "batch_size": device.batch_size,
                 "warmup": warmup, "repeats": repeats, "reduce": reduce, "rounds": rounds}, f)
    proc = subprocess.run([sys.executable, "-m", "metanas.hardware.latency", spec_path, out_path],
                          env=_worker_env(device), capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if proc.returncode != 0:
      raise RuntimeError(f"Latency worker for device {device.name!r} failed "
                         f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    with open(out_path) as f:
      return {k: float(v) for k, v in json.load(f).items()}


def _worker_main(spec_path: str, out_path: str) -> None:
  threads = int(os.environ.get("METANAS_PROFILE_THREADS", "0"))
  if threads > 0 and hasattr(os, "sched_setaffinity"):
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(cores[:threads]))
  with open(spec_path) as f:
    job = json.load(f)
  module_name, fn_name = job["builder"].split(":")
  build = getattr(importlib.import_module(module_name), fn_name)
  import jax  # pylint: disable=g-import-not-at-top
  compiled: dict[str, tuple] = {}
  for spec in job["specs"]:
    key, fn, args = build(spec, job["batch_size"])
    if key not in compiled:
      for _ in range(max(job["warmup"], 1)):  # Compile and warm every spec before timing any.
        jax.block_until_ready(fn(*args))
      compiled[key] = (fn, args)
  rounds = max(1, min(job.get("rounds", 1), job["repeats"]))
  per_round = max(1, job["repeats"] // rounds)
  times: dict[str, list[float]] = {k: [] for k in compiled}
  for _ in range(rounds):
    for key, (fn, args) in compiled.items():
      for _ in range(per_round):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times[key].append(1e3 * (time.perf_counter() - start))
  reduce = job.get("reduce", "median")
  out = {k: (min(v) if reduce == "min" else sorted(v)[len(v) // 2]) for k, v in times.items()}
  with open(out_path, "w") as f:
    json.dump(out, f)


if __name__ == "__main__":
  _worker_main(sys.argv[1], sys.argv[2])
