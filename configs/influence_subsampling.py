r"""Model selection on influence-guided subsamples (Raj et al. 2020, arXiv 2010.10218, Sec. 5).

Command (the default `:cpu` variant; see experiments/influence_subsampling.md for the runtime and
numbers measured on a 2-core CPU):
  METANAS_DATA_DIR=../shared/data python -m metanas.main \
      --config configs/influence_subsampling.py:cpu --workdir /tmp/influence_subsampling
Variants: `:smoke` (seconds, tests), `:cpu` (pool 10k, m in {250, 500, 1000, 2000}, 16 candidates,
few seeds), `:paper` (10 seeds, larger pools). Override e.g. `--config.num_seeds=10` or
`--config.datasets='("magic",)'`. More seeds in pieces: `--config.draw_round=1` etc. (new
draws on the same data) merged by `experiments/influence_merge.py` (fourth round of the md file).

Runtime (2-core CPU shared with other jobs, compilation cached): heavy-tailed alone, 10 seeds, all
four methods about 18 min; MAGIC + Adult, 10 seeds, all four methods 42 min; `:smoke` about 15 s
of CPU time.

Expected (the paper's claim): influence sampling beats uniform on regret and Kendall tau at every m
on the heavy-tailed design and is no worse on MAGIC / Adult. Measured (third round, 10 seeds, pilot
counted in m and kept, refit from the common init `subsample.refit_from="init"`): on the
heavy-tailed design influence beats uniform on tau at every m (e.g. 0.830 vs 0.780 at m = 2000) and
has lower mean regret at every m, clearly only at m = 500 / 1000 (m = 250: 0.0479 vs 0.0489, within
error; with 30 seeds, fourth round: significant at m = 250 / 500 / 1000, not at 2000, z = -0.6).
MAGIC / Adult and the verdict per m: experiments/influence_subsampling.md, which also has
the dev-seed selection, the v2 design (`synthetic.dof=2.0, synthetic.label_noise=0.02`, numerically
broken for the degree-2 candidates on seed 0) and the not-selected `subsample.sampling="pps"`.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "influence_subsampling"
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0
  c.datasets = ("heavy_tailed", "magic", "adult")
  c.pool_size = 10_000
  c.val_size = 3_000
  c.test_size = 5_000
  c.sizes = (250, 500, 1000, 2000)
  c.num_seeds = 10
  # Block of sampling draws: round r > 0 gives num_seeds new draws on the same data (seed), so
  # rounds 0, 1, 2 with num_seeds=10 are 30 seeds whose first 10 are the default run's.
  c.draw_round = 0
  c.methods = ("uniform", "leverage", "influence", "greedy")
  # 3 feature maps x 4 L2 + 1 MLP width x 4 weight decays = 16 candidates.
  c.candidates = dict(feature_maps=("linear", "poly2", "rff"), linear_l2=(1e-4, 1e-3, 1e-2, 1e-1),
                      mlp_hidden=(16,), mlp_l2=(1e-4, 1e-3, 1e-2, 1e-1))
  c.features = dict(poly_dims=8, rff_dim=128, rff_bandwidth=2.0)
  c.fit = dict(newton_steps=20, mlp_steps=400, mlp_lr=1e-2)
  # Pilot = max(min_pilot, pilot_fraction * m) uniform points; mix = alpha of paper Eq. 5.
  # refit_from="init": the final fit starts where every other fit starts (chosen on dev seeds, see
  # the md file: a warm start at the pilot fit trains the MLP candidates longer than their
  # full-data reference and broke the ranking). sampling="pps" (without replacement) is available.
  c.subsample = dict(pilot_fraction=0.5, min_pilot=100, mix=0.3, solver="exact",
                     mlp_curvature="gauss_newton", damping=1e-6, cg_iters=100, cg_tol=1e-6,
                     greedy_rounds=4, epsilon=0.2, chunk=2048, reuse_pilot=True,
                     self_normalize=False, sampling="iid", refit_from="init")
  # dof=2.0, label_noise=0.02 makes influence far more uneven (top 1% of rows hold 25% of the
  # degree-2 score) but breaks the float32 degree-2 fits on seed 0; see the md file.
  c.synthetic = dict(dim=8, dof=3.0, interaction=0.5, label_noise=0.0, independent=False)
  if variant == "cpu":
    c.num_seeds = 5
  elif variant == "paper":
    c.pool_size = 12_000
  elif variant == "smoke":
    c.datasets = ("magic",)
    c.pool_size, c.val_size, c.test_size = 400, 150, 150
    c.sizes = (80,)
    c.num_seeds = 2
    c.candidates = dict(feature_maps=("poly2",), linear_l2=(1e-3, 1e-2, 1e-1), mlp_hidden=(),
                        mlp_l2=())
    c.features.poly_dims = 3
    c.fit = dict(newton_steps=8, mlp_steps=30, mlp_lr=1e-2)
    c.subsample.min_pilot = 20
    c.subsample.greedy_rounds = 2
    c.subsample.chunk = 128
  return c
