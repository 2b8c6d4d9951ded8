"""The memory claim: peak memory and step time of PARSEC vs DARTS as the op count grows.

For each op count we compile (a) one PARSEC child's forward+backward (arch traced, only the chosen
op runs on each edge), (b) a full PARSEC weight step over K children run sequentially in
`lax.scan`, and (c) DARTS's mixed-op forward+backward (softmax over all ops, all computed), and
read XLA's buffer assignment: `compiled.memory_analysis().temp_size_in_bytes` (activations and
other temporaries; parameters and inputs excluded). Step times are median wall times.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from metanas.nas import cell_net
from metanas.nas import cell_space
from metanas.nas import parsec


def _median_ms(fn, args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(1000 * (time.perf_counter() - t))
  return float(np.median(times))


def sweep(op_counts, num_nodes: int, channels: int, num_cells: int, image_size: int,
          in_channels: int, batch_size: int, num_samples: int, repeats: int = 3,
          seed: int = 0, on_row=None) -> list[dict]:
  """One row per op count: temp bytes and ms for parsec_child, parsec_step (K children), darts.

  `on_row(rows)` is called after each op count (to save partial results of a long sweep).
  """
  rows = []
  rng = jax.random.PRNGKey(seed)
  x = jax.random.normal(rng, (batch_size, image_size, image_size, in_channels))
  y = jnp.zeros((batch_size,), jnp.int32)
  for n in op_counts:
    if not 1 <= n <= len(cell_space.ALL_OPS):
      raise ValueError(f"memory.op_counts entries must be in [1, {len(cell_space.ALL_OPS)}].")
    space = cell_space.CellSpace(num_nodes=num_nodes, ops=cell_space.ALL_OPS[:n])
    spec = cell_net.NetSpec(space=space, in_channels=in_channels, channels=channels,
                            num_cells=num_cells, reduce_before=())
    params = cell_net.init(spec, rng)
    pi = cell_space.uniform_logits(space)
    archs = cell_space.sample(space, pi, rng, num_samples)
    arch = jax.tree.map(lambda a: a[0], archs)
    fns = {
        "parsec_child": (jax.jit(jax.value_and_grad(
            lambda p, a: parsec.child_loglik(spec, p, a, x, y))), (params, arch)),
        "parsec_step": (jax.jit(lambda p, a: parsec.weighted_grad(spec, p, a, x, y)),
                        (params, archs)),
        "darts": (jax.jit(jax.value_and_grad(
            lambda p, l: parsec.mixed_loglik(spec, p, l, x, y))), (params, pi)),
    }
    row = {"num_ops": n, "ops": list(space.ops)}
    for name, (fn, args) in fns.items():
      t = time.perf_counter()
      compiled = fn.lower(*args).compile()
      row[f"{name}_compile_s"] = time.perf_counter() - t
      mem = compiled.memory_analysis()
      row[f"{name}_temp_mb"] = (mem.temp_size_in_bytes / 2**20) if mem is not None else float("nan")
      row[f"{name}_ms"] = _median_ms(compiled, args, repeats)
    rows.append(row)
    if on_row is not None:
      on_row(rows)
  return rows


def table_markdown(rows: list[dict], num_samples: int) -> str:
  lines = ["| #ops | PARSEC child temp MB | PARSEC step (K=%d) temp MB | DARTS temp MB | "
           "PARSEC child ms | PARSEC step ms | DARTS ms |" % num_samples,
           "|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['num_ops']} | {r['parsec_child_temp_mb']:.2f} | "
                 f"{r['parsec_step_temp_mb']:.2f} | {r['darts_temp_mb']:.2f} | "
                 f"{r['parsec_child_ms']:.1f} | {r['parsec_step_ms']:.1f} | {r['darts_ms']:.1f} |")
  return "\n".join(lines)


def plot(rows: list[dict], path: str, num_samples: int) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = [r["num_ops"] for r in rows]
  fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
  ax[0].plot(n, [r["parsec_child_temp_mb"] for r in rows], "o-", label="PARSEC (one child)")
  ax[0].plot(n, [r["parsec_step_temp_mb"] for r in rows], "s--",
             label=f"PARSEC step (K={num_samples}, sequential)")
  ax[0].plot(n, [r["darts_temp_mb"] for r in rows], "^-", label="DARTS mixed op")
  ax[0].set_xlabel("number of candidate ops")
  ax[0].set_ylabel("XLA temp memory (MB)")
  ax[0].legend(fontsize=7)
  ax[1].plot(n, [r["parsec_child_ms"] for r in rows], "o-", label="PARSEC child fwd+bwd")
  ax[1].plot(n, [r["parsec_step_ms"] for r in rows], "s--", label=f"PARSEC step (K={num_samples})")
  ax[1].plot(n, [r["darts_ms"] for r in rows], "^-", label="DARTS fwd+bwd")
  ax[1].set_xlabel("number of candidate ops")
  ax[1].set_ylabel("ms per call")
  ax[1].set_yscale("log")
  ax[1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
