"""PNG figures of the warped-LMM experiments: QQ plots, Manhattan plots and warping curves."""

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position


def qq_plot(path: str, pvals: Mapping[str, Mapping[str, np.ndarray]], max_points: int = 20000,
            seed: int = 0) -> str:
  """QQ plots: one panel per key of `pvals` (e.g. transform), one line per method.

  Args:
    path: output PNG.
    pvals: panel -> method -> null p-values [K].
    max_points: random subsample per line (the extreme 1000 are always kept).
    seed: subsampling seed.
  """
  rng = np.random.default_rng(seed)
  panels = list(pvals)
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
  for ax, panel in zip(axes[0], panels):
    for method, p in pvals[panel].items():
      p = np.sort(np.asarray(p)[np.isfinite(p)])
      if p.size == 0:
        continue
      expected = (np.arange(1, p.size + 1) - 0.5) / p.size
      idx = np.arange(p.size)
      if p.size > max_points:
        idx = np.union1d(np.arange(1000), rng.choice(p.size, max_points, replace=False))
      ax.plot(-np.log10(expected[idx]), -np.log10(np.maximum(p[idx], 1e-300)), ".", ms=2,
              label=method)
    lim = ax.get_xlim()[1]
    ax.plot([0, lim], [0, lim], "k--", lw=0.8)
    ax.set_title(panel)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.legend(fontsize=7, markerscale=3)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def manhattan(path: str, pvals: Mapping[str, np.ndarray], chrom: np.ndarray, mbp: np.ndarray,
              threshold: float, title: str = "") -> str:
  """Stacked Manhattan plots (one row per method) with the genome-wide threshold as a line."""
  chroms = list(dict.fromkeys(chrom))  # Order of first appearance.
  offsets, pos, ticks = {}, np.zeros(len(chrom)), []
  start = 0.0
  for c in chroms:
    m = chrom == c
    offsets[c] = start
    pos[m] = mbp[m] + start
    ticks.append(start + 0.5 * mbp[m].max())
    start += mbp[m].max() + 10.0
  colours = np.array([chroms.index(c) % 2 for c in chrom])
  fig, axes = plt.subplots(len(pvals), 1, figsize=(11, 2.6 * len(pvals)), squeeze=False)
  for ax, (method, p) in zip(axes[:, 0], pvals.items()):
    lp = -np.log10(np.maximum(np.asarray(p, np.float64), 1e-300))
    for k, col in enumerate(("tab:blue", "tab:gray")):
      sel = (colours == k) & np.isfinite(lp)
      ax.scatter(pos[sel], lp[sel], s=3, c=col)
    ax.axhline(-np.log10(threshold), color="r", lw=0.8, ls="--")
    ax.set_ylabel(f"{method}\n-log10 p")
    ax.set_xticks(ticks)
    ax.set_xticklabels(chroms, fontsize=7)
  axes[0, 0].set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def warping_curves(path: str, curves: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> str:
  """A grid of learnt warpings: each entry (title, y grid [G], f(y) [G])."""
  n = len(curves)
  cols = min(n, 4)
  rows = (n + cols - 1) // cols
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3 * rows), squeeze=False)
  for ax in axes.ravel()[n:]:
    ax.axis("off")
  for ax, (title, y, z) in zip(axes.ravel(), curves):
    ax.plot(y, z)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("y (original)")
    ax.set_ylabel("f(y)")
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
  return path


def save_dir(workdir: str) -> str:
  d = os.path.join(workdir, "figures")
  os.makedirs(d, exist_ok=True)
  return d
