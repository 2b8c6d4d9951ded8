"""HANT's ImageNet path: TFDS reading (mock data) and the EfficientNet-B0..B4 layer tables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metanas import config_lib
from metanas.hant import data as data_lib
from metanas.hant import experiment
from metanas.hant import network


def test_efficientnet_layer_counts_and_resolutions():
  # MBConv blocks: B0 has 16 (Tan & Le 2019, Table 1); depth scaling rounds each stage up.
  counts = {v: len(network.efficientnet_arch(v).layers) for v in ("b0", "b1", "b2", "b3", "b4")}
  assert counts["b0"] == 16 and counts["b0"] < counts["b1"] <= counts["b2"] < counts["b3"] < counts["b4"]
  b0 = network.efficientnet_arch("b0")
  assert b0.image_hw == 224 and b0.layers[0].h == 112 and b0.layers[-1].c_out == 320
  assert network.efficientnet_arch("b4").image_hw == 380
  with pytest.raises(ValueError, match="Unknown EfficientNet variant"):
    network.efficientnet_arch("b9")


def test_efficientnet_teacher_runs():
  arch = network.efficientnet_arch("b0", num_classes=7, image_hw=32, width_mult=0.25, num_stages=2)
  params = network.init(arch, arch.teacher_ops, jax.random.key(0))
  logits = network.apply(arch, arch.teacher_ops, params, jnp.ones((2, 32, 32, 3)))
  assert logits.shape == (2, 7) and np.all(np.isfinite(logits))


def test_paper_config_reads_imagenet_through_tfds_mock(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  config = config_lib.load_config("configs/hant_imagenet.py:paper")
  assert config.model.name == "efficientnet_b0" and config.data.source == "tfds"
  arch = experiment.make_arch(config.model)
  assert arch.image_hw == 224 and len(arch.layers) == 16
  with config.unlocked():
    config.data.num_val = 4
    config.data.num_train = 4
    config.data.num_test = 5
  with tfds.testing.mock_data(num_examples=10):
    data = data_lib.load(config.data, str(tmp_path), 32, 3)
  assert data["x_train"].shape == (4, 32, 32, 3) and data["x_val"].shape == (4, 32, 32, 3)
  assert data["x_test"].shape == (5, 32, 32, 3) and data["y_test"].dtype == np.int32
  assert np.all((data["y_train"] >= 0) & (data["y_train"] < 1000))
  for v in ("b1", "b2", "b3", "b4"):
    c = config_lib.load_config(f"configs/hant_imagenet.py:paper_{v}")
    assert experiment.make_arch(c.model).image_hw == network.EFFICIENTNET_SCALING[v][2]
