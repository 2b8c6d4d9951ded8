"""Figures for GPPVAE: ground truth vs predicted images of held-out (object, view) pairs."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np


def prediction_grid(path: str, truth: np.ndarray, preds: dict[str, np.ndarray],
                    is_test: np.ndarray, views: np.ndarray, heldout_view: int, title: str) -> None:
  """Saves a grid: per object, one row of ground truth then one row per model.

  Args:
    path: output .png.
    truth: [P, V, H, W] all images of P objects.
    preds: model name -> [P, V, H, W] predictions (only test cells are drawn).
    is_test: [P, V] bool, True where the pair was held out.
    views: the view ids (columns) to draw.
    heldout_view: the view held out entirely (its column title is marked).
    title: figure title.
  """
  rows = [("truth", truth)] + list(preds.items())
  num_obj = truth.shape[0]
  fig, axes = plt.subplots(num_obj * len(rows), len(views),
                           figsize=(0.6 * len(views), 0.62 * num_obj * len(rows)), squeeze=False)
  for p in range(num_obj):
    for r, (name, imgs) in enumerate(rows):
      row = p * len(rows) + r
      for c, v in enumerate(views):
        ax = axes[row, c]
        ax.set_xticks([])
        ax.set_yticks([])
        if name == "truth" or is_test[p, v]:
          ax.imshow(imgs[p, v], cmap="gray", vmin=0, vmax=1)
          if name == "truth" and is_test[p, v]:
            for s in ax.spines.values():  # Held-out cells framed in red.
              s.set_color("red")
              s.set_linewidth(1.5)
        else:  # Training cell: left blank (the axis stays so the row label shows).
          for s in ax.spines.values():
            s.set_visible(False)
        if c == 0:
          ax.set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
        if row == 0:
          ax.set_title(("*" if v == heldout_view else "") + str(v), fontsize=6)
  fig.suptitle(title + "  (red frame = held out; * = view never seen)", fontsize=8)
  fig.tight_layout(pad=0.1, rect=(0, 0, 1, 1 - 0.25 / fig.get_figheight()))
  fig.savefig(path, dpi=110)
  plt.close(fig)
