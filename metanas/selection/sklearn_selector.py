"""A scikit-learn feature selector on top of the pure-JAX Feature Gradients core.

  from sklearn.pipeline import make_pipeline
  pipe = make_pipeline(FeatureGradientsSelector(n_features_to_select=10), LogisticRegression())
  cross_val_score(pipe, X, y, cv=5)

Follows the scikit-learn estimator contract: `__init__` only stores its arguments (so `clone` and
`get_params`/`set_params` work), everything learnt ends in `_`, and `transform`/`get_support` come
from `SelectorMixin`.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.validation import validate_data

from metanas.selection import feature_gradients as fg
from metanas.selection import learnability


class FeatureGradientsSelector(SelectorMixin, BaseEstimator):
  """Feature Gradients (Sheth & Fusi 2020) as a scikit-learn selector.

  Args:
    n_features_to_select: k for `selection="top_k"`; the cap on k for "elbow".
    selection: "top_k", "threshold" (weights > `threshold`) or "elbow" (knee of the learnability
      curve of the top-k features).
    threshold: weight threshold for `selection="threshold"`.
    task: "auto" (classification for class-like targets), "classification" or "regression".
    order: estimator order K (1..12).
    sparsity: w in the loss (1 - w) * term + w mean(s), term = 1 - EV or the classification
      error (see `objective`).
    learning_rate, grad_clip, num_epochs, batch_size, minibatches_per_step, init_logit, optimizer,
      num_restarts: see `feature_gradients.Hparams`.
    objective: "auto" (the error of the best linear classifier for a classification task, 1 - EV
      for regression), "classification_error" (classification only) or "explained_variance".
    random_state: int seed for mini-batch shuffling.

  Attributes (after fit):
    scores_: [D] feature weights s in (0, 1).
    history_: per-epoch training metrics.
    n_features_in_, feature_names_in_ (when X is a DataFrame).
  """

  def __init__(self, n_features_to_select=10, selection="top_k", threshold=0.5, task="auto",
               order=2, sparsity=0.3, learning_rate=0.05, grad_clip=1.0, num_epochs=50,
               batch_size=256, minibatches_per_step=1, init_logit=0.0, optimizer="adam",
               num_restarts=1, objective="auto", random_state=0):
    self.n_features_to_select = n_features_to_select
    self.selection = selection
    self.threshold = threshold
    self.task = task
    self.order = order
    self.sparsity = sparsity
    self.learning_rate = learning_rate
    self.grad_clip = grad_clip
    self.num_epochs = num_epochs
    self.batch_size = batch_size
    self.minibatches_per_step = minibatches_per_step
    self.init_logit = init_logit
    self.optimizer = optimizer
    self.num_restarts = num_restarts
    self.objective = objective
    self.random_state = random_state

  def _task(self, y) -> str:
    if self.task != "auto":
      return self.task
    kind = type_of_target(y)
    return "classification" if kind in ("binary", "multiclass") else "regression"

  def fit(self, X, y):
    """Learns feature weights on [N, D] `X` and [N] `y`; returns self."""
    X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=False, y_numeric=False)
    if self.selection not in ("top_k", "threshold", "elbow"):
      raise ValueError("selection must be 'top_k', 'threshold' or 'elbow', got "
                       f"{self.selection!r}.")
    if self.selection == "top_k" and not 1 <= self.n_features_to_select <= X.shape[1]:
      raise ValueError(f"n_features_to_select={self.n_features_to_select} must be in "
                       f"1..{X.shape[1]} (the number of features).")
    task = self._task(y)
    objective = self.objective
    if objective == "auto":
      objective = "classification_error" if task == "classification" else "explained_variance"
    if objective == "classification_error" and task != "classification":
      raise ValueError("objective='classification_error' needs class labels (task "
                       f"'classification'); this target was read as {task!r}.")
    x, _ = learnability.prepare_features(X)
    t = learnability.prepare_targets(y, task)
    hp = fg.Hparams(order=self.order, sparsity=self.sparsity, learning_rate=self.learning_rate,
                    grad_clip=self.grad_clip, num_epochs=self.num_epochs,
                    batch_size=self.batch_size, minibatches_per_step=self.minibatches_per_step,
                    init_logit=self.init_logit, optimizer=self.optimizer,
                    num_restarts=self.num_restarts, objective=objective)
    seed = 0 if self.random_state is None else int(self.random_state)
    result = fg.fit(x, t, hp, seed=seed)
    self.scores_ = result.weights
    self.history_ = result.history
    if self.selection == "top_k":
      idx = fg.select_top_k(self.scores_, self.n_features_to_select)
    elif self.selection == "threshold":
      idx = fg.select_threshold(self.scores_, self.threshold)
    else:
      idx = fg.select_elbow(x, t, self.scores_, self.order, max_features=self.n_features_to_select)
    mask = np.zeros(X.shape[1], bool)
    mask[idx] = True
    self.support_ = mask
    return self

  def _get_support_mask(self):
    check_is_fitted(self, "support_")
    return self.support_
