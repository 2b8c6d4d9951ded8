"""TFDS as a second source for the datasets TFDS knows (omniglot, mnist, fashion_mnist).

For users with internet: `tfds.data_source` downloads and prepares the dataset once (in
`data_dir`, default ~/tensorflow_datasets) and we convert it to exactly the arrays of the offline
`.npz` files, so every experiment runs unchanged with `--config.data.source=tfds`. Uses TFDS's
random-access (array_record) reader, so TensorFlow is not needed.
"""

import numpy as np
from PIL import Image

from metanas.data import npz

TFDS_NAMES = {"omniglot": "omniglot", "mnist": "mnist", "fashion_mnist": "fashion_mnist"}


def read_split(name: str, split: str, data_dir: str | None) -> dict[str, np.ndarray]:
  """Every feature of one TFDS split, stacked: {feature: [N, ...]}.

  Raises:
    npz.DataError: the dataset cannot be opened (not prepared and no internet, wrong data_dir).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir)
  except Exception as e:  # TFDS raises several types for a missing/unprepared dataset.
    raise npz.DataError(
        f"Could not open TFDS dataset {name!r} split {split!r} ({type(e).__name__}: {e}). "
        "Prepare it with internet access (tfds.data_source downloads it once) or pass "
        "--config.data_dir=<folder holding the prepared dataset>.") from e
  records = [source[i] for i in range(len(source))]
  return {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}


def load(name: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
  """mnist / fashion_mnist as x_train u8[N,28,28], y_train, x_test, y_test (the npz layout)."""
  if name == "omniglot":
    return load_omniglot(data_dir)
  if name not in TFDS_NAMES:
    raise ValueError(f"TFDS has no builder for {name!r} here; available: {sorted(TFDS_NAMES)}.")
  out = {}
  for split in ("train", "test"):
    r = read_split(TFDS_NAMES[name], split, data_dir)
    out[f"x_{split}"] = r["image"][..., 0].astype(np.uint8)
    out[f"y_{split}"] = r["label"].astype(np.int64)
  return out


def _to_28(image: np.ndarray) -> np.ndarray:
  """[105, 105, 3] RGB -> [28, 28] grey, antialiased, 255 = background as in omniglot28.npz."""
  grey = Image.fromarray(image[..., 0] if image.ndim == 3 else image)
  return np.asarray(grey.resize((28, 28), Image.LANCZOS), np.uint8)


def load_omniglot(data_dir: str | None = None) -> dict[str, np.ndarray]:
  """Omniglot in the omniglot28.npz layout (images, split, alphabet, character, drawer).

  TFDS "train" is the background set (split 0), "test" the evaluation set (split 1). TFDS does not
  name the drawer, so drawers are numbered by order of appearance within each character.
  """
  parts = []
  for split_id, split in enumerate(("train", "test")):
    r = read_split("omniglot", split, data_dir)
    n = r["label"].shape[0]
    parts.append(dict(images=np.stack([_to_28(im) for im in r["image"]]),
                      split=np.full(n, split_id, np.int8),
                      alphabet=r["alphabet"].astype(np.int16),
                      character=r["label"].astype(np.int16)))
  out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  drawer = np.zeros(out["character"].shape[0], np.int8)
  counts: dict[int, int] = {}
  for i, c in enumerate(out["character"]):
    drawer[i] = counts.get(int(c), 0)
    counts[int(c)] = drawer[i] + 1
  out["drawer"] = drawer
  return out
