r"""Feature Gradients (Sheth & Fusi, AISTATS 2020, arXiv 1908.10382): feature selection experiments.

Commands (`:cpu` variant; wall times measured on a shared, heavily loaded 2-core CPU):
  # Top-k accuracy vs scikit-learn baselines (S&F Sec. 5.2), 5 seeds. madelon 8 min:
  python -m metanas.main --config configs/feature_gradients.py:cpu --workdir /tmp/fg_madelon \
      --config.dataset=madelon
  # N << D data: full-batch normalised-gradient descent (chosen by inner CV on the training splits,
  # experiments/feature_gradients/inner_cv.py). Measured at load average 30-50 on the 2 cores:
  # allaml 35 min (MI baseline 5.3 min/seed); arcene with the same flags and
  # --config.baselines="('all','f_classif')" 20 min:
  python -m metanas.main --config configs/feature_gradients.py:cpu --workdir /tmp/fg_allaml \
      --config.dataset=allaml --config.fg.optimizer=normalized_sgd --config.fg.learning_rate=0.1 \
      --config.fg.batch_size=0 --config.fg.num_epochs=100
  # Estimator bias/spread on Gaussian designs (3.5 min):
  python -m metanas.main --config configs/feature_gradients.py:cpu --workdir /tmp/fg_est \
      --config.experiment=estimator
  # XOR / parity with and without pairwise products (0.5 min):
  python -m metanas.main --config configs/feature_gradients.py:cpu --workdir /tmp/fg_xor \
      --config.experiment=interactions
  # Time / memory per epoch as N and D grow 10x, and D = 100k (about 15 CPU-seconds per epoch at
  # D = 100k; 6-20 min wall on the loaded machine):
  python -m metanas.main --config configs/feature_gradients.py:cpu --workdir /tmp/fg_scaling \
      --config.experiment=scaling
Variants: `:smoke` (seconds, tests), `:cpu`, `:paper` (10 seeds, 100 epochs, larger designs).

Expected (measured, `:cpu`, classifier StandardScaler + RBF-SVM, mean of 5 seeds, k = 5/10/20/50;
objective = classification error since session 13):
  madelon  FG 0.661/0.806/0.759/0.640, best univariate filter (f_classif) 0.667/0.806/0.754/0.624,
           all features 0.582; 13 of the 20 relevant features in FG's top 20.
  allaml   FG 0.918/0.909/0.955/0.955 (normalized_sgd, full batch; = f_classif at k = 5, 10),
           mutual_info 0.927/0.945/0.945/0.945, all features 0.764.
  arcene   FG 0.657/0.680/0.687/0.713 (same flags), f_classif 0.637/0.653/0.670/0.710,
           mutual_info 0.703/0.710/0.747/0.760, all features 0.730.
Full tables and the other experiments: experiments/feature_gradients.md.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "feature_gradients"
  c.experiment = "selection"  # selection | estimator | interactions | scaling
  c.dataset = "madelon"       # madelon | arcene | allaml (experiment=selection)
  c.data_dir = config_dict.placeholder(str)
  c.num_seeds = 5
  c.test_fraction = 0.3
  c.ks = (5, 10, 20, 50)
  c.classifier = "svm_rbf"    # svm_rbf | knn | logistic
  c.baselines = ("all", "f_classif", "mutual_info", "l1_logistic", "extra_trees", "rfe")
  # Tuned for Madelon (N = 1820 train rows). On N << D data Adam ranks features by the sign
  # consistency of their gradients (and ties them at full batch); use optimizer=normalized_sgd,
  # learning_rate=0.1, batch_size=0 (all rows), num_epochs=100 there (see the commands above).
  # objective: the objective for labels, the error of the best linear classifier
  # ((1 - sqrt(EV)) / 2 per one-vs-rest class); chosen over 1 - EV by inner CV in session 13
  # (experiments/feature_gradients/objective/RULE.md). The scaling benchmark's regression targets
  # always use "explained_variance".
  c.fg = dict(order=2, sparsity=0.3, learning_rate=0.003, grad_clip=1.0, num_epochs=20,
              batch_size=64, minibatches_per_step=1, init_logit=0.0, optimizer="adam",
              num_restarts=1, objective="classification_error")
  c.estimator = dict(num_features=50, ratios=(0.2, 0.5, 1.0, 2.0, 5.0), orders=(2, 4, 6),
                     num_draws=200, explained=0.5, seed=0)
  c.interactions = dict(num_samples=2000, num_features=20, targets=("xor2", "parity3"),
                        feature_maps=("raw", "pairwise"), top=5, seed=0)
  c.scaling = dict(grid=((1000, 1000), (10000, 1000), (1000, 10000), (1000, 100000)),
                   num_epochs=2)
  if variant == "smoke":
    c.dataset = "allaml"
    c.num_seeds = 1
    c.ks = (5,)
    c.baselines = ("all", "f_classif")
    c.fg.num_epochs = 3
    c.fg.batch_size = 16
    c.estimator.num_features = 10
    c.estimator.ratios = (0.5, 2.0)
    c.estimator.orders = (2,)
    c.estimator.num_draws = 8
    c.interactions.num_samples = 200
    c.interactions.num_features = 5
    c.interactions.targets = ("xor2",)
    c.scaling.grid = ((100, 10), (200, 10))
    c.scaling.num_epochs = 1
  elif variant == "paper":
    c.num_seeds = 10
    c.fg.num_epochs = 100
    c.estimator.num_features = 200
    c.estimator.num_draws = 1000
    c.interactions.num_samples = 10000
    c.scaling.grid = ((1000, 1000), (10000, 1000), (100000, 1000), (1000, 10000), (1000, 100000),
                      (10000, 100000))
  return c
