r"""Memory and time of GPPVAE low-memory stochastic backprop vs the naive full-batch gradient.

  python benchmarks/gppvae_memory.py --sizes 1000,4000,16000,64000 --out experiments/gppvae

For each N (synthetic 28 x 28 images, N / 16 objects x 16 views, MLP 784-128-16 nets (as in the `:cpu` configs), product
kernel of rank R = 8 x 9 = 72) and each mode ("lowmem": `gppvae.lowmem_grad` with minibatches of
128; "naive": `gppvae.naive_grad`, backprop through all N images at once), one subprocess
  - compiles the full-gradient function and reads XLA's buffer assignment (`memory_analysis()`:
    temp bytes = peak live intermediates, beyond inputs and outputs),
  - runs the compiled function once, timed (one full-data gradient = one epoch; compile time is
    excluded) unless N > --run_max,
  - reports its peak resident memory (ru_maxrss).
In the parent, for N <= --check_max the two gradients are compared on the same parameters and
noise. Results go to <out>/memory.json and <out>/memory.png.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

# Run as a script from any directory: make the checkout's `metanas` importable (also in workers).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _problem(n: int):
  import jax  # pylint: disable=g-import-not-at-top
  from metanas.gp import kernels, vae  # pylint: disable=g-import-not-at-top
  num_views = 16
  num_objects = -(-n // num_views)
  nets = vae.Networks(image_shape=(28, 28), latent_dim=16, hidden=(128,))
  spec = kernels.KernelSpec(num_objects=num_objects, num_views=num_views, object_dim=8,
                            view_dim=4)
  key = jax.random.key(0)
  images = jax.random.uniform(jax.random.fold_in(key, 1), (n, 28, 28))
  obj = jax.numpy.arange(n) // num_views
  view = jax.numpy.arange(n) % num_views
  eps = jax.random.normal(jax.random.fold_in(key, 2), (n, 16))
  params = vae.init(nets, jax.random.fold_in(key, 3))
  kparams = kernels.init(spec, jax.random.fold_in(key, 4))
  return nets, spec, params, kparams, images, obj, view, eps


def _grad_fn(mode: str, batch_size: int):
  import jax  # pylint: disable=g-import-not-at-top
  from metanas.gp import gppvae  # pylint: disable=g-import-not-at-top
  if mode == "lowmem":
    fn = lambda *a: gppvae.lowmem_grad(*a, batch_size)[:2]
  else:
    fn = gppvae.naive_grad
  return jax.jit(fn, static_argnums=(0, 1))


def worker(n: int, mode: str, batch_size: int, run: bool) -> dict:
  """Measures one (N, mode) in this process."""
  import jax  # pylint: disable=g-import-not-at-top
  prob = _problem(n)
  fn = _grad_fn(mode, batch_size)
  t0 = time.time()
  compiled = fn.lower(*prob).compile()
  out = {"n": n, "mode": mode, "compile_s": time.time() - t0}
  stats = compiled.memory_analysis()
  out["xla_temp_mb"] = stats.temp_size_in_bytes / 2**20
  out["xla_args_mb"] = stats.argument_size_in_bytes / 2**20
  if run:
    t0 = time.time()
    loss, _ = jax.block_until_ready(compiled(*prob[2:]))
    out["epoch_s"] = time.time() - t0
    out["loss"] = float(loss)
  out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return out


def check_agreement(n: int, batch_size: int) -> float:
  """Max |g_lowmem - g_naive| / max |g_naive| over all parameters, same inputs."""
  import jax  # pylint: disable=g-import-not-at-top
  prob = _problem(n)
  _, g_low = _grad_fn("lowmem", batch_size)(*prob)
  _, g_naive = _grad_fn("naive", batch_size)(*prob)
  diff = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(g_low),
                                                           jax.tree.leaves(g_naive)))
  scale = max(float(np.max(np.abs(b))) for b in jax.tree.leaves(g_naive))
  return diff / scale


def plot(rows: list[dict], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
  for mode, marker in (("lowmem", "o"), ("naive", "s")):
    rs = [r for r in rows if r["mode"] == mode]
    axes[0].plot([r["n"] for r in rs], [r["xla_temp_mb"] for r in rs], marker=marker, label=mode)
    timed = [r for r in rs if "epoch_s" in r]
    axes[1].plot([r["n"] for r in timed], [r["epoch_s"] for r in timed], marker=marker,
                 label=mode)
  for ax, name in zip(axes, ("XLA peak temporaries (MB)", "time per epoch (s)")):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N images (latents)")
    ax.set_title(name, fontsize=9)
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--sizes", default="1000,4000,16000,64000")
  ap.add_argument("--modes", default="lowmem,naive")
  ap.add_argument("--batch_size", type=int, default=128)
  ap.add_argument("--run_max", type=int, default=16000, help="largest N actually run (timed)")
  ap.add_argument("--check_max", type=int, default=4000, help="largest N for gradient check")
  ap.add_argument("--out", default="experiments/gppvae")
  ap.add_argument("--worker", default="")
  args = ap.parse_args()
  if args.worker:
    n, mode = args.worker.split(":")
    print(json.dumps(worker(int(n), mode, args.batch_size, int(n) <= args.run_max)))
    return
  rows = []
  for n in [int(s) for s in args.sizes.split(",")]:
    for mode in args.modes.split(","):
      cmd = [sys.executable, __file__, "--worker", f"{n}:{mode}", "--batch_size",
             str(args.batch_size), "--run_max", str(args.run_max)]
      env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
      if proc.returncode:
        rows.append({"n": n, "mode": mode, "error": proc.stderr.strip().splitlines()[-1:]})
      else:
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
      print(rows[-1], flush=True)
  agreement = {}
  for n in [int(s) for s in args.sizes.split(",") if int(s) <= args.check_max]:
    agreement[n] = check_agreement(n, args.batch_size)
    print(f"N={n}: max relative gradient difference lowmem vs naive = {agreement[n]:.2e}")
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "memory.json"), "w") as f:
    json.dump({"rows": rows, "grad_rel_diff": agreement}, f, indent=2)
  plot([r for r in rows if "error" not in r], os.path.join(args.out, "memory.png"))
  print("| N | mode | XLA temp MB | peak RSS MB | s / epoch |\n|---|---|---|---|---|")
  for r in rows:
    if "error" in r:
      print(f"| {r['n']} | {r['mode']} | failed: {r['error']} | | |")
    else:
      print(f"| {r['n']} | {r['mode']} | {r['xla_temp_mb']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r.get('epoch_s', float('nan')):.2f} |")


if __name__ == "__main__":
  main()
