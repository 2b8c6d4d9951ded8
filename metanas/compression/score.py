"""The Compression Score (Liu, Fusi & Mackey 2018, Sec. 4) and teacher-feature IS / FID analogues.

Compression Score of a synthetic set S for a fixed teacher T and a fixed student architecture:

  CS(S) = acc(student trained one pass on {(x, T(x)) : x in S}) / acc(same with |S| real points),

accuracies on the real test set, the ratio taken per seed (same student initialisation and batch
order seed in numerator and denominator) and reported as mean +- standard error over seeds. Real data
scores 1 in expectation; a generator that covers the teacher's decision-relevant regions scores
near 1; a collapsed or off-manifold generator scores lower.

Inception-Score-style (Salimans et al. 2016) and FID-style (Heusel et al. 2017) numbers use the
teacher as the "Inception network": its class probabilities and its penultimate features.
"""

from typing import Callable, Sequence

import numpy as np


def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
  """Sample mean and standard error (std with ddof=1 over sqrt(n); 0 for one value)."""
  v = np.asarray(values, np.float64)
  if v.size == 0:
    raise ValueError("mean_and_se needs at least one value.")
  se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0
  return float(v.mean()), se


def compression_score(fit_eval: Callable[[np.ndarray, int], float],
                      synthetic: Sequence[np.ndarray], real: Sequence[np.ndarray]) -> dict:
  """Compression Score over seeds.

  Args:
    fit_eval: `fit_eval(x_transfer, seed) -> test accuracy` of the fixed student trained one pass
      on x_transfer labelled by the fixed teacher, initialised from `seed`.
    synthetic: per seed, the synthetic set [n, ...].
    real: per seed, n real training points [n, ...] (same n as the synthetic set of that seed).

  Returns:
    {"mean", "se", "ratios" [seeds], "acc_synthetic" [seeds], "acc_real" [seeds]}.
  """
  if len(synthetic) != len(real) or not synthetic:
    raise ValueError(f"Need one real set per synthetic set (got {len(synthetic)} synthetic and "
                     f"{len(real)} real).")
  acc_s, acc_r = [], []
  for seed, (xs, xr) in enumerate(zip(synthetic, real)):
    if len(xs) != len(xr):
      raise ValueError(f"Seed {seed}: synthetic set has {len(xs)} points but the real reference "
                       f"has {len(xr)}; the Compression Score compares equal sizes.")
    acc_s.append(fit_eval(xs, seed))
    acc_r.append(fit_eval(xr, seed))
  ratios = np.asarray(acc_s) / np.asarray(acc_r)
  mean, se = mean_and_se(ratios)
  return {"mean": mean, "se": se, "ratios": ratios, "acc_synthetic": np.asarray(acc_s),
          "acc_real": np.asarray(acc_r)}


def inception_style_score(probs: np.ndarray, eps: float = 1e-12) -> float:
  """exp(E_x KL(p(y | x) || p(y))) with p(y) the mean prediction (Salimans et al. 2016, Sec. 4).

  Args:
    probs: [n, K] teacher class probabilities of the samples.

  Returns:
    A number in [1, K]: 1 when every prediction equals the marginal, K for confident predictions
    spread evenly over K classes.
  """
  p = np.clip(np.asarray(probs, np.float64), eps, 1.0)
  p /= p.sum(axis=1, keepdims=True)
  marginal = p.mean(axis=0, keepdims=True)
  return float(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1))))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
  w, v = np.linalg.eigh((a + a.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
  """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2}) between two Gaussians (Heusel et al. Eq. 6).

  tr (C1 C2)^{1/2} = tr (C1^{1/2} C2 C1^{1/2})^{1/2} (same eigenvalues), computed with symmetric
  eigendecompositions so it stays real for PSD inputs.
  """
  s1 = _psd_sqrt(np.asarray(cov1, np.float64))
  middle = s1 @ np.asarray(cov2, np.float64) @ s1
  tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
  diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def fid_style_score(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """Fréchet distance between Gaussians fit to two [n, f] feature sets (teacher features)."""
  fa, fb = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
  return frechet_distance(fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0),
                          np.cov(fb, rowvar=False))
