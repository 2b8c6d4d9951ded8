"""Entry point of the warped-LMM experiments (registry name "warped_lmm").

`config.task` picks the study: "sim" (simulations on the mouse genotypes), "mice" (real mouse
traits, GWAS, and the scan's speed), "wheat" (out-of-sample prediction of wheat yields on the cv
folds).
"""

import importlib
import os

from ml_collections import config_dict

from metanas.lmm import lmm

_TASKS = {"sim": "metanas.lmm.sim_experiment", "mice": "metanas.lmm.mice_experiment",
          "wheat": "metanas.lmm.wheat_experiment"}


@lmm.x64
def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  """Runs the study named by `config.task`; writes results.json (and figures) in `workdir`."""
  if config.task not in _TASKS:
    raise ValueError(f"Unknown warped_lmm task {config.task!r}; choose from {sorted(_TASKS)}.")
  os.makedirs(workdir, exist_ok=True)
  return importlib.import_module(_TASKS[config.task]).run(config, workdir)
