r"""Feature Gradients: compare FG settings by cross-validation INSIDE the outer training splits.

The outer split of seed s is the one of `feature_gradients_experiment.split` (stratified 70/30,
random_state=s); only its training part is used here, cut into `folds` stratified folds
(random_state=100 + s). Each setting ranks the features on the inner training folds; the cell is
the inner-validation accuracy of the fixed classifier (StandardScaler + RBF-SVM) on its top-k,
averaged over seeds x folds. The outer test split is never touched, so a setting chosen here is not
tuned on the test numbers of experiments/feature_gradients.md.

  PYTHONPATH=. METANAS_DATA_DIR=../shared/data python experiments/feature_gradients/inner_cv.py \
      allaml '[{}, {"optimizer": "normalized_sgd", "learning_rate": 0.1, "batch_size": 0}]' 5 3

Arguments: dataset, a list of overrides of the :cpu N << D setting (order 2, w = 0.3, Adam lr
0.003, clip 1, 100 epochs, batch 16), number of outer seeds, number of inner folds, and optionally
a comma-separated list of reference rankings (default f_classif; any baseline of
`feature_gradients_experiment.rank_scores`, or "all" for the classifier on every feature):

  PYTHONPATH=. METANAS_DATA_DIR=../shared/data python experiments/feature_gradients/inner_cv.py \
      arcene '[]' 3 3 f_classif,mutual_info,all
"""

import ast
import sys
import time

import numpy as np
from sklearn import model_selection

from metanas.selection import feature_gradients as fg
from metanas.selection import feature_gradients_experiment as E
from metanas.selection import learnability

KS = (5, 10, 20, 50)
BASE = dict(order=2, sparsity=0.3, learning_rate=0.003, grad_clip=1.0, num_epochs=100,
            batch_size=16, minibatches_per_step=1, init_logit=0.0)


def inner_splits(x, y, num_seeds, folds):
  for seed in range(num_seeds):
    xtr, _, ytr, _, _ = E.split(x, y, 0.3, seed)
    cv = model_selection.StratifiedKFold(folds, shuffle=True, random_state=100 + seed)
    for i, j in cv.split(xtr, ytr):
      keep = np.flatnonzero(xtr[i].std(0) > 0)
      yield xtr[i][:, keep], xtr[j][:, keep], ytr[i], ytr[j], seed


def topk_accuracy(score, a, b, ya, yb, seed):
  order = np.argsort(-score, kind="stable")
  return [E.accuracy("svm_rbf", a[:, order[:k]], ya, b[:, order[:k]], yb, seed) for k in KS]


def main(dataset, variants, num_seeds, folds, references=("f_classif",)):
  x, y = E.load_dataset(dataset, None)
  splits = list(inner_splits(x, y, num_seeds, folds))
  for name in references:
    t0 = time.time()
    if name == "all":
      ref = np.mean([E.accuracy("svm_rbf", a, ya, b, yb, s) for a, b, ya, yb, s in splits])
      print(dataset, "all features", ref.round(3), f"{time.time() - t0:.0f}s", flush=True)
      continue
    ref = np.mean([topk_accuracy(E.rank_scores(name, a, ya, s), a, b, ya, yb, s)
                   for a, b, ya, yb, s in splits], 0)
    print(dataset, name, ref.round(3), "mean", ref.mean().round(3), f"{time.time() - t0:.0f}s",
          flush=True)
  for v in variants:
    hp = fg.Hparams(**{**BASE, **v})
    t0 = time.time()
    accs = []
    for i, (a, b, ya, yb, s) in enumerate(splits):
      xs, _ = learnability.prepare_features(a)
      t = learnability.prepare_targets(ya, "classification")
      accs.append(topk_accuracy(fg.fit(xs, t, hp, seed=i).weights, a, b, ya, yb, s))
    m = np.mean(accs, 0)
    print(dataset, v, m.round(3), "mean", m.mean().round(3), f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
  main(sys.argv[1], ast.literal_eval(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
       tuple(sys.argv[5].split(",")) if len(sys.argv) > 5 else ("f_classif",))
