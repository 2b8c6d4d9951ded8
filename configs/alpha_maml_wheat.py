r"""alpha-MAML on CIMMYT wheat lines: tasks are (environment, genetic group) pairs.

The 599 lines are split into 3 genetic groups by k-means on the top 10 marker principal
components; task e * 3 + g holds group g's lines with their yield in environment e (12 tasks).
A target is one task with k = 10 labelled lines; the model (linear in the 10 standardised PCs) is
scored on the task's other lines. The target's own task is excluded from the sources; "oracle"
weights are uniform on the other groups of the target's environment. 50 targets, 5 seeds.

Command (`:cpu`, a few minutes on a shared 2-core CPU; needs wheat.npz in the data dir):
  python -m metanas.main --config configs/alpha_maml_wheat.py:cpu --workdir /tmp/am_wheat \
      --config.data_dir=../shared/data
Variants: `:smoke` (seconds, tests), `:cpu`, `:paper`.

Measured (`:cpu`, 5 seeds): every meta-learnt arm reaches a target MSE of about 1.0, which is no
skill since yields are standardised, and alpha-MAML = uniform MAML within noise (+0.01 +- 0.02 at
step 1). alpha follows the genetic group, not the environment (0.01 of its mass on the target's
environment). This is our own task construction, with no published number; see
experiments/alpha_maml.md.
"""

import importlib.util
import os

from ml_collections import config_dict

from metanas import config_lib


def _base():
  """The sinusoid config module next to this file (configs/ is not a package)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "alpha_maml.py")
  spec = importlib.util.spec_from_file_location("alpha_maml_base_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = _base().get_config(variant)
  c.problem = "wheat"
  c.data.wheat_components = 10
  c.data.wheat_groups = 3
  c.data.k_shot = 10
  c.data.train_query = 40
  c.model.hidden = ()
  c.maml.inner_lr = 0.1
  c.finetune.lr = 0.1
  c.optim.learning_rate = 1e-2
  # Measured with the fixed median-heuristic kernel and lambda = 1 (experiments/alpha_maml.md);
  # --config.alpha.select=source_cv applies the sinusoid default's cross-validated choice.
  c.alpha.select = "fixed"
  if variant == "smoke":
    c.data.train_query = 10
  return c
