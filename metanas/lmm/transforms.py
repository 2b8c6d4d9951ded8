"""Fixed phenotype transformations: the simulation's non-linear distortions and two baselines.

Baselines (Fusi et al. 2014, Sec. 3): the rank-based inverse normal transform (Blom offsets) and
the Box-Cox transform with its lambda fitted by maximum likelihood (ignoring relatedness).
"""

from typing import Callable

import numpy as np
import scipy.special
import scipy.stats


def _exp(z):
  return np.exp(z)


def _logistic(z):
  return scipy.special.expit(2.0 * z)


def _cube(z):
  return z ** 3


def _mixture(z):
  # A sigmoidal step on top of an exponential tail: both compressed and stretched regions.
  return np.exp(0.5 * z) + 2.0 * scipy.special.expit(4.0 * (z - 0.5))


# Name -> monotone map applied to the standardised latent Gaussian phenotype z.
SIM_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda z: z,
    "exp": _exp,
    "logistic": _logistic,
    "cube": _cube,
    "mixture": _mixture,
}


def get_transform(name: str) -> Callable[[np.ndarray], np.ndarray]:
  if name not in SIM_TRANSFORMS:
    raise ValueError(f"Unknown simulation transform {name!r}; choose from "
                     f"{sorted(SIM_TRANSFORMS)}.")
  return SIM_TRANSFORMS[name]


def rank_inverse_normal(y: np.ndarray, offset: float = 3.0 / 8.0) -> np.ndarray:
  """Phi^{-1}((rank - offset) / (N - 2 offset + 1)), ties averaged. [N] -> [N]"""
  ranks = scipy.stats.rankdata(y)
  return scipy.stats.norm.ppf((ranks - offset) / (len(y) - 2.0 * offset + 1.0))


def box_cox(y: np.ndarray) -> tuple[np.ndarray, float]:
  """Box-Cox transform with ML lambda; y is shifted to min 1 std above zero if not positive.

  Returns:
    (transformed [N], lambda).
  """
  y = np.asarray(y, np.float64)
  if y.min() <= 0:
    y = y - y.min() + np.std(y)
  out, lam = scipy.stats.boxcox(y)
  return out, float(lam)
