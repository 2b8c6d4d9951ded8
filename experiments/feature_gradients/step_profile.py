r"""Time of one Feature Gradients step per feature as D grows (B = 64 rows, order 2).

  PYTHONPATH=. python experiments/feature_gradients/step_profile.py [D ...]

Explains the scaling table's super-linear step from D = 10k to 100k: a step (forward and backward
of the order-2 estimate, Adam) and one `triu_matvec` forward are timed after compilation, 20 calls
each, and printed per feature. Flat ns/feature within a range of D = linear time there.
"""

import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from metanas.selection import feature_gradients as fg
from metanas.selection import learnability


def _seconds_per_call(fn, calls: int = 20) -> float:
  """Mean wall time of `fn()` (which returns arrays to wait for) over `calls` calls."""
  t = time.perf_counter()
  for _ in range(calls):
    out = fn()
  jax.block_until_ready(out)
  return (time.perf_counter() - t) / calls


def main(dims) -> None:
  hp = fg.Hparams(batch_size=64, minibatches_per_step=1)
  coeffs = jnp.asarray(learnability.minimax_coefficients(hp.order)[0], jnp.float32)
  step = jax.jit(functools.partial(fg.train_step, hp=hp))
  matvec = jax.jit(learnability.triu_matvec)
  print("| D | [64, D] array MB | step ms | step ns / feature | triu_matvec ms | ns / feature |")
  print("|---|---|---|---|---|---|")
  for d in dims:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((1, 64, d), dtype=np.float32) / 10)
    y = jnp.asarray(rng.standard_normal((1, 64, 1), dtype=np.float32))
    state = fg.init_state(d, hp)
    batch = {"x": x, "y": y}
    jax.block_until_ready(step(state, batch, coeffs))  # Compile both before timing.
    jax.block_until_ready(matvec(x[0], y[0, :, 0]))
    ts = _seconds_per_call(lambda: step(state, batch, coeffs))
    tm = _seconds_per_call(lambda: matvec(x[0], y[0, :, 0]))
    print(f"| {d} | {64 * d * 4 / 2 ** 20:.1f} | {ts * 1e3:.1f} | {ts / d * 1e9:.0f} | "
          f"{tm * 1e3:.2f} | {tm / d * 1e9:.0f} |", flush=True)


if __name__ == "__main__":
  main([int(a) for a in sys.argv[1:]] or [2500, 5000, 10000, 20000, 40000, 100000])
