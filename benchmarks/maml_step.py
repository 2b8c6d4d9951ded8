r"""Times one second-order MAML meta-step (JAX formulations vs a plain PyTorch implementation).

  python benchmarks/maml_step.py                      # all cases, prints a markdown table
  python benchmarks/maml_step.py --cases conv4_mb8 --impls im2col,torch

Each (case, implementation) runs in its own subprocess, so "peak RSS" is that formulation's own
peak resident memory. Conv-4 cases: 5-way 1-shot Omniglot-shaped tasks (28x28x1, 64 filters,
15 queries per class), one inner step (lr 0.4), second order, meta-batch 8 or 32. Sinusoid case:
the 1-40-40-1 MLP, K=10, meta-batch 25. Before timing, every formulation's loss and gradient are
checked against the `lax` formulation on the same weights and tasks (the PyTorch one included, by
copying the weights).

Implementations:
  lax, im2col, taps, patches  convolution lowering (metanas.models.conv), tasks vmapped
  im2col_map               im2col with tasks mapped sequentially (lax.map) instead of vmapped
  im2col_chunk<c>          im2col, c tasks at a time, meta-gradients accumulated in a lax.scan
                           (`maml.meta_value_and_grad(task_chunk=c)`, config `maml.task_chunk`)
  torch                    PyTorch, Python loop over tasks, create_graph=True (benchmark only)
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

CASES = {
    "conv4_mb8": dict(kind="conv4", meta_batch=8),
    "conv4_mb32": dict(kind="conv4", meta_batch=32),
    "sinusoid_mb25": dict(kind="mlp", meta_batch=25),
    # The Omniglot `:cpu` training step: first order, meta-batch 16, 5 queries per class (JAX only).
    "conv4_cpu_fo_mb16": dict(kind="conv4", meta_batch=16, n_query=5, first_order=True),
}
IMPLS = ("lax", "im2col", "taps", "patches", "im2col_map", "im2col_chunk1", "im2col_chunk4",
         "torch")


def make_tasks(case, seed=0):
  rng = np.random.default_rng(seed)
  t = case["meta_batch"]
  if case["kind"] == "conv4":
    n, k, q = 5, 1, case.get("n_query", 15)
    return dict(support_x=rng.random((t, n * k, 28, 28, 1), np.float32),
                support_y=np.tile(np.arange(n, dtype=np.int32), (t, k)),
                query_x=rng.random((t, n * q, 28, 28, 1), np.float32),
                query_y=np.tile(np.repeat(np.arange(n, dtype=np.int32), q), (t, 1)))
  from metanas.data import sinusoid  # pylint: disable=g-import-not-at-top
  return sinusoid.sample_tasks(rng, t, 10, 10)


def jax_setup(case, impl):
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from metanas.meta import maml  # pylint: disable=g-import-not-at-top
  from metanas.models import maml_nets  # pylint: disable=g-import-not-at-top
  tasks = {k: jnp.asarray(v) for k, v in make_tasks(case).items() if k.endswith(("_x", "_y"))}
  if case["kind"] == "conv4":
    conv_impl = "im2col" if impl.startswith("im2col") else impl
    model = maml_nets.Conv4(num_classes=5, filters=64, conv_impl=conv_impl)
    loss_fn, lr = maml.cross_entropy_loss(model.apply), 0.4
    params = model.init(jax.random.PRNGKey(0), tasks["support_x"][0])
  else:
    model = maml_nets.MLP((40, 40), 1)
    loss_fn, lr = maml.mse_loss(model.apply), 0.01
    params = model.init(jax.random.PRNGKey(0), tasks["support_x"][0])
  meta = {"model": params, "inner_lr": maml.init_inner_lrs(params, 1, lr)}

  fo = case.get("first_order", False)
  if impl == "im2col_map":
    def loss(m, t):
      per = jax.lax.map(lambda task: maml.task_loss(m, task, loss_fn, 1, fo)[0], t)
      return jnp.mean(per)
  elif impl.startswith("im2col_chunk"):
    chunk = int(impl[len("im2col_chunk"):])
    def value_and_grad(m, t):
      (value, _), grads = maml.meta_value_and_grad(m, t, loss_fn, 1, fo, task_chunk=chunk)
      return value, grads
    return jax.jit(value_and_grad), meta, tasks
  else:
    def loss(m, t):
      return maml.meta_loss(m, t, loss_fn, 1, fo)[0]
  step = jax.jit(jax.value_and_grad(loss))
  return step, meta, tasks


def torch_setup(case, jax_params):
  """A plain PyTorch MAML step with the same weights; returns (step_fn, to_flat_grads)."""
  if case.get("first_order"):
    raise ValueError("The PyTorch reference is second order only.")
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  tasks = make_tasks(case)
  p = jax_params["params"]
  names, params = [], []
  conv4 = case["kind"] == "conv4"
  if conv4:
    for i in range(4):
      c, n = p[f"Conv_{i}"], p[f"BatchStatNorm_{i}"]
      for name, arr in ((f"Conv_{i}/kernel", np.transpose(c["kernel"], (3, 2, 0, 1))),
                        (f"Conv_{i}/bias", c["bias"]), (f"BatchStatNorm_{i}/scale", n["scale"]),
                        (f"BatchStatNorm_{i}/bias", n["bias"])):
        names.append(name)
        params.append(torch.tensor(np.asarray(arr), requires_grad=True))
    dense = p["Dense_0"]
  else:
    for i in range(2):
      for leaf in ("kernel", "bias"):
        names.append(f"Dense_{i}/{leaf}")
        params.append(torch.tensor(np.asarray(p[f"Dense_{i}"][leaf]).T.copy()
                                   if leaf == "kernel" else np.asarray(p[f"Dense_{i}"][leaf]),
                                   requires_grad=True))
    dense = p["Dense_2"]
  names += ["head/kernel", "head/bias"]
  params += [torch.tensor(np.asarray(dense["kernel"]).T.copy(), requires_grad=True),
             torch.tensor(np.asarray(dense["bias"]), requires_grad=True)]
  lr = 0.4 if conv4 else 0.01

  def same_pad(x, stride=2, k=3):
    h = x.shape[-1]
    out = -(-h // stride)
    total = max((out - 1) * stride + k - h, 0)
    return F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))

  def forward(w, x):
    if conv4:
      for i in range(4):
        x = F.conv2d(same_pad(x), w[4 * i], w[4 * i + 1], stride=2)
        x = F.batch_norm(x, None, None, w[4 * i + 2], w[4 * i + 3], training=True, eps=1e-5)
        x = F.relu(x)
      x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # NHWC flatten order, as in Flax.
      return F.linear(x, w[-2], w[-1])
    for i in range(2):
      x = F.relu(F.linear(x, w[2 * i], w[2 * i + 1]))
    return F.linear(x, w[-2], w[-1])

  def task_loss(w, x, y):
    out = forward(w, x)
    return F.cross_entropy(out, y) if conv4 else F.mse_loss(out, y)

  tx = lambda a: torch.tensor(np.transpose(a, (0, 3, 1, 2)) if conv4 else a)
  ty = (lambda a: torch.tensor(a).long()) if conv4 else torch.tensor
  data = [(tx(tasks["support_x"][i]), ty(tasks["support_y"][i]), tx(tasks["query_x"][i]),
           ty(tasks["query_y"][i])) for i in range(case["meta_batch"])]

  def step():
    for w in params:
      w.grad = None
    total = 0.0
    for sx, sy, qx, qy in data:
      grads = torch.autograd.grad(task_loss(params, sx, sy), params, create_graph=True)
      fast = [w - lr * g for w, g in zip(params, grads)]
      loss = task_loss(fast, qx, qy) / len(data)
      loss.backward()
      total += float(loss)
    return total

  def flat_grads():
    out = []
    for name, w in zip(names, params):
      g = w.grad.detach().numpy()
      if name.startswith("Conv") and name.endswith("kernel"):
        g = np.transpose(g, (2, 3, 1, 0))
      elif name.endswith("kernel"):
        g = g.T
      out.append(g.ravel())
    return np.concatenate(out)

  return step, flat_grads


def jax_flat(grads, kind):
  """Flattens a JAX gradient tree in the same order as torch_setup's parameter list."""
  p = grads["model"]["params"]
  out = []
  if kind == "conv4":
    for i in range(4):
      out += [p[f"Conv_{i}"]["kernel"], p[f"Conv_{i}"]["bias"], p[f"BatchStatNorm_{i}"]["scale"],
              p[f"BatchStatNorm_{i}"]["bias"]]
    out += [p["Dense_0"]["kernel"], p["Dense_0"]["bias"]]
  else:
    for i in range(3):
      out += [p[f"Dense_{i}"]["kernel"], p[f"Dense_{i}"]["bias"]]
  return np.concatenate([np.asarray(g).ravel() for g in out])


