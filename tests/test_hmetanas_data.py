"""Mini-ImageNet reader on generated images in the documented folder layout."""

import os

import numpy as np
import pytest
from PIL import Image

from metanas.data import miniimagenet
from metanas.data import npz
from metanas.data import omniglot


def _write_fake(root, split, num_classes=3, per_class=4):
  colours = {}
  for c in range(num_classes):
    folder = os.path.join(root, "miniimagenet", split, f"n0{c}")
    os.makedirs(folder)
    colour = (40 * c + 10, 255 - 50 * c, 7 * c)
    colours[c] = colour
    for i in range(per_class):
      Image.new("RGB", (60 + i, 50), colour).save(os.path.join(folder, f"img{i}.jpg"), quality=100)
  return colours


def test_folder_layout_is_read_resized_and_cached(tmp_path):
  colours = _write_fake(str(tmp_path), "train")
  out = miniimagenet.load(str(tmp_path), "train")
  assert out["images"].shape == (12, 84, 84, 3) and out["images"].dtype == np.uint8
  np.testing.assert_array_equal(out["labels"], np.repeat([0, 1, 2], 4))
  for c, colour in colours.items():  # Solid colours survive resizing (up to JPEG rounding).
    np.testing.assert_allclose(out["images"][4 * c].reshape(-1, 3).mean(0), colour, atol=3)
  assert os.path.exists(tmp_path / "miniimagenet" / "train_84.npz")
  again = miniimagenet.load(str(tmp_path), "train", source="npz")
  np.testing.assert_array_equal(again["images"], out["images"])


def test_sampler_episodes(tmp_path):
  _write_fake(str(tmp_path), "test", num_classes=4, per_class=5)
  sampler = miniimagenet.MiniImageNetSampler(miniimagenet.load(str(tmp_path), "test"))
  spec = omniglot.EpisodeSpec(n_way=3, k_shot=2, n_query=3)
  b = sampler.sample(np.random.default_rng(0), 2, spec)
  assert b["support_x"].shape == (2, 6, 84, 84, 3) and b["query_x"].shape == (2, 9, 84, 84, 3)
  np.testing.assert_array_equal(b["support_y"][0], [0, 0, 1, 1, 2, 2])
  # Every image of label j in a task shows the colour of that task's class j.
  for t in range(2):
    for j, c in enumerate(b["classes"][t]):
      want = sampler.images[sampler.index[c][0]].mean((0, 1)) / 255.0
      got = b["query_x"][t, 3 * j:3 * j + 3].mean((1, 2))
      np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), atol=0.02)
  with pytest.raises(ValueError, match="Cannot sample"):
    sampler.sample(np.random.default_rng(0), 1, omniglot.EpisodeSpec(5, 1, 1))


def test_missing_data_names_the_layout(tmp_path):
  with pytest.raises(npz.DataError, match="train,val,test"):
    miniimagenet.load(str(tmp_path), "val")
  with pytest.raises(npz.DataError, match="val_84.npz"):
    miniimagenet.load(str(tmp_path), "val", source="npz")
  with pytest.raises(ValueError, match="Unknown Mini-ImageNet split"):
    miniimagenet.load(str(tmp_path), "validation")
