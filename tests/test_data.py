"""Data layer: npz reader errors, TFDS source (mocked), Omniglot episodes and sinusoid tasks."""

import os

import numpy as np
import pytest

from metanas.data import npz
from metanas.data import omniglot
from metanas.data import sinusoid
from metanas.data import tfds_source


@pytest.fixture(scope="module")
def omni(data_dir):
  return omniglot.load(data_dir)


def test_missing_data_dir_names_variable(monkeypatch):
  monkeypatch.delenv(npz.ENV_VAR, raising=False)
  with pytest.raises(npz.DataError, match=npz.ENV_VAR):
    npz.load("magic")


def test_missing_file_names_file_directory_and_fix(tmp_path):
  with pytest.raises(npz.DataError) as e:
    npz.load("magic", str(tmp_path))
  msg = str(e.value)
  assert "magic04.npz" in msg and str(tmp_path) in msg and npz.ENV_VAR in msg


def test_corrupt_file_names_file(tmp_path):
  (tmp_path / "magic04.npz").write_bytes(b"not a zip file")
  with pytest.raises(npz.DataError, match=r"magic04.npz.*corrupt"):
    npz.load("magic", str(tmp_path))


def test_wrong_arrays_are_reported(tmp_path):
  np.savez(tmp_path / "magic04.npz", Z=np.zeros(3))
  with pytest.raises(npz.DataError, match=r"lacks arrays \['X', 'y'\]"):
    npz.load("magic", str(tmp_path))


def test_every_dataset_loads(data_dir):
  for name in npz.SCHEMAS:
    if name in ("omniglot", "mnist", "fashion_mnist"):
      continue  # Large; exercised by their own tests.
    arrays = npz.load(name, data_dir)
    assert all(k in arrays for k in npz.SCHEMAS[name][1])


def test_omniglot_splits_never_mix(omni):
  train = omniglot.OmniglotSampler(omni, "train", num_val_chars=30)
  val = omniglot.OmniglotSampler(omni, "val", num_val_chars=30)
  test = omniglot.OmniglotSampler(omni, "test", num_val_chars=30)
  sets = [set(s.characters.tolist()) for s in (train, val, test)]
  assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
  assert len(sets[0]) + len(sets[1]) == 964 and len(sets[2]) == 659
  assert train.num_classes == 4 * len(sets[0]) and test.num_classes == 659
  # Sampled test episodes only use evaluation-set characters.
  batch = test.sample(np.random.default_rng(0), 50, omniglot.EpisodeSpec(5, 1, 3))
  assert set(test.class_char[batch["classes"].ravel()].tolist()) <= sets[2]
  # Vinyals protocol: 1200 / 423 characters.
  v_train = omniglot.OmniglotSampler(omni, "train", protocol="vinyals", rotations=False)
  v_test = omniglot.OmniglotSampler(omni, "test", protocol="vinyals")
  assert len(v_train.characters) == 1200 and len(v_test.characters) == 423
  assert not set(v_train.characters.tolist()) & set(v_test.characters.tolist())


def test_omniglot_episodes_balanced_deterministic_and_shaped(omni):
  s = omniglot.OmniglotSampler(omni, "train")
  spec = omniglot.EpisodeSpec(n_way=5, k_shot=2, n_query=3)
  a = s.sample(np.random.default_rng([0, 1]), 4, spec)
  b = s.sample(np.random.default_rng([0, 1]), 4, spec)
  c = s.sample(np.random.default_rng([0, 2]), 4, spec)
  assert a["support_x"].shape == (4, 10, 28, 28, 1) and a["query_x"].shape == (4, 15, 28, 28, 1)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["support_x"], c["support_x"])
  for t in range(4):
    np.testing.assert_array_equal(np.bincount(a["support_y"][t]), [2] * 5)
    np.testing.assert_array_equal(np.bincount(a["query_y"][t]), [3] * 5)
  assert a["support_x"].min() >= 0 and a["support_x"].max() <= 1
  # Ink is 1: most pixels of a character image are background (0).
  assert a["support_x"].mean() < 0.3
  # Support and query images of one class are different drawings of the same character.
  assert not np.array_equal(a["support_x"][0, 0], a["query_x"][0, 0])


def test_rotated_classes_are_rotations(omni):
  s = omniglot.OmniglotSampler(omni, "train")
  n = len(s.characters)
  np.testing.assert_array_equal(s.images[n + 3], np.rot90(s.images[3], 1, axes=(1, 2)))


def test_sinusoid_ranges_and_function():
  t = sinusoid.sample_tasks(np.random.default_rng(0), 500, 10, 5)
  assert t["support_x"].shape == (500, 10, 1) and t["query_y"].shape == (500, 5, 1)
  assert 0.1 <= t["amplitude"].min() and t["amplitude"].max() <= 5.0
  assert 0.0 <= t["phase"].min() and t["phase"].max() <= np.pi
  assert -5 <= t["support_x"].min() and t["support_x"].max() <= 5
  np.testing.assert_allclose(
      t["support_y"], t["amplitude"][:, None, None] * np.sin(t["support_x"] -
                                                             t["phase"][:, None, None]), rtol=1e-5)


def test_tfds_source_matches_npz_layout(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6):
    mnist = tfds_source.load("mnist", str(tmp_path))
    omni = tfds_source.load_omniglot(str(tmp_path))
  assert mnist["x_train"].shape == (6, 28, 28) and mnist["x_train"].dtype == np.uint8
  assert mnist["y_test"].shape == (6,)
  assert omni["images"].shape == (12, 28, 28) and omni["images"].dtype == np.uint8
  np.testing.assert_array_equal(omni["split"], [0] * 6 + [1] * 6)
  for k in npz.SCHEMAS["omniglot"][1]:
    assert k in omni
  with pytest.raises(ValueError, match="TFDS has no builder"):
    tfds_source.load("madelon")
