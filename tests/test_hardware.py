"""Latency tables: device registry, analytic roofline, table round trip, measured worker."""

import dataclasses
import os

import jax
import jax.numpy as jnp
import pytest

from metanas.hardware import latency


def test_device_registry_has_measured_and_analytic_devices():
  kinds = {d.kind for d in latency.DEVICES.values()}
  assert kinds == {"measured", "analytic"}
  assert latency.get_device("cpu_1t_b1").threads == 1
  with pytest.raises(ValueError, match="Unknown device 'tpu9'.*cpu_1t_b1"):
    latency.get_device("tpu9")


def test_roofline_is_compute_or_memory_bound():
  dev = latency.get_device("gpu_like")
  flops, nbytes = latency.conv2d_cost(25, 28, 28, 64, 64, 3)
  assert flops == 2 * 25 * 28 * 28 * 64 * 64 * 9
  expected = dev.overhead_ms + 1e3 * max(flops / 14e12, nbytes / 900e9)
  assert latency.analytic_latency_ms(flops, nbytes, dev) == pytest.approx(expected)
  # Doubling the work never makes a layer faster; stride 2 quarters the FLOPs.
  f2, b2 = latency.conv2d_cost(25, 28, 28, 64, 64, 3, stride=2)
  assert f2 == flops / 4 and b2 < nbytes
  with pytest.raises(ValueError, match="measured"):
    latency.analytic_latency_ms(1.0, 1.0, latency.get_device("cpu_all_b25"))


def test_table_round_trips_with_device_and_predicts_sums(tmp_path):
  dev = latency.get_device("mobile_cpu")
  table = latency.LatencyTable.from_costs(
      dev, {"a": latency.dense_cost(1, 10, 10), "b": latency.conv2d_cost(1, 8, 8, 4, 8, 5)})
  path = str(tmp_path / "t" / "table.json")
  table.save(path)
  loaded = latency.LatencyTable.load(path)
  assert loaded.device == dev and loaded.entries == table.entries
  assert loaded.predict(["a", "b", "a"]) == pytest.approx(2 * table["a"] + table["b"])
  with pytest.raises(KeyError, match="'c' is not in the latency table of device 'mobile_cpu'"):
    loaded.predict(["a", "c"])
  (tmp_path / "bad.json").write_text("{not json")
  with pytest.raises(ValueError, match="delete it to re-profile"):
    latency.LatencyTable.load(str(tmp_path / "bad.json"))


def test_measure_ms_times_a_jitted_function():
  fn = jax.jit(lambda x: jnp.sin(x) @ x)
  ms = latency.measure_ms(fn, jnp.ones((64, 64)), warmup=1, repeats=3)
  assert 0.0 < ms < 1e3


def test_measured_worker_runs_under_thread_settings():
  specs = [{"din": 256, "dout": 256}, {"din": 256, "dout": 256}, {"din": 8, "dout": 8}]
  dev = dataclasses.replace(latency.get_device("cpu_1t_b1"), batch_size=4)
  out = latency.measure_in_subprocess("metanas.hardware.latency:dense_builder", specs, dev,
                                      warmup=1, repeats=3, timeout_s=120)
  assert set(out) == {"dense_256x256", "dense_8x8"}
  assert all(v > 0 for v in out.values())
  mins = latency.measure_in_subprocess("metanas.hardware.latency:dense_builder", specs, dev,
                                       warmup=1, repeats=4, reduce="min", rounds=2, timeout_s=120)
  assert set(mins) == set(out) and all(v > 0 for v in mins.values())
  with pytest.raises(ValueError, match="reduce must be 'median' or 'min'"):
    latency.measure_in_subprocess("metanas.hardware.latency:dense_builder", specs, dev,
                                  reduce="mean")
  with pytest.raises(RuntimeError, match="worker for device 'cpu_1t_b1' failed"):
    latency.measure_in_subprocess("metanas.no_such_module:f", specs, dev, timeout_s=120)


def test_layer_table_takes_dispatch_overhead_out_of_layer_entries():
  specs = [{"din": 8, "dout": 8}, {"din": 256, "dout": 256}, {"din": 128, "dout": 128}]
  dev = dataclasses.replace(latency.get_device("cpu_1t_b1"), batch_size=4)
  table = latency.measure_layer_table("metanas.hardware.latency:dense_builder", specs, dev,
                                      overhead_key="dense_8x8", whole_call_keys=("dense_128x128",),
                                      warmup=1, repeats=3, timeout_s=120)
  raw, overhead = table.metadata["raw_ms"], table.metadata["overhead_ms"]
  assert table.device == dev and overhead == raw["dense_8x8"] == table["dense_8x8"]
  assert table["dense_256x256"] == pytest.approx(max(raw["dense_256x256"] - overhead, 0.0))
  assert table["dense_128x128"] == raw["dense_128x128"]  # A whole call keeps its overhead.
