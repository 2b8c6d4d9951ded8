"""Image classification data for HANT: Fashion-MNIST (offline .npz) or ImageNet via TFDS.

Returns float32 images [N, hw, hw, c] normalised to zero mean / unit variance (per dataset), int
labels, and a validation split carved from the training set (used for scores and early checks;
the test split is only used for reported accuracy).
"""

import numpy as np

from metanas.data import npz


def _split(x_train, y_train, x_test, y_test, num_val, num_train, num_test, seed):
  rng = np.random.default_rng(seed)
  perm = rng.permutation(len(x_train))
  val, tr = perm[:num_val], perm[num_val:]
  if num_train:
    tr = tr[:num_train]
  if num_test:
    x_test, y_test = x_test[:num_test], y_test[:num_test]
  return {"x_train": x_train[tr], "y_train": y_train[tr], "x_val": x_train[val],
          "y_val": y_train[val], "x_test": x_test, "y_test": y_test}


def load(cfg, data_dir: str | None, image_hw: int, image_c: int) -> dict:
  """Loads `cfg.name` ("fashion_mnist" npz, or "imagenet2012" / any TFDS image dataset).

  Args:
    cfg: has name, source ("npz" | "tfds"), num_val, num_train (0 = all), num_test (0 = all), seed.
    data_dir: npz folder (None: $METANAS_DATA_DIR) or TFDS data_dir.
    image_hw, image_c: network input size; images are resized / channel-replicated to it.
  """
  if cfg.source == "npz":
    a = npz.load(cfg.name, data_dir)
    xs = [_prep(a[k], image_hw, image_c) for k in ("x_train", "x_test")]
    ys = [a[k].astype(np.int32) for k in ("y_train", "y_test")]
  elif cfg.source == "tfds":
    xs, ys = [], []
    limits = {"train": (cfg.num_train + cfg.num_val) or None, cfg.tfds_test_split: cfg.num_test or None}
    for split in ("train", cfg.tfds_test_split):
      x, y = _read_tfds(cfg.name, split, data_dir, limits[split], image_hw)
      xs.append(_prep(x, image_hw, image_c))
      ys.append(y)
  else:
    raise ValueError(f"Unknown data source {cfg.source!r}; use 'npz' or 'tfds'.")
  mean, std = float(xs[0].mean()), float(xs[0].std()) + 1e-6
  xs = [((x - mean) / std).astype(np.float32) for x in xs]
  return _split(xs[0], ys[0], xs[1], ys[1], cfg.num_val, cfg.num_train, cfg.num_test, cfg.seed)


def _prep(x: np.ndarray, hw: int, c: int) -> np.ndarray:
  """u8 [N, h, w] or [N, h, w, ch] -> float32 [N, hw, hw, c] (nearest resize, channel repeat)."""
  x = x.astype(np.float32) / 255.0
  if x.ndim == 3:
    x = x[..., None]
  if x.shape[1] != hw or x.shape[2] != hw:
    ri = (np.arange(hw) * x.shape[1] / hw).astype(int)
    ci = (np.arange(hw) * x.shape[2] / hw).astype(int)
    x = x[:, ri][:, :, ci]
  if x.shape[-1] != c:
    x = np.repeat(x[..., :1], c, axis=-1) if x.shape[-1] == 1 else x[..., :c]
  return x


def _read_tfds(name: str, split: str, data_dir: str | None, limit: int | None, hw: int):
  """Reads (images resized to hw x hw, labels) through TFDS's random-access source (no TF needed)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  n = len(source) if limit is None else min(limit, len(source))
  images, labels = [], []
  for i in range(n):
    r = source[i]
    im = np.asarray(r["image"])
    if im.ndim == 3 and im.shape[-1] == 1:
      im = im[..., 0]
    images.append(np.asarray(Image.fromarray(im).resize((hw, hw), Image.BILINEAR), np.uint8))
    labels.append(int(r["label"]))
  return np.stack(images), np.asarray(labels, np.int32)
