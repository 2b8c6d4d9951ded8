r"""Two-stage Feature Gradients (a lead, see RULE.md next to this file).

  # inner cross-validation of the (M, o2) grid (outer test rows unused):
  PYTHONPATH=. python experiments/feature_gradients/two_stage/two_stage.py inner arcene 3 3
  # outer evaluation on the 20 splits of the seeds20 run, paired with its rows:
  PYTHONPATH=. python experiments/feature_gradients/two_stage/two_stage.py outer arcene 60 4 \
      /work/runs/fg_s20_arcene
"""

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import inner_cv  # pylint: disable=wrong-import-position
from seeds20 import read  # pylint: disable=wrong-import-position

from metanas.selection import feature_gradients as fg  # pylint: disable=wrong-import-position
from metanas.selection import learnability  # pylint: disable=wrong-import-position

BASE = dict(inner_cv.BASE, optimizer="normalized_sgd", learning_rate=0.1, batch_size=0,
            objective="classification_error")
GRID = ((60, 2), (60, 4), (200, 2), (200, 4))


def scores(x, y, seed, m, order2):
  """(two-stage scores, one-stage weights) for raw training rows x [N, D] and labels y."""
  t = learnability.prepare_targets(y, "classification")
  w1 = fg.fit(learnability.prepare_features(x)[0], t, fg.Hparams(**BASE), seed=seed).weights
  top = np.argsort(-w1, kind="stable")[:m]
  w2 = fg.fit(learnability.prepare_features(x[:, top])[0], t,
              fg.Hparams(**dict(BASE, order=order2)), seed=seed).weights
  out = w1 - 2.0  # Below every stage-2 weight (weights are in (0, 1)).
  out[top] = w2
  return out, w1


def inner(dataset, num_seeds, folds):
  x, y = inner_cv.E.load_dataset(dataset, None)
  splits = list(inner_cv.inner_splits(x, y, int(num_seeds), int(folds)))
  for m, o2 in GRID:
    t0 = time.time()
    accs = [inner_cv.topk_accuracy(scores(a, ya, i, m, o2)[0], a, b, ya, yb, s)
            for i, (a, b, ya, yb, s) in enumerate(splits)]
    mean = np.mean(accs, 0)
    print(dataset, (m, o2), mean.round(3), "mean", mean.mean().round(3),
          f"{time.time() - t0:.0f}s", flush=True)


def outer(dataset, m, o2, ref_workdir):
  e = inner_cv.E
  with open(os.path.join(ref_workdir, "results.json")) as f:
    ref = json.load(f)
  x, y = e.load_dataset(dataset, None)
  acc = {str(k): [] for k in ref["ks"]}
  for seed in range(len(ref["accuracy_per_seed"]["all"]["all"])):
    xtr, xte, ytr, yte, _ = e.split(x, y, 0.3, seed)
    order = np.argsort(-scores(xtr, ytr, seed, int(m), int(o2))[0], kind="stable")
    for k in ref["ks"]:
      idx = order[:k]
      acc[str(k)].append(e.accuracy("svm_rbf", xtr[:, idx], ytr, xte[:, idx], yte, seed))
  ref["accuracy_per_seed"]["feature_gradients"] = acc
  print(f"{dataset}: two-stage FG (M = {m}, order {o2}) on {len(acc['5'])} outer splits")
  read.print_table(ref)


if __name__ == "__main__":
  {"inner": inner, "outer": outer}[sys.argv[1]](*sys.argv[2:])
