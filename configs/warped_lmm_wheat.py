r"""Warped vs standard LMM (GBLUP) for out-of-sample prediction of CIMMYT wheat yields.

Command (the default `:cpu` variant; 27 min measured on the shared 2-core CPU at load ~18, mostly
XLA compilation for each fold's training-set size):
  METANAS_DATA_DIR=../shared/data python -m metanas.main --config configs/warped_lmm_wheat.py:cpu \
      --workdir /tmp/warped_lmm_wheat
Variants: `:smoke` (seconds, tests: 1 trait, 2 folds), `:cpu` (4 yield traits x the 10 `cv_set`
folds, marker kinship), `:paper` (10 warping restarts). `--config.wheat.kinship=pedigree` uses the
pedigree relationship matrix instead of the markers.

Reported per trait (mean over folds): Pearson r and MSE of the held-out predictions, mean predictive
log density on the original scale. The paper has no wheat experiment. Measured: r = 0.53 / 0.48 /
0.40 / 0.47 (LMM) and within 0.004 of that for the warped LMM. Details in experiments/warped_lmm.md.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "warped_lmm"
  c.task = "wheat"
  c.seed = 0
  c.data_dir = config_dict.placeholder(str)
  c.wheat = dict(traits=(0, 1, 2, 3), num_folds=0, kinship="markers")
  c.warp = dict(num_terms=3, num_restarts=3, reml=False, max_iter=500)
  c.gwas = dict(test="lrt", chunk=1024, reml=True)
  if variant == "paper":
    c.warp.num_restarts = 10
  elif variant == "smoke":
    c.wheat.traits = (0,)
    c.wheat.num_folds = 2
    c.warp.num_restarts = 1
    c.warp.max_iter = 50
  return c
