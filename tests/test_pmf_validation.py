"""Tests for metanas.automl.validation: folds, the fold simulation and the pooled summaries."""

import numpy as np
import pytest
from ml_collections import config_dict

from metanas.automl import validation


def test_fold_indices_partition_the_columns():
  folds = validation.fold_indices(23, 5, seed=0)
  assert len(folds) == 5
  assert sorted(np.concatenate(folds).tolist()) == list(range(23))
  assert {f.size for f in folds} <= {4, 5}
  np.testing.assert_array_equal(folds[2], validation.fold_indices(23, 5, seed=0)[2])
  with pytest.raises(ValueError, match="num_folds"):
    validation.fold_indices(3, 5, seed=0)


def test_summarise_variants_against_hand_computation():
  # Two folds, one column each, T = 3, R = 2 repeats of the random arms.
  opt = [np.array([0.1]), np.array([0.2])]
  fold_a = {"v": np.array([[[0.5, 0.1, 0.1]]] * 2), "random_x2": np.array([[[0.3, 0.2, 0.1]],
                                                                            [[0.3, 0.3, 0.3]]]),
            "random_x4": np.array([[[0.1, 0.1, 0.1]]] * 2), "optimum": opt[0]}
  fold_b = {"v": np.array([[[0.4, 0.2, 0.2]]] * 2), "random_x2": np.array([[[0.4, 0.4, 0.4]]] * 2),
            "random_x4": np.array([[[0.3, 0.3, 0.2]]] * 2), "optimum": opt[1]}
  out = validation.summarise_variants([fold_a, fold_b], (1, 3), score_from=2, score_to=3)
  # Regrets of v: fold a [0.4, 0, 0], fold b [0.2, 0, 0].
  assert out["v"]["regret@1"] == pytest.approx(0.3)
  assert out["v"]["regret@3"] == pytest.approx(0.0)
  assert out["v"]["zero_regret@end"] == 1.0
  assert out["v"]["score"] == pytest.approx(0.0)
  # random_x2 regrets: fold a, mean over repeats of [0.2, 0.1, 0] and [0.2, 0.2, 0.2] =
  # [0.2, 0.15, 0.1]; fold b [0.2, 0.2, 0.2]. Score = mean over t = 2..3 of both folds.
  assert out["random_x2"]["score"] == pytest.approx(np.mean([0.15, 0.1, 0.2, 0.2]))
  assert out["random_x2"]["zero_regret@end"] == 0.0
  assert "rank@1" not in out["random_x2"]
  # Ranks of v among (v, x2, x4) at t=3: fold a, repeat 1 all three tie at 0.1 -> 2, repeat 2
  # v ties x4 (x2 0.3 worst) -> 1.5; fold b v ties x4 at 0.2 -> 1.5. Mean over folds of the
  # repeat-averaged ranks: (1.75 + 1.5) / 2.
  assert out["v"]["rank@3"] == pytest.approx((1.75 + 1.5) / 2)


def _low_rank_problem(seed, n, d, num_steps):
  """A rank-2 error matrix (n pipelines x d datasets), meta-features, and a tiny PMF config."""
  rng = np.random.default_rng(seed)
  errors = 0.3 + 0.05 * (rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)))
  features = rng.normal(size=(d, 3))
  pmf_config = config_dict.ConfigDict(dict(num_latent=2, num_steps=num_steps, batch_size=4,
                                           learning_rate=0.01, prior_weight=1.0, init_noise=0.1,
                                           max_rows=0))
  return errors, features, pmf_config


def test_simulate_fold_smoke_on_a_low_rank_matrix():
  d = 16
  errors, features, pmf_config = _low_rank_problem(0, 12, d, num_steps=5)
  search = config_dict.ConfigDict(dict(num_evals=6, num_warm=2, random_repeats=2))
  variants = {"paper": {"xi": 0.0, "column_noise": None},
              "refit": {"xi": 0.0, "column_noise": (0.01, 0.1)},
              "thompson": {"column_noise": (0.01, 0.1), "acquisition": "thompson"}}
  val = np.array([1, 5, 9])
  fit = np.setdiff1d(np.arange(d), val)
  out = validation.simulate_fold(errors, features, fit, val, 0.5, variants, pmf_config, search,
                                 seed=0)
  np.testing.assert_allclose(out["optimum"], errors[:, val].min(axis=0))
  np.testing.assert_array_equal(out["refit"][0], out["refit"][1])  # EI: deterministic.
  for arm in ("paper", "refit", "thompson", "random_x2", "random_x4"):
    assert out[arm].shape == (2, 3, 6)
    assert np.all(np.diff(out[arm], axis=-1) <= 0)  # Best so far never gets worse.
    assert np.all(out[arm] >= out["optimum"][None, :, None] - 1e-6)
  # Random x4 has seen 4 * 3 = 12 = all pipelines by iteration 3.
  np.testing.assert_allclose(out["random_x4"][:, :, 2:],
                             np.broadcast_to(out["optimum"][None, :, None], (2, 3, 4)), rtol=1e-6)


