"""Tabular teacher-student compression with GAN-augmented transfer sets (Liu et al. 2018, Sec. 5.1).

Per dataset and seed: a 500-tree random-forest teacher on the training split; an AC-GAN, MUNGE and a
class-conditional Gaussian mixture fitted to the same split; transfer sets

  train        the training inputs
  gan          multiplier x n GAN samples only
  train+gan    train plus multiplier x n GAN samples
  train+munge  train plus multiplier x n MUNGE samples
  train+gmm    train plus multiplier x n Gaussian-mixture samples
  no_teacher   train with the true labels as the target (no teacher)

labelled by the teacher's P(y = 1 | x) (`teacher_labels="oob"`: the training rows get the forest's
out-of-bag probabilities, see `students.teacher_targets`); students are random-forest regressors with 1/5/10/20 trees
and a small MLP (soft cross-entropy). Metric: test AUC, mean +- s.e. over seeds. "gap_closed" is
(AUC[train+gan] - AUC[train]) / (AUC[teacher] - AUC[train]) for each student size (per seed and of
the means).
"""

import time

import numpy as np
from absl import logging
from ml_collections import config_dict
from sklearn import metrics as skmetrics

from metanas.compression import augment
from metanas.compression import gan as gan_lib
from metanas.compression import score
from metanas.compression import students
from metanas.compression import tabular

TRANSFER_SETS = ("train", "gan", "train+gan", "train+munge", "train+gmm", "no_teacher")


def _auc(y, s):
  return float(skmetrics.roc_auc_score(y, s))


def transfer_sets(data: tabular.TabularData, config: config_dict.ConfigDict, seed: int,
                  log=lambda *a: None) -> dict[str, np.ndarray]:
  """The synthetic parts: {"gan", "munge", "gmm"} -> [multiplier * n, dim] rows."""
  n, mult = len(data.y_train), config.multiplier
  out = {}
  needs = set(config.transfer_sets)
  if needs & {"gan", "train+gan"}:
    t0 = time.time()
    gan = gan_lib.tabular_gan(data.spec, 2, config.gan.latent_dim, tuple(config.gan.hidden),
                              tau=config.gan.tau, learning_rate=config.gan.learning_rate,
                              straight_through=config.gan.straight_through,
                              aux_weight=config.gan.aux_weight, beta2=config.gan.beta2,
                              loss=config.gan.loss, gp_weight=config.gan.gp_weight,
                              pac=config.gan.pac, conditional=config.gan.conditional,
                              cond_weight=config.gan.cond_weight)
    # The GAN models Gaussianised numeric columns; samples are mapped back onto the data's quantiles.
    codec = tabular.QuantileCodec(data.x_train, data.spec) if config.gan.quantile else None
    x_gan = codec.encode(data.x_train) if codec else data.x_train
    state = gan_lib.train(gan, x_gan, data.y_train, config.gan.num_steps,
                          config.gan.batch_size, seed,
                          log_fn=lambda s, m: log(f"gan/{data.name}/seed{seed}", s, m),
                          log_every=config.gan.log_every)
    if gan.cond_dim:
      # CTGAN sampling: labels and conditions of randomly drawn training rows (the data's joint).
      host_rng = np.random.default_rng(seed)
      rows = host_rng.integers(0, n, size=mult * n)
      labels = data.y_train[rows]
      cond = gan_lib.row_conditions(host_rng, x_gan[rows], data.spec)
    else:
      labels, cond = np.random.default_rng(seed).choice(data.y_train, size=mult * n), None
    out["gan"] = gan_lib.sample(gan, state.g_params, labels, seed + 1, cond=cond)
    if codec:
      out["gan"] = codec.decode(out["gan"])
    logging.info("%s seed %d: GAN trained in %.1fs", data.name, seed, time.time() - t0)
  if "train+munge" in needs:
    out["munge"] = augment.munge(data.x_train, data.spec, mult, config.munge.p, config.munge.s,
                                 seed)
  if "train+gmm" in needs:
    out["gmm"] = augment.class_gmm(data.x_train, data.y_train, data.spec, mult * n,
                                   config.gmm.num_components, seed)[0]
  return out


