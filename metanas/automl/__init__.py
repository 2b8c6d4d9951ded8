"""Probabilistic matrix factorisation for AutoML (Fusi, Sheth & Elibol, arXiv 1705.05355).

Modules:
  data        the pipelines x datasets performance matrix (OBOE npz, or the paper's CSV format).
  pmf         the GP-LVM: pipeline latents, RBF-ARD + white kernel, masked marginal likelihood, fit.
  bayesopt    GP posterior for a new dataset's column, expected improvement, the BO loop.
  baselines   random search x1/x2/x4, best-average-rank portfolio, meta-feature warm starts.
  evaluation  regret and average-rank curves with standard errors.
  experiment  `run(config, workdir)` for `config.method = "pmf_automl"`.
"""
