"""Omniglot episodic N-way K-shot tasks (Lake et al.; the MAML/Vinyals protocol).

Splits (`protocol`):
- "background": meta-train on the 964 characters of the 30 background alphabets, each also rotated
  by 90/180/270 degrees as new classes (3856 classes); meta-test on the 659 characters of the 20
  evaluation alphabets (unrotated unless `test_rotations`). Lake et al.'s official split.
- "vinyals": the 1623 characters in a fixed seeded random order, the first 1200 (x4 rotations) for
  meta-training and the remaining 423 for meta-testing, as in Vinyals et al. 2016 / the MAML code.
A validation split ("val") holds out characters from the meta-training pool (`num_val_chars`).
Images are 28x28 in [0, 1] with ink = 1.
"""

import dataclasses

import numpy as np

from metanas.data import npz

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class EpisodeSpec:
  n_way: int = 5
  k_shot: int = 1
  n_query: int = 15  # Query examples per class.


def _split_chars(data: dict[str, np.ndarray], protocol: str, num_val_chars: int):
  num_chars = int(data["character"].max()) + 1
  char_split = np.zeros(num_chars, np.int8)
  char_split[data["character"]] = data["split"]
  if protocol == "background":
    train = np.flatnonzero(char_split == 0)
    test = np.flatnonzero(char_split == 1)
  elif protocol == "vinyals":
    order = np.random.default_rng(1623).permutation(num_chars)
    train, test = np.sort(order[:1200]), np.sort(order[1200:])
  else:
    raise ValueError(f"Unknown Omniglot protocol {protocol!r}; use 'background' or 'vinyals'.")
  perm = np.random.default_rng(0).permutation(train)
  val, train = np.sort(perm[:num_val_chars]), np.sort(perm[num_val_chars:])
  return {"train": train, "val": val, "test": test}


class OmniglotSampler:
  """Samples episodes from one split; deterministic given the NumPy generator passed in."""

  def __init__(self, data: dict[str, np.ndarray], split: str, protocol: str = "background",
               rotations: bool | None = None, num_val_chars: int = 0):
    """Builds the class table of `split`.

    Args:
      data: arrays of `npz.load("omniglot")` (or the TFDS reader).
      split: "train", "val" or "test".
      protocol: "background" or "vinyals" (module doc).
      rotations: add 90/180/270-degree rotations as new classes; default True for "train" only.
      num_val_chars: characters held out of the training pool for "val".
    """
    if split not in SPLITS:
      raise ValueError(f"Unknown split {split!r}; use one of {SPLITS}.")
    chars = _split_chars(data, protocol, num_val_chars)[split]
    if chars.size == 0:
      raise ValueError(f"Omniglot split {split!r} is empty (num_val_chars={num_val_chars}).")
    self.characters = chars
    rotations = (split == "train") if rotations is None else rotations
    order = np.lexsort((data["drawer"], data["character"]))
    images = data["images"][order].reshape(-1, 20, 28, 28)  # [char, drawer, h, w]
    all_chars = np.unique(data["character"])
    images = images[np.searchsorted(all_chars, chars)]
    ink = (255 - images).astype(np.uint8)
    rots = range(4) if rotations else range(1)
    # [num_classes, 20, 28, 28]: class = (rotation, character).
    self.images = np.concatenate([np.rot90(ink, k, axes=(2, 3)) for k in rots])
    self.class_char = np.tile(chars, len(rots))
    self.class_rot = np.repeat(np.arange(len(rots)), len(chars))

  @property
  def num_classes(self) -> int:
    return self.images.shape[0]

  def sample(self, rng: np.random.Generator, num_tasks: int,
             spec: EpisodeSpec) -> dict[str, np.ndarray]:
    """`num_tasks` episodes.

    Returns:
      dict with support_x [num_tasks, n_way * k_shot, 28, 28, 1] float32, support_y
      [num_tasks, n_way * k_shot] int32 (each label k_shot times), query_x
      [num_tasks, n_way * n_query, 28, 28, 1], query_y, and classes [num_tasks, n_way] (class ids).
    """
    n, k, q = spec.n_way, spec.k_shot, spec.n_query
    if n > self.num_classes or k + q > 20:
      raise ValueError(f"Cannot sample {n}-way tasks with {k}+{q} examples per class from "
                       f"{self.num_classes} classes of 20 drawers.")
    classes = np.stack([rng.choice(self.num_classes, n, replace=False) for _ in range(num_tasks)])
    drawers = np.argsort(rng.random((num_tasks, n, 20)), axis=-1)[..., :k + q]
    x = self.images[classes[..., None], drawers].astype(np.float32) / 255.0  # [t, n, k+q, 28, 28]
    x = x[..., None]
    y = np.broadcast_to(np.arange(n, dtype=np.int32)[None, :, None], (num_tasks, n, k + q))
    flat = lambda a, m: a.reshape((num_tasks, n * m) + a.shape[3:])
    return dict(support_x=flat(x[:, :, :k], k), support_y=flat(y[:, :, :k], k),
                query_x=flat(x[:, :, k:], q), query_y=flat(y[:, :, k:], q), classes=classes)


def load(data_dir: str | None = None, source: str = "npz") -> dict[str, np.ndarray]:
  """Omniglot arrays from the npz data directory or from TFDS (`source="tfds"`)."""
  if source == "npz":
    return npz.load("omniglot", data_dir)
  if source == "tfds":
    from metanas.data import tfds_source  # pylint: disable=g-import-not-at-top
    return tfds_source.load_omniglot(data_dir)
  raise ValueError(f"Unknown data source {source!r}; use 'npz' or 'tfds'.")