def run_seed(name: str, config: config_dict.ConfigDict, seed: int, data_dir: str | None = None,
             log=lambda *a: None) -> dict:
  """All transfer sets and students for one dataset and seed: {"teacher": auc, set: {student: auc}}."""
  # Bad names fail here, not after the GAN has trained.
  unknown = [s for s in config.transfer_sets if s not in TRANSFER_SETS]
  if unknown:
    raise ValueError(f"Unknown transfer set {unknown[0]!r}; choose from {TRANSFER_SETS}.")
  students.check_teacher_labels(config.teacher_labels)
  data = tabular.load(name, data_dir, config.n_train, config.n_test, seed=seed,
                      validation=config.validation)
  t0 = time.time()
  teacher = students.rf_teacher(data.x_train, data.y_train, config.teacher_trees, seed,
                                oob=config.teacher_labels == "oob")
  result = {"teacher": _auc(data.y_test, teacher.predict_proba(data.x_test)[:, 1])}
  synth = transfer_sets(data, config, seed, log)
  for set_name in config.transfer_sets:
    if set_name == "no_teacher":
      x, target = data.x_train, data.y_train.astype(np.float32)
    else:
      with_train = set_name.startswith("train")
      parts = [data.x_train] if with_train else []
      extra = set_name.split("+")[-1] if "+" in set_name else (None if set_name == "train" else
                                                                 set_name)
      if extra is not None:
        parts.append(synth[extra])
      x = np.concatenate(parts, axis=0)
      target = students.teacher_targets(teacher, x, len(data.x_train) if with_train else 0,
                                        config.teacher_labels)
    rf = students.rf_student_scores(x, target, data.x_test, config.student_trees, seed)
    aucs = {f"rf{k}": _auc(data.y_test, s) for k, s in rf.items()}
    if config.mlp.num_steps > 0:
      mlp = students.MLP(2, tuple(config.mlp.hidden))
      q = np.stack([1 - target, target], axis=1)
      params = students.train_network(mlp, x, q, config.mlp.num_steps, config.mlp.batch_size,
                                      config.mlp.learning_rate, seed)
      aucs["mlp"] = _auc(data.y_test, students.predict(mlp.apply, params, data.x_test)[:, 1])
    result[set_name] = aucs
  logging.info("%s seed %d done in %.1fs: %s", name, seed, time.time() - t0, result)
  return result


def summarise(per_seed: list[dict]) -> dict:
  """Mean +- s.e. over seeds of every AUC, and the fraction of the gap closed by train+gan."""
  out = {"teacher": dict(zip(("mean", "se"), score.mean_and_se([r["teacher"] for r in per_seed])))}
  for set_name in per_seed[0]:
    if set_name == "teacher":
      continue
    out[set_name] = {}
    for student in per_seed[0][set_name]:
      m, se = score.mean_and_se([r[set_name][student] for r in per_seed])
      out[set_name][student] = {"mean": m, "se": se}
  if "train" in out and "train+gan" in out:
    # Undefined (NaN) where the train-only student is within 1e-3 AUC of the teacher or above it.
    frac = lambda gan_auc, train_auc, teacher_auc: ((gan_auc - train_auc) / (teacher_auc - train_auc)
                                                    if teacher_auc - train_auc > 1e-3 else np.nan)
    out["gap_closed"] = {}
    for student in out["train"]:
      gaps = np.asarray([frac(r["train+gan"][student], r["train"][student], r["teacher"])
                         for r in per_seed])
      of_means = frac(out["train+gan"][student]["mean"], out["train"][student]["mean"],
                      out["teacher"]["mean"])
      finite = gaps[np.isfinite(gaps)]
      m, se = score.mean_and_se(finite) if finite.size else (np.nan, np.nan)
      out["gap_closed"][student] = {"of_means": of_means, "per_seed_mean": m, "per_seed_se": se,
                                    "seeds_defined": int(finite.size),
                                    "per_seed": [float(g) for g in gaps]}
  return out


def plot(summary: dict, path: str, student_trees) -> None:
  """AUC vs number of student trees, one line per transfer set and a dashed teacher line."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, len(summary), figsize=(5 * len(summary), 3.8), squeeze=False)
  for ax, (name, s) in zip(axes[0], summary.items()):
    for set_name in TRANSFER_SETS:
      if set_name not in s:
        continue
      m = [s[set_name][f"rf{k}"]["mean"] for k in student_trees]
      e = [s[set_name][f"rf{k}"]["se"] for k in student_trees]
      ax.errorbar(student_trees, m, yerr=e, marker="o", capsize=2, label=set_name)
    ax.axhline(s["teacher"]["mean"], color="k", ls="--", label="teacher (500 trees)")
    ax.set_xscale("log")
    ax.set_xticks(list(student_trees), [str(k) for k in student_trees])
    ax.minorticks_off()
    ax.set_xlabel("student trees")
    ax.set_ylabel("test AUC")
    ax.set_title(name)
  axes[0, -1].legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
