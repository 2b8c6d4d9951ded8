r"""GPPVAE on COIL-20 (20 objects x 72 turntable views): the identity x view dataset standing in for
the paper's Face-Place experiment (arXiv 1810.11738, Sec. 4.2), which is not available offline.

Command (the default `:cpu` variant):
  METANAS_DATA_DIR=../shared/data python -m metanas.main \
      --config configs/gppvae_coil20.py:cpu --workdir /tmp/gppvae_coil20
Variants:
  `:smoke`  seconds; 4 objects x 18 views (every 4th), tiny nets, 1 seed.
  `:cpu`    all 1440 images at 32 x 32, view 20 (100 degrees) held out entirely plus 25% of the
            other (object, view) pairs; MLP nets, 3 seeds, CVAE / LIGP / GPPVAE-dis / GPPVAE-joint.
  `:paper`  the same data with longer schedules and wider nets.

Expected: no published COIL-20 numbers; the paper's ordering on Face-Place (GPPVAE-joint <
GPPVAE-dis < CVAE, LIGP) is the qualitative target. Measured `:cpu` (3 seeds, mean +- std):
CVAE 0.0292 +- 0.0001, LIGP 0.0291 +- 0.0001, GPPVAE-dis 0.0195 +- 0.0005, GPPVAE-joint
0.0192 +- 0.0005 per-pixel MSE. Runtime: ~2.5 min CPU time (26 min wall on a shared 2-core CPU).
"""

import importlib.util
import os

from ml_collections import config_dict

from metanas import config_lib


def _mnist_base(variant: str) -> config_dict.ConfigDict:
  """The rotated-MNIST config of the same variant (derive, don't copy)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gppvae_rotated_mnist.py")
  spec = importlib.util.spec_from_file_location("_gppvae_rotated_mnist", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = _mnist_base(variant)
  c.dataset = "coil20"
  c.data.num_objects = 20
  c.data.view_stride = 1
  c.data.heldout_view = 20
  c.num_figure_objects = 6
  # 72 views 5 degrees apart: more harmonics for the periodic view kernel; 20 objects.
  c.kernel.object_dim = 8
  c.kernel.view_dim = 8
  if variant == "cpu":
    c.vae.num_epochs = 80  # ~1065 training images: more epochs for a similar number of steps.
    c.cvae.num_epochs = 80
    c.joint.num_epochs = 60
  elif variant == "smoke":
    c.data.num_objects = 4
    c.data.view_stride = 4
    c.data.heldout_view = 5
    c.num_figure_objects = 1  # One figure object: rendering many subplots costs seconds.
    c.kernel.object_dim = 2
    c.kernel.view_dim = 2
  return c
