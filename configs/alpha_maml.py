r"""alpha-MAML on clustered sinusoids (Cai et al. 2020, arXiv 2003.09465, Sec. 6.1 style).

Sources: 3 clusters of (amplitude, phase) x 4 tasks x 20 samples. 50 random targets per seed
(each from one cluster), 5 seeds. Arms: alpha-MAML, uniform MAML, oracle (right cluster), pooled
pretraining + fine-tune, scratch. Every arm fine-tunes on the target's k labelled samples with
SGD (lr 0.01) and is scored on 100 held-out target points after 0/1/5/10/100 steps.

Weights: alpha from the paper's simplex QP on an RBF kernel over standardised (x, y). By default
(`alpha.select=source_cv`) its bandwidth and lambda are chosen per seed by leave-one-source-out
cross-validation on the sources (mmd.select_by_source_cv); `--config.alpha.select=fixed` uses
alpha.bandwidth_scale x median heuristic and alpha.lam (the previous default: 1 and 1).

Commands (`:cpu`: 500 meta-steps, 54 vmapped meta-trainings per seed). We measured 25-40 s per
seed after compilation on a quiet shared 2-core CPU (about 3 minutes for 5 seeds), and 9-13
minutes per run at load average 10-16; the cross-validation adds 5-40 s per seed:
  python -m metanas.main --config configs/alpha_maml.py:cpu --workdir /tmp/am_k10
  python -m metanas.main --config configs/alpha_maml.py:cpu --workdir /tmp/am_k5 \
      --config.data.k_shot=5 --config.data.train_query=15
  python -m metanas.main --config configs/alpha_maml.py:cpu --workdir /tmp/am_homog \
      --config.data.cluster_set=homogeneous --config.data.sources_per_cluster=12
  previous fixed kernel: add --config.alpha.select=fixed (and e.g. --config.alpha.lam=0.1
  --config.alpha.bandwidth_scale=0.1 for the narrow one); U-statistic: --config.alpha.unbiased=True
Variants: `:smoke` (seconds, tests), `:cpu`, `:paper` (20k meta-steps at lr 1e-3, 30 sources;
not run here).

Measured (`:cpu`, mean and 95% interval over 5 seeds; experiments/alpha_maml.md): the
cross-validation picks 0.03 x median and lambda 0.1 on the clustered sources; alpha puts 0.84
(10-shot) / 0.80 (5-shot) of its mass on the target's cluster, and alpha - uniform MAML target
MSE is -1.46 +- 0.66 / -1.53 +- 0.68 after 1 fine-tune step and -0.69 +- 0.45 / -1.28 +- 0.98
after 10 (oracle step-1 MSE 0.21 / 0.27). With homogeneous sources it picks lambda 3-1e4
(9.7-10.5 effective sources of 12) and alpha-MAML = MAML within noise (step 1: +0.00 +- 0.03 /
-0.02 +- 0.08); alpha -> uniform as lambda grows (results.json: lambda_sweep). The fixed median
kernel gave mass 0.57 and no significant gain after 5-10 steps; the fixed narrow kernel failed
the homogeneous control.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "alpha_maml"
  c.problem = "sinusoid_clusters"
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0
  c.num_seeds = 5
  c.tensorboard = True
  c.log_every = 100
  c.data = dict(cluster_set="three", sources_per_cluster=4, samples_per_source=20,
                num_targets=50, k_shot=10, num_query=100, train_query=10,
                wheat_components=0, wheat_groups=0)
  c.model = dict(hidden=(40, 40))
  # select="source_cv": bandwidth and lambda chosen per seed by leave-one-source-out CV on the
  # sources (mmd.select_by_source_cv); "fixed": lam and bandwidth_scale below (the previous
  # default: median heuristic, lambda = 1). unbiased: U-statistic K instead of the V-statistic.
  c.alpha = dict(select="source_cv", lam=1.0, y_scale=1.0, bandwidth_scale=1.0, qp_iters=3000,
                 unbiased=False,
                 cv=dict(bandwidth_scales=(0.03, 0.1, 0.3, 1.0),
                         lams=(0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1e4), num_splits=4,
                         qp_iters=1000),
                 lambda_sweep=(0.0, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5))
  c.maml = dict(num_inner_steps=1, inner_lr=0.01, first_order=False)
  c.optim = dict(learning_rate=1e-2, num_steps=500)
  c.finetune = dict(lr=0.01, steps=(1, 5, 10, 100), scratch_adam_steps=500, scratch_adam_lr=1e-2)
  if variant == "paper":
    c.optim.num_steps = 20_000
    c.optim.learning_rate = 1e-3
    c.data.sources_per_cluster = 10
  elif variant == "smoke":
    c.num_seeds = 2
    c.log_every = 2
    c.data.sources_per_cluster = 2
    c.data.num_targets = 4
    c.data.num_query = 10
    c.optim.num_steps = 4
    c.alpha.qp_iters = 200
    c.alpha.cv.bandwidth_scales = (0.1, 1.0)
    c.alpha.cv.lams = (1.0, 100.0)
    c.alpha.cv.num_splits = 1
    c.alpha.cv.qp_iters = 100
    c.alpha.lambda_sweep = (0.0, 1.0)
    c.finetune.steps = (1, 2)
    c.finetune.scratch_adam_steps = 3
    c.tensorboard = False
  return c
