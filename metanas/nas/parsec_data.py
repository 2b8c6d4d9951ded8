"""Image classification data for the PARSEC search: npz (Fashion-MNIST, MNIST) or TFDS (CIFAR-10).

Returns float32 NHWC images standardised with the training mean/std, optionally average-pooled by
an integer factor (the `:cpu` runs search on 14 x 14 Fashion-MNIST to fit a shared 2-core CPU).
"""

import numpy as np

from metanas.data import npz
from metanas.data import tfds_source

TFDS_IMAGE_SETS = ("cifar10", "mnist", "fashion_mnist")


def _pool(x: np.ndarray, factor: int) -> np.ndarray:
  if factor == 1:
    return x
  n, h, w, c = x.shape
  if h % factor or w % factor:
    raise ValueError(f"data.downsample={factor} must divide the image size {h}x{w}.")
  return x.reshape(n, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


def load(name: str, source: str = "npz", data_dir: str | None = None,
         downsample: int = 1) -> dict[str, np.ndarray]:
  """x_train f32[N, H, W, C], y_train int32[N], x_test, y_test (standardised, pooled)."""
  if source == "npz":
    raw = npz.load(name, data_dir)
  elif source == "tfds":
    if name not in TFDS_IMAGE_SETS:
      raise ValueError(f"data.name={name!r} is not a TFDS image set here; use {TFDS_IMAGE_SETS}.")
    raw = {}
    for split in ("train", "test"):
      records = tfds_source.read_split(name, split, data_dir)
      raw[f"x_{split}"], raw[f"y_{split}"] = records["image"], records["label"]
  else:
    raise ValueError(f"data.source must be 'npz' or 'tfds', got {source!r}.")
  out = {}
  for split in ("train", "test"):
    x = np.asarray(raw[f"x_{split}"], np.float32) / 255.0
    if x.ndim == 3:
      x = x[..., None]
    out[f"x_{split}"] = _pool(x, downsample)
    out[f"y_{split}"] = np.asarray(raw[f"y_{split}"], np.int32)
  mean = out["x_train"].mean(axis=(0, 1, 2))
  std = out["x_train"].std(axis=(0, 1, 2)) + 1e-6
  for split in ("train", "test"):
    out[f"x_{split}"] = ((out[f"x_{split}"] - mean) / std).astype(np.float32)
  return out


def search_splits(data: dict, num_train: int, num_val: int, num_test: int, seed: int) -> dict:
  """Disjoint search-train / search-val subsets of the training set, and a test subset."""
  n = data["x_train"].shape[0]
  if num_train + num_val > n:
    raise ValueError(f"num_train + num_val = {num_train + num_val} exceeds the {n} training "
                     "images; lower data.num_train / data.num_val.")
  perm = np.random.default_rng(seed).permutation(n)
  tr, va = perm[:num_train], perm[num_train:num_train + num_val]
  nt = min(num_test, data["x_test"].shape[0]) if num_test > 0 else data["x_test"].shape[0]
  return {"x_train": data["x_train"][tr], "y_train": data["y_train"][tr],
          "x_val": data["x_train"][va], "y_val": data["y_train"][va],
          "x_test": data["x_test"][:nt], "y_test": data["y_test"][:nt]}
