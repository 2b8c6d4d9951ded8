r"""Warped LMM simulations on the real mouse genotypes (Fusi et al. 2014, Sec. 3.1, Figs. 2-3).

Command (the default `:cpu` variant: LOCO scan, effect-free null chromosomes 2, 4, ..., 18, X;
3212 s measured on the shared 2-core CPU under load, ~1220 s of it the 20 LOCO eigendecompositions,
then 10-300 s per replicate depending on the load):
  METANAS_DATA_DIR=../shared/data python -m metanas.main --config configs/warped_lmm_sim.py:cpu \
      --workdir /tmp/warped_lmm_sim
  python -m metanas.lmm.report --sim /tmp/warped_lmm_sim
Variants: `:smoke` (seconds, tests), `:cpu` (all 1814 mice x 10346 SNPs, 20 replicates per
transform, 2 warping restarts), `:paper` (more restarts). `--config.gwas.loco=False
--config.sim.null_chromosomes='()'` gives the earlier design (full kinship, polygenic effect on all
chromosomes).

Per transform (exp, logistic, cube, mixture) and method (oracle LMM on the true z, LMM on raw y,
rank-INT, Box-Cox, warped LMM): power at FPR 1e-3 / 1e-4, lambda_GC of the null-chromosome SNPs, h2
vs the truth (h2_causal + h2_poly = 0.45), and paired comparisons with raw y and the oracle (-log10 p
difference of the causal SNPs, McNemar on detections). Expected (measured, 20 replicates): warped
LMM power at FPR 1e-3 0.305-0.320 vs oracle 0.315 (SE 0.033) vs raw-y LMM 0.200-0.305; paired
-log10 p gain over raw y +0.20 +- 0.03 (logistic) to +1.28 +- 0.10 (cube); h2 0.456-0.461 (oracle
0.461, raw y 0.28-0.43); lambda_GC 0.983-0.990 (oracle 0.987). Details in experiments/warped_lmm.md.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "warped_lmm"
  c.task = "sim"
  c.seed = 0
  c.data_dir = config_dict.placeholder(str)
  c.sim = dict(num_individuals=0, num_snps=0, num_replicates=20, num_causal=10, h2_causal=0.05,
               h2_poly=0.4, min_maf=0.05, transforms=("exp", "logistic", "cube", "mixture"),
               methods=("raw", "rank_int", "box_cox", "warped"), fprs=(1e-3, 1e-4),
               null_max_r2=0.05, null_window_mb=10.0,
               # Chromosomes without causal SNPs or polygenic effect; their SNPs are the null SNPs.
               # () = polygenic effect from the full kinship, null = unlinked to causal SNPs.
               null_chromosomes=("2", "4", "6", "8", "10", "12", "14", "16", "18", "X"))
  c.warp = dict(num_terms=3, num_restarts=2, reml=False, max_iter=500)
  # loco: scan each chromosome against the kinship of the others (null model refitted per kinship).
  c.gwas = dict(test="lrt", chunk=1024, reml=True, loco=True)
  if variant == "paper":
    c.warp.num_restarts = 10
  elif variant == "smoke":
    c.sim.num_individuals = 150
    c.sim.num_snps = 300
    c.sim.num_replicates = 2
    c.sim.num_causal = 3
    c.sim.transforms = ("exp", "cube")
    c.sim.fprs = (0.05,)
    c.warp.num_restarts = 1
    c.warp.max_iter = 50
  return c
