r"""PARSEC on CIFAR-10 with the paper's search-network sizes, reading CIFAR-10 from TFDS.

Commands:
  # Paper sizes (DARTS search network: 8 cells, 16 channels, 4 nodes; K = 16 samples; 50/50
  # train/val split of the 50k training images; for an accelerator):
  python -m metanas.main --config configs/parsec_cifar10.py:paper --workdir /tmp/parsec_c10 \
      --config.data_dir=<folder with the prepared TFDS cifar10>
  # Smaller, same data:
  python -m metanas.main --config configs/parsec_cifar10.py:cpu --workdir /tmp/parsec_c10_cpu
Variants: `:smoke`, `:cpu`, `:paper`.

CIFAR-10 is not available offline here: `:paper`/`:cpu` are only tested with
`tfds.testing.mock_data` (tests/test_parsec.py). `:smoke` therefore reads the offline
Fashion-MNIST npz (so the config test runs end to end without TFDS data); set
`--config.data.source=tfds --config.data.name=cifar10` to smoke-test real CIFAR-10.
Deviation from the paper: reduction cells are fixed (conv3x3 stride 2), only the normal cell is
searched; separable convs are applied once. No CIFAR-10 numbers were measured.
"""

import importlib.util
import os

from ml_collections import config_dict

from metanas import config_lib


def _base(variant: str) -> config_dict.ConfigDict:
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parsec_fashion_mnist.py")
  spec = importlib.util.spec_from_file_location("_parsec_fashion_mnist_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = _base("paper" if variant == "paper" else variant)
  if variant == "smoke":
    c.transfer.enabled = False
    c.memory.enabled = False
    return c
  c.data.name = "cifar10"
  c.data.source = "tfds"
  c.data.downsample = 1
  c.transfer.enabled = False  # No second offline RGB set; use --config.transfer.* to add one.
  c.memory.in_channels = 3
  c.memory.image_size = 32
  if variant == "paper":
    c.data.num_train = 25_000
    c.data.num_val = 25_000
    c.data.num_test = 10_000
    c.train.num_steps = 50 * 25_000 // 64  # The paper's 50 search epochs at batch 64.
  return c
