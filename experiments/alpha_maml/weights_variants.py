"""alpha-only comparison of QP estimators/settings on clustered and homogeneous sinusoids.

No meta-training: for each setting, the weights of the same 50 targets x 5 seeds as the `:cpu`
runs (`alpha_maml.sample_problem`), summarised by the mass on the target's cluster and the
effective number of sources 1 / sum alpha^2 (homogeneous sources: the closer to 12 the better).
"mixture error" is an oracle-side diagnostic that uses the true (A, phi): the mean squared gap
between the target's curve and the alpha-mixture of the source curves over x in [-5, 5].

  python experiments/alpha_maml/weights_variants.py > experiments/alpha_maml/weights_variants.txt
"""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np

from metanas.meta import alpha_maml
from metanas.meta import mmd

_HERE = os.path.dirname(os.path.abspath(__file__))
_solve = jax.jit(jax.vmap(mmd.solve_simplex_qp, (None, 0, 0, None, None, None)),
                 static_argnums=5)


def _config():
  spec = importlib.util.spec_from_file_location(
      "c", os.path.join(_HERE, "..", "..", "configs", "alpha_maml.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("cpu")


def _features(p):
  sz = jnp.concatenate([p["source_x"], p["source_y"]], -1)
  tz = jnp.concatenate([p["support_x"], p["support_y"]], -1)
  sz, tz = mmd.standardise(sz, jnp.asarray(p["source_mask"]), tz)
  flat = sz.reshape(-1, sz.shape[-1])
  return sz, tz, mmd.median_bandwidth(flat, jnp.ones(flat.shape[:1]))


def _point_means(sz, mask, tz, sigma2s):
  """mu_i(b) = mean_{a in S_i} k(a, b) for every labelled target point b: [T, n_T, N], for the
  average of RBF kernels (kernel means are linear in the kernel)."""
  pts = tz.reshape(-1, 1, tz.shape[-1])
  one = jax.vmap(lambda t, s: mmd.kernel_means(sz, mask, t, s)[1], (0, None))
  mu = sum(one(pts, s) for s in sigma2s) / len(sigma2s)
  return np.asarray(mu).reshape(tz.shape[0], tz.shape[1], -1)


def _noise_lambda(mu, n_bar, c=0.5):
  """lambda such that pure noise in kappa would move alpha by c * |uniform| (N_eff >= N/(1+c^2)).

  kappa = mean_b mu(b), so its noise covariance is Cov_b(mu(b)) / n_T (= the jackknife
  estimate). With equal n_i and a dominant ridge, alpha - uniform ~ (n / lambda) P eps
  (P: centring), so lambda = n s sqrt(N) / c with s^2 = E |P eps|^2.
  """
  num, m = mu.shape[-1], mu.shape[1]
  centred = mu - mu.mean(-1, keepdims=True)
  s2 = np.sum(centred.var(1, ddof=1), -1) / m
  return n_bar * np.sqrt(s2) * np.sqrt(num) / c


def _mixture_error(p, alpha):
  x = np.linspace(-5, 5, 201)
  fs = p["source_amplitude"][:, None] * np.sin(x[None] - p["source_phase"][:, None])
  ft = p["target_amplitude"][:, None] * np.sin(x[None] - p["target_phase"][:, None])
  return float(np.mean((ft - alpha @ fs) ** 2))


SETTINGS = {  # name: (bandwidth scales of the median sigma^2, unbiased, lambda or "noise")
    "median, V, lam 1 (old default)": ((1.0,), False, 1.0),
    "median, U, lam 1": ((1.0,), True, 1.0),
    "0.1 x median, V, lam 0.1 (old sharp)": ((0.1,), False, 0.1),
    "0.1 x median, U, lam 0.1": ((0.1,), True, 0.1),
    "0.03 x median, V, lam 0.1": ((0.03,), False, 0.1),
    "multi-kernel (0.01..3) x median, V, lam 1": ((0.01, 0.03, 0.1, 0.3, 1.0, 3.0), False, 1.0),
    "multi-kernel (0.01..3) x median, U, lam 1": ((0.01, 0.03, 0.1, 0.3, 1.0, 3.0), True, 1.0),
    "median, V, lam from kappa noise (c=0.5)": ((1.0,), False, "noise"),
    "0.1 x median, V, lam from kappa noise (c=0.5)": ((0.1,), False, "noise"),
}


def main():
  config = _config()
  problems = [("three", 4, 10), ("three", 4, 5), ("homogeneous", 12, 10), ("homogeneous", 12, 5)]
  print("| setting | " + " | ".join(f"{c} k={k}: mass / N_eff / mixture err (uniform)"
                                     for c, _, k in problems) + " |")
  print("|---" * (len(problems) + 1) + "|")
  for name, (scales, unbiased, lam) in SETTINGS.items():
    cells = []
    for cluster_set, per_cluster, k in problems:
      mass, neff, err, err_u = [], [], [], []
      for seed in range(config.num_seeds):
        c = _config()
        c.data.cluster_set, c.data.sources_per_cluster, c.data.k_shot = cluster_set, per_cluster, k
        p = alpha_maml.sample_problem(c, seed)
        mask = jnp.asarray(p["source_mask"])
        sz, tz, med = _features(p)
        sig = [s * med for s in scales]
        big_k = sum(mmd.kernel_means(sz, mask, tz[0], v, unbiased)[0] for v in sig) / len(sig)
        mu = _point_means(sz, mask, tz, sig)
        n_bar = float(np.mean(p["source_mask"].sum(1)))
        lams = _noise_lambda(mu, n_bar) if lam == "noise" else np.full(tz.shape[0], lam)
        alpha = np.asarray(_solve(big_k, jnp.asarray(mu.mean(1)), jnp.asarray(lams, jnp.float32),
                                  jnp.sum(mask, 1), jnp.ones(sz.shape[0], bool), 2000))
        st = alpha_maml.alpha_summary(alpha, p)
        mass.append(st["mass_on_true_group"]), neff.append(st["effective_sources"])
        err.append(_mixture_error(p, alpha))
        err_u.append(_mixture_error(p, np.full_like(alpha, 1 / alpha.shape[1])))
      cells.append(f"{np.mean(mass):.2f} / {np.mean(neff):.1f} / {np.mean(err):.3f} "
                   f"({np.mean(err_u):.3f})")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
  main()