def test_simulate_fold_with_an_ensemble_of_fits():
  d = 12
  errors, features, pmf_config = _low_rank_problem(2, 10, d, num_steps=4)
  search = config_dict.ConfigDict(dict(num_evals=5, num_warm=2, random_repeats=1))
  variants = {"refit": {"column_noise": (0.01,), "warm": "rank"}}
  val = np.array([2, 6, 11])
  fit = np.setdiff1d(np.arange(d), val)
  single = validation.simulate_fold(errors, features, fit, val, 1.0, variants, pmf_config,
                                    search, seed=0)
  pmf_config.num_fits = 1  # Explicit E = 1: the same numbers as without the key.
  one = validation.simulate_fold(errors, features, fit, val, 1.0, variants, pmf_config, search,
                                 seed=0)
  for arm in single:
    np.testing.assert_array_equal(one[arm], single[arm])
  pmf_config.num_fits = 3
  three = validation.simulate_fold(errors, features, fit, val, 1.0, variants, pmf_config, search,
                                   seed=0)
  assert three["refit"].shape == (1, 3, 5)
  assert np.all(np.diff(three["refit"], axis=-1) <= 0)
  assert np.all(three["refit"] >= three["optimum"][None, :, None] - 1e-6)
  # The random arms do not depend on the fits.
  np.testing.assert_array_equal(three["random_x2"], single["random_x2"])


def test_simulate_fold_all_arms_and_six_arm_ranks():
  d = 14
  errors, features, pmf_config = _low_rank_problem(1, 10, d, num_steps=3)
  search = config_dict.ConfigDict(dict(num_evals=5, num_warm=2, random_repeats=2))
  variants = {"fallback": {"column_noise": (0.01,), "explore_below": 1e9, "fallback": "mean"},
              "rankwarm3": {"column_noise": None, "warm": "rank", "num_warm": 3}}
  val = np.array([0, 4, 7])
  fit = np.setdiff1d(np.arange(d), val)
  out = validation.simulate_fold(errors, features, fit, val, 1.0, variants, pmf_config, search,
                                 seed=0, all_arms=True)
  assert set(out) == set(variants) | set(validation.BASELINE_ARMS) | {"optimum"}
  # The rank-warm-started variant evaluates the portfolio's first three pipelines first.
  np.testing.assert_allclose(out["rankwarm3"][0, :, :3], out["avg_rank_portfolio"][0, :, :3])
  summary = validation.summarise_variants([out], (1, 5), 1, 5, validation.BASELINE_ARMS)
  for v in variants:
    for i in (1, 5):
      assert 1.0 <= summary[v][f"rank@{i}"] <= 6.0
      assert 1.0 <= summary[v][f"best_baseline_rank@{i}"] <= 6.0
  assert "rank@1" not in summary["random_x1"]


def test_cached_computes_once(tmp_path):
  calls = []

  def compute():
    calls.append(1)
    return {"a": np.arange(3.0), "b": np.ones((2, 2))}

  path = str(tmp_path / "fold0.npz")
  first = validation.cached(path, compute)
  second = validation.cached(path, compute)
  assert len(calls) == 1
  for k in first:
    np.testing.assert_array_equal(first[k], second[k])


def test_training_folds_hold_only_training_datasets(data_dir):
  import os  # pylint: disable=g-import-not-at-top
  from metanas import config_lib  # pylint: disable=g-import-not-at-top
  from metanas.automl import data as data_lib  # pylint: disable=g-import-not-at-top
  from metanas.automl import experiment  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = config_lib.load_config(os.path.join(root, "configs", "pmf_automl.py:cpu"))
  config.data_dir = data_dir
  errors, feats, folds = validation.training_folds(config, 5)
  automl = experiment.load_data(config)
  train_idx, test_idx = data_lib.split(automl, config.data.test_fraction, config.data.split_seed)
  np.testing.assert_array_equal(errors, automl.errors[:, train_idx])
  np.testing.assert_array_equal(feats, automl.features[train_idx])
  assert errors.shape[1] == train_idx.size and test_idx.size > 0
  assert sorted(np.concatenate(folds).tolist()) == list(range(train_idx.size))
