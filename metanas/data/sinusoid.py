"""The sinusoid regression task family of the MAML paper (Finn et al. 2017, Sec. 5.1).

A task is y = A sin(x - phi) with amplitude A ~ U[0.1, 5], phase phi ~ U[0, pi], inputs x ~ U[-5, 5].
"""

import numpy as np

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, np.pi)
X_RANGE = (-5.0, 5.0)


def sample_params(rng: np.random.Generator, num_tasks: int,
                  amplitude=AMPLITUDE, phase=PHASE) -> tuple[np.ndarray, np.ndarray]:
  """Amplitudes and phases, each [num_tasks]."""
  return (rng.uniform(*amplitude, size=num_tasks).astype(np.float32),
          rng.uniform(*phase, size=num_tasks).astype(np.float32))


def make_tasks(rng: np.random.Generator, amplitude: np.ndarray, phase: np.ndarray,
               num_support: int, num_query: int) -> dict[str, np.ndarray]:
  """Support and query points for given task parameters.

  Returns:
    dict with support_x [num_tasks, num_support, 1], support_y (same), query_x
    [num_tasks, num_query, 1], query_y (same), and amplitude, phase [num_tasks].
  """
  t = amplitude.shape[0]
  x = rng.uniform(*X_RANGE, size=(t, num_support + num_query, 1)).astype(np.float32)
  y = (amplitude[:, None, None] * np.sin(x - phase[:, None, None])).astype(np.float32)
  return dict(support_x=x[:, :num_support], support_y=y[:, :num_support],
              query_x=x[:, num_support:], query_y=y[:, num_support:],
              amplitude=amplitude, phase=phase)


def sample_tasks(rng: np.random.Generator, num_tasks: int, num_support: int,
                 num_query: int) -> dict[str, np.ndarray]:
  """`num_tasks` random sinusoid tasks (see `make_tasks` for the arrays)."""
  amplitude, phase = sample_params(rng, num_tasks)
  return make_tasks(rng, amplitude, phase, num_support, num_query)
