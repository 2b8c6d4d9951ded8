"""Explicit registry: `config.method` -> the `run(config, workdir)` function of that method.

Entries are "module:function" strings imported on demand, so launching one method does not import
(or compile) every other one. Each method adds one line here.
"""

import importlib
from typing import Callable

from ml_collections import config_dict

RunFn = Callable[[config_dict.ConfigDict, str], dict]

METHODS: dict[str, str] = {
    "maml": "metanas.meta.experiment:run",
    "alpha_maml": "metanas.meta.alpha_maml:run",
    "feature_gradients": "metanas.selection.feature_gradients_experiment:run",
    "influence_subsampling": "metanas.selection.influence_experiment:run",
    "pmf_automl": "metanas.automl.experiment:run",
    "warped_lmm": "metanas.lmm.experiment:run",
    "hmetanas": "metanas.nas.hmetanas_experiment:run",
    "parsec": "metanas.nas.parsec_experiment:run",
    "hant": "metanas.hant.experiment:run",
    "gan_compression": "metanas.compression.experiment:run",
    "gppvae": "metanas.gp.experiment:run",
}


def get_run_fn(method: str) -> RunFn:
  if method not in METHODS:
    raise KeyError(f"Unknown method {method!r} in config.method; registered: "
                   f"{', '.join(sorted(METHODS))} (see metanas/registry.py).")
  module_name, fn_name = METHODS[method].split(":")
  return getattr(importlib.import_module(module_name), fn_name)