def prepare(case_name, impl):
  """Numerics check against `lax` and one warm-up call; returns (run_fn, info dict)."""
  import jax  # pylint: disable=g-import-not-at-top
  case = CASES[case_name]
  ref_step, meta, tasks = jax_setup(case, "lax")
  ref_loss, ref_grads = ref_step(meta, tasks)
  ref_flat = jax_flat(ref_grads, case["kind"])
  t0 = time.time()
  if impl == "torch":
    step, flat = torch_setup(case, jax.device_get(meta["model"]))
    loss = step()
    grads = flat()
    run = step
  else:
    step, meta, tasks = jax_setup(case, impl)
    loss, g = jax.block_until_ready(step(meta, tasks))
    grads = jax_flat(g, case["kind"])
    run = lambda: jax.block_until_ready(step(meta, tasks))
  first = time.time() - t0
  rel = float(np.abs(grads - ref_flat).max() / (np.abs(ref_flat).max() + 1e-12))
  return run, dict(case=case_name, impl=impl, loss=float(loss), ref_loss=float(ref_loss),
                   grad_max_rel_err=rel, first_call_s=first)


def serve(case_name, impl):
  """Interleaved mode worker: prepares, prints READY, then times one step per line on stdin."""
  run, info = prepare(case_name, impl)
  print("READY " + json.dumps(info), flush=True)
  for line in sys.stdin:
    if line.strip() != "run":
      break
    t = time.time()
    run()
    print(f"TIME {time.time() - t}", flush=True)
  info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print("DONE " + json.dumps(info), flush=True)


