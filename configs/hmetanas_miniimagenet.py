r"""H-Meta-NAS on Mini-ImageNet 5-way 1-shot / 5-shot (Zhao et al., NeurIPS 2022, arXiv 2109.04925).

Mini-ImageNet is not in the metanas data folder; put it at $METANAS_DATA_DIR/miniimagenet/ in the
layout of metanas/data/miniimagenet.py ({train,val,test}/<class>/<image>.jpg, or
<split>_84.npz), then:
  python -m metanas.main --config configs/hmetanas_miniimagenet.py:paper --workdir /tmp/hm_mini
  python -m metanas.main --config configs/hmetanas_miniimagenet.py:paper_5shot --workdir /tmp/hm_m5
  # A CPU-sized run (not measured here: the data is not available on this machine):
  python -m metanas.main --config configs/hmetanas_miniimagenet.py:cpu --workdir /tmp/hm_mini_cpu
Variants: `:smoke` (reads OMNIGLOT, not Mini-ImageNet, so that the pipeline is exercised end to end
where Mini-ImageNet is absent; the reader itself is tested on generated images in
tests/test_hmetanas_data.py), `:cpu`, `:paper`, `:paper_5shot`.

Paper (abstract, 5-way 1-shot): H-Meta-NAS beats the best manual baseline by 5.21% accuracy with
60% less computation. Not measured here (no Mini-ImageNet on this machine).
"""

import importlib.util
import os

from ml_collections import config_dict

from metanas import config_lib


def _omniglot_config(arg):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hmetanas_omniglot.py")
  spec = importlib.util.spec_from_file_location("_hmetanas_omniglot_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper", "paper_5shot"))
  if variant == "smoke":
    return _omniglot_config("smoke")  # Documented above: the smoke run reads Omniglot.
  c = _omniglot_config("paper_5shot" if variant == "paper_5shot" else "paper")
  c.data.name = "miniimagenet"
  c.data.source = "folder"
  # Mini-ImageNet: 84x84 RGB, 5 blocks (84 -> 42 -> 21 -> 11 -> 6 -> 3), widths up to 64.
  c.space.max_depth = 5
  c.space.depth_choices = (2, 3, 4, 5)
  c.space.base_width = 32
  c.maml.num_inner_steps = 5
  c.maml.inner_lr = 0.01
  c.maml.meta_batch_size = 4
  c.optim.learning_rate = 1e-3
  c.train.num_steps = 60_000
  c.eval.n_query = 15
  if variant == "cpu":
    c.maml.first_order = True
    c.maml.num_inner_steps = 1
    c.maml.inner_lr = 0.1
    c.data.n_query = 5
    c.space.base_width = 8
    c.model.conv_impl = "im2col"
    c.train.num_devices = 1
    c.train.num_steps = 2000
    c.train.checkpoint_every = 200
    c.baselines = ((0.5, 4, 3, 1.0), (1.0, 4, 3, 1.0), (2.0, 4, 3, 1.0))
    c.eval.num_test_tasks = 300
    c.eval.n_query = 5
    c.ga.pop_size = 12
    c.ga.generations = 5
    c.ga.num_val_tasks = 24
    c.ablations.pop_sizes = (4, 12)
    c.ablations.generations = (1, 5)
  return c
