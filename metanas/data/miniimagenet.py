"""Mini-ImageNet (Vinyals et al. 2016; the Ravi & Larochelle 2017 split) episodic tasks.

Mini-ImageNet is not redistributable, so it is not in the metanas data folder. Two layouts are read
from `<data_dir>/miniimagenet/` (data_dir defaults to $METANAS_DATA_DIR):

- source="folder": one folder per split and per class, images of any size (resized to 84x84 RGB):
      miniimagenet/train/<class_name>/<anything>.jpg|.png   (64 classes x 600 images)
      miniimagenet/val/<class_name>/...                       (16 classes)
      miniimagenet/test/<class_name>/...                      (20 classes)
  (the layout produced by the usual `make_miniimagenet` scripts from the Ravi & Larochelle CSVs).
  The first read of a split writes `miniimagenet/<split>_84.npz` next to it and later reads use it.
- source="npz": only `miniimagenet/<split>_84.npz` with images uint8 [N, 84, 84, 3] and labels
  int [N] (class index within the split).

TFDS has no Mini-ImageNet builder, so there is no TFDS source.
"""

import os

import numpy as np
from PIL import Image

from metanas.data import npz

IMAGE_SIZE = 84
SPLITS = ("train", "val", "test")
_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def _root(data_dir: str | None) -> str:
  root = os.path.join(npz.resolve_data_dir(data_dir), "miniimagenet")
  return root


def _cache_path(root: str, split: str) -> str:
  return os.path.join(root, f"{split}_{IMAGE_SIZE}.npz")


def _read_folder(folder: str) -> dict[str, np.ndarray]:
  classes = sorted(c for c in os.listdir(folder) if os.path.isdir(os.path.join(folder, c)))
  if not classes:
    raise npz.DataError(f"Mini-ImageNet folder {folder!r} has no class sub-folders; expected "
                        f"{folder}/<class_name>/<image>.jpg (see metanas/data/miniimagenet.py).")
  images, labels = [], []
  for label, cls in enumerate(classes):
    files = sorted(f for f in os.listdir(os.path.join(folder, cls)) if f.lower().endswith(_EXTS))
    for f in files:
      with Image.open(os.path.join(folder, cls, f)) as im:
        im = im.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        images.append(np.asarray(im, np.uint8))
      labels.append(label)
  return {"images": np.stack(images), "labels": np.asarray(labels, np.int32),
          "class_names": np.asarray(classes)}


def load(data_dir: str | None, split: str, source: str = "folder") -> dict[str, np.ndarray]:
  """One split as images uint8 [N, 84, 84, 3] and labels int32 [N].

  Raises:
    ValueError: unknown split or source.
    npz.DataError: the files are missing (the message gives the expected layout).
  """
  if split not in SPLITS:
    raise ValueError(f"Unknown Mini-ImageNet split {split!r}; use one of {SPLITS}.")
  if source not in ("folder", "npz"):
    raise ValueError(f"Unknown Mini-ImageNet source {source!r}; use 'folder' or 'npz'.")
  root = _root(data_dir)
  cache = _cache_path(root, split)
  if os.path.exists(cache):
    with np.load(cache) as f:
      out = {"images": f["images"], "labels": f["labels"].astype(np.int32)}
  elif source == "npz":
    raise npz.DataError(f"Mini-ImageNet file {cache!r} not found; write images uint8 "
                        "[N, 84, 84, 3] and labels [N] there, or use source='folder' (layout in "
                        "metanas/data/miniimagenet.py).")
  else:
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
      raise npz.DataError(
          f"Mini-ImageNet split folder {folder!r} not found. Put the Ravi & Larochelle split "
          f"there as {root}/{{train,val,test}}/<class_name>/<image>.jpg (see "
          "metanas/data/miniimagenet.py).")
    out = _read_folder(folder)
    try:
      np.savez(cache, images=out["images"], labels=out["labels"])
    except OSError:
      pass  # A read-only data folder is fine; we just re-read next time.
  if out["images"].ndim != 4 or out["images"].shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
    raise npz.DataError(f"Mini-ImageNet {split} images have shape {out['images'].shape}; expected "
                        f"[N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3].")
  return {"images": out["images"], "labels": out["labels"]}


class MiniImageNetSampler:
  """N-way K-shot episodes from one split (deterministic given the NumPy generator)."""

  def __init__(self, arrays: dict[str, np.ndarray]):
    labels = arrays["labels"]
    self.classes = np.unique(labels)
    self.index = [np.flatnonzero(labels == c) for c in self.classes]
    self.images = arrays["images"]

  @property
  def num_classes(self) -> int:
    return len(self.classes)

  def sample(self, rng: np.random.Generator, num_tasks: int, spec) -> dict[str, np.ndarray]:
    """Episodes like `omniglot.OmniglotSampler.sample`, images float32 [.., 84, 84, 3] in [0, 1].

    Args:
      spec: `omniglot.EpisodeSpec` (n_way, k_shot, n_query).
    """
    n, k, q = spec.n_way, spec.k_shot, spec.n_query
    smallest = min(len(i) for i in self.index)
    if n > self.num_classes or k + q > smallest:
      raise ValueError(f"Cannot sample {n}-way tasks with {k}+{q} examples per class from "
                       f"{self.num_classes} classes with >= {smallest} images each.")
    classes = np.stack([rng.choice(self.num_classes, n, replace=False) for _ in range(num_tasks)])
    idx = np.empty((num_tasks, n, k + q), np.int64)
    for t in range(num_tasks):
      for j, c in enumerate(classes[t]):
        idx[t, j] = rng.choice(self.index[c], k + q, replace=False)
    x = self.images[idx].astype(np.float32) / 255.0  # [t, n, k+q, 84, 84, 3]
    y = np.broadcast_to(np.arange(n, dtype=np.int32)[None, :, None], (num_tasks, n, k + q))
    flat = lambda a, m: a.reshape((num_tasks, n * m) + a.shape[3:])
    return dict(support_x=flat(x[:, :, :k], k), support_y=flat(y[:, :, :k], k),
                query_x=flat(x[:, :, k:], q), query_y=flat(y[:, :, k:], q), classes=classes)
