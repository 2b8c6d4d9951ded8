"""Object x view image datasets for GPPVAE: rotated MNIST and COIL-20 (arXiv 1810.11738, Sec. 4).

Both give images [N, H, W] in [0, 1] with object ids and view ids (views are equally spaced angles
on the circle), and a split in which one view is held out entirely and a random fraction of the
remaining (object, view) pairs is held out: the held-out pairs are the out-of-sample test set.
"""

import numpy as np
from scipy import ndimage

from metanas.data import npz


def hold_out(obj: np.ndarray, view: np.ndarray, heldout_view: int, heldout_fraction: float,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Train / test indices: all samples of `heldout_view` plus a random fraction of the rest.

  Args:
    obj, view: [N] ids.
    heldout_view: the view id removed entirely from training.
    heldout_fraction: fraction of the other (object, view) pairs moved to the test set.
    seed: split seed.

  Returns:
    (train_idx [N_train], test_idx [N_test]), sorted int arrays.
  """
  if not 0.0 <= heldout_fraction < 1.0:
    raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}.")
  if heldout_view not in set(view.tolist()):
    raise ValueError(f"heldout_view {heldout_view} is not a view id of this dataset "
                     f"(0..{int(view.max())}).")
  rng = np.random.default_rng(seed)
  rest = np.flatnonzero(view != heldout_view)
  test_rest = rng.choice(rest, size=int(round(heldout_fraction * rest.size)), replace=False)
  test = np.union1d(np.flatnonzero(view == heldout_view), test_rest)
  train = np.setdiff1d(np.arange(obj.size), test)
  # Every object must keep at least one training image, else its features are unidentified.
  missing = np.setdiff1d(np.unique(obj), np.unique(obj[train]))
  if missing.size:
    raise ValueError(f"Objects {missing[:5].tolist()} have no training image; lower "
                     "heldout_fraction or use more views.")
  return train, test


def rotated_mnist(arrays: dict[str, np.ndarray], digit: int = 3, num_objects: int = 400,
                  num_views: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
  """`num_objects` training-set MNIST images of `digit`, each rotated to `num_views` angles.

  Rotation i is by 360 * i / num_views degrees (bilinear, zero fill, same 28 x 28 frame).

  Returns:
    {"images" f32 [P * V, 28, 28] in [0, 1], "obj" i32, "view" i32}, ordered object-major.
  """
  idx = np.flatnonzero(arrays["y_train"] == digit)
  if idx.size < num_objects:
    raise ValueError(f"Only {idx.size} training images of digit {digit}; asked for "
                     f"{num_objects}.")
  chosen = np.sort(np.random.default_rng(seed).choice(idx, size=num_objects, replace=False))
  base = arrays["x_train"][chosen].astype(np.float32) / 255.0
  images = np.empty((num_objects, num_views) + base.shape[1:], np.float32)
  for v in range(num_views):
    angle = 360.0 * v / num_views
    images[:, v] = ndimage.rotate(base, angle, axes=(1, 2), reshape=False, order=1,
                                  mode="constant", cval=0.0)
  images = np.clip(images, 0.0, 1.0).reshape((-1,) + base.shape[1:])
  obj = np.repeat(np.arange(num_objects), num_views).astype(np.int32)
  view = np.tile(np.arange(num_views), num_objects).astype(np.int32)
  return {"images": images, "obj": obj, "view": view}


def coil20(arrays: dict[str, np.ndarray], view_stride: int = 1) -> dict[str, np.ndarray]:
  """COIL-20 (20 objects x 72 turntable views, 32 x 32); every `view_stride`-th view kept.

  Returns:
    {"images" f32 [20 * 72 / stride, 32, 32] in [0, 1], "obj" i32, "view" i32 (re-indexed)}.
  """
  if 72 % view_stride:
    raise ValueError(f"view_stride must divide 72, got {view_stride}.")
  keep = arrays["view"] % view_stride == 0
  return {"images": arrays["images"][keep].astype(np.float32) / 255.0,
          "obj": arrays["object"][keep].astype(np.int32),
          "view": (arrays["view"][keep] // view_stride).astype(np.int32)}


def load(name: str, data_dir: str | None, cfg) -> dict[str, np.ndarray]:
  """The dataset named by `cfg.name` with its split ("train_idx", "test_idx", sizes) added.

  Args:
    name: "rotated_mnist" or "coil20".
    data_dir: the npz data directory (None: $METANAS_DATA_DIR).
    cfg: the config's `data` block (num_objects, num_views, digit, view_stride, heldout_view,
      heldout_fraction, split_seed).
  """
  if name == "rotated_mnist":
    ds = rotated_mnist(npz.load("mnist", data_dir), digit=cfg.digit, num_objects=cfg.num_objects,
                       num_views=cfg.num_views, seed=cfg.split_seed)
    num_views = cfg.num_views
  elif name == "coil20":
    ds = coil20(npz.load("coil20", data_dir), view_stride=cfg.view_stride)
    num_views = 72 // cfg.view_stride
    if cfg.num_objects < 20:  # Fewer objects for quick runs.
      keep = ds["obj"] < cfg.num_objects
      ds = {k: v[keep] for k, v in ds.items()}
  else:
    raise ValueError(f"Unknown dataset {name!r}; choose rotated_mnist or coil20.")
  train, test = hold_out(ds["obj"], ds["view"], cfg.heldout_view % num_views,
                         cfg.heldout_fraction, cfg.split_seed)
  ds.update(train_idx=train, test_idx=test, num_objects=int(ds["obj"].max()) + 1,
            num_views=num_views, heldout_view=cfg.heldout_view % num_views)
  return ds