def interleaved(case_name, impls, rounds, env):
  """All implementations of one case live in their own worker process; rounds alternate them.

  On a machine shared with other jobs, slow phases then hit every implementation alike, and the
  per-round ratio to the first implementation is robust even when absolute times drift.
  """
  workers = {}
  for impl in impls:
    workers[impl] = subprocess.Popen(
        [sys.executable, __file__, "--_serve", f"{case_name}/{impl}"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=env)
    line = workers[impl].stdout.readline()  # Prepared one at a time: compile timings stay clean.
    if not line.startswith("READY "):
      raise RuntimeError(f"{case_name}/{impl} failed to start: {line!r}")
  times = {impl: [] for impl in impls}
  for r in range(rounds):
    order = impls[r % len(impls):] + impls[:r % len(impls)]
    for impl in order:
      time.sleep(0.5)  # Lets the previous worker's spinning thread pools go idle.
      workers[impl].stdin.write("run\n")
      workers[impl].stdin.flush()
      times[impl].append(float(workers[impl].stdout.readline().split()[1]))
  rows = []
  for impl in impls:
    workers[impl].stdin.write("stop\n")
    workers[impl].stdin.flush()
    info = json.loads(workers[impl].stdout.readline()[5:])
    workers[impl].wait()
    ratio = np.array(times[impl]) / np.array(times[impls[0]])
    rows.append(dict(info, step_s=float(np.median(times[impl])), min_s=float(min(times[impl])),
                     ratio_to_first=float(np.median(ratio)), rounds=rounds))
  return rows


def measure(case_name, impl, repeats):
  """Runs in a subprocess: checks numerics against `lax`, then times `repeats` steps."""
  run, info = prepare(case_name, impl)
  times = []
  for _ in range(repeats):
    t = time.time()
    run()
    times.append(time.time() - t)
  return dict(info, step_s=float(np.median(times)),
              peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cases", default=",".join(CASES))
  parser.add_argument("--impls", default=",".join(IMPLS))
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--xla_flags", default="", help="Extra XLA_FLAGS for the JAX runs.")
  parser.add_argument("--json_out", default="")
  parser.add_argument("--interleave", type=int, default=0,
                      help="If > 0: run all impls of a case side by side in worker processes and "
                           "alternate them for this many rounds (robust on a shared machine); "
                           "adds the median per-round time ratio to the first impl.")
  parser.add_argument("--_child", default="", help=argparse.SUPPRESS)
  parser.add_argument("--_serve", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._serve:
    serve(*args._serve.split("/"))
    return
  if args._child:
    case, impl = args._child.split("/")
    print("RESULT " + json.dumps(measure(case, impl, args.repeats)))
    return
  rows = []
  env = dict(os.environ)
  if args.xla_flags:
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + args.xla_flags).strip()
  if args.interleave:
    impls = args.impls.split(",")
    print(f"| case | impl | step (s), median of {args.interleave} | min (s) | "
          f"per-round ratio to {impls[0]} | first call incl. compile (s) | peak RSS (MB) | "
          "max rel. grad diff vs lax |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
      for r in interleaved(case, impls, args.interleave, env):
        rows.append(r)
        print(f"| {r['case']} | {r['impl']} | {r['step_s']:.3f} | {r['min_s']:.3f} | "
              f"{r['ratio_to_first']:.2f} | {r['first_call_s']:.1f} | {r['peak_rss_mb']:.0f} | "
              f"{r['grad_max_rel_err']:.1e} |", flush=True)
  if args.interleave:
    if args.json_out:
      with open(args.json_out, "w") as f:
        json.dump(rows, f, indent=1)
    return
  for case in args.cases.split(","):
    for impl in args.impls.split(","):
      r = subprocess.run([sys.executable, __file__, "--_child", f"{case}/{impl}",
                          "--repeats", str(args.repeats)], capture_output=True, text=True, env=env)
      line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
      if not line:
        print(f"{case}/{impl} failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        continue
      rows.append(json.loads(line[0][7:]))
      print(json.dumps(rows[-1]), file=sys.stderr)
  print("| case | impl | step (s) | steps/s | first call incl. compile (s) | peak RSS (MB) | "
        "loss | max rel. grad diff vs lax |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['case']} | {r['impl']} | {r['step_s']:.3f} | {1 / r['step_s']:.2f} | "
          f"{r['first_call_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['loss']:.5f} | "
          f"{r['grad_max_rel_err']:.1e} |")
  if args.json_out:
    with open(args.json_out, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  main()
