"""Image compression on Fashion-MNIST and the Compression Score (Liu et al. 2018, Secs. 4 and 5.2).

1. Teacher: a CNN trained on `n_teacher` training images (hard labels).
2. A conditional DCGAN (AC-GAN losses) trained on the same images.
3. Augmentation (per seed): a small MLP student learns the teacher's probabilities on a transfer set
   built from `n_real` real training images: real only, real + GAN (multiplier x), real + Gaussian
   pixel noise jitter, real + mixup, GAN only, and real with true labels (no teacher). Test accuracy.
4. Compression Score (per seed): the fixed student is trained ONE pass on `score_n` points from each
   generator (real draw, the GAN, a deliberately mode-collapsed GAN that reuses one latent z for every
   sample, Gaussian noise images, mixup, real images with Gaussian pixel jitter, and "prototypes": the
   teacher's most confident real images per class, repeated), labelled by the teacher, and its test
   accuracy is divided by the same on `score_n` other real training points. Teacher-feature IS- and
   FID-style numbers are reported next to it; jitter (FID-style penalises pixel noise the teacher
   ignores) and prototypes (IS-style rewards confident, class-typical points) are where those scores
   and the Compression Score can disagree.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from ml_collections import config_dict

from metanas.compression import augment
from metanas.compression import gan as gan_lib
from metanas.compression import score
from metanas.compression import students
from metanas.data import npz

AUG_SETS = ("real", "real+gan", "real+noise", "real+mixup", "gan", "no_teacher")
GENERATORS = ("real", "gan", "collapsed_gan", "noise", "mixup", "jitter", "prototypes")


def load_images(data_dir: str | None):
  """Fashion-MNIST as float32 [n, 28, 28, 1] in [-1, 1] plus int32 labels (train, test)."""
  arrays = npz.load("fashion_mnist", data_dir)
  f = lambda x: (x.astype(np.float32)[..., None] / 127.5 - 1.0)
  return (f(arrays["x_train"]), arrays["y_train"].astype(np.int32), f(arrays["x_test"]),
          arrays["y_test"].astype(np.int32))


def _accuracy(probs, y):
  return float(np.mean(np.argmax(probs, axis=1) == y))


def run(config: config_dict.ConfigDict, log=lambda *a: None, do_augmentation: bool = True,
        do_score: bool = True) -> tuple[dict, dict]:
  """Runs the image experiment; returns (results, artefacts for plotting)."""
  c = config.images
  x_tr, y_tr, x_te, y_te = load_images(config.data_dir)
  rng = np.random.default_rng(config.seed)
  perm = rng.permutation(len(x_tr))
  teach_idx, pool_idx = perm[:c.n_teacher], perm[c.n_teacher:]
  x_te, y_te = x_te[:c.n_test], y_te[:c.n_test]
  results, art = {}, {}

  t0 = time.time()
  teacher = students.CNN(10, c.teacher.width, c.teacher.dense)
  t_params = students.train_network(teacher, x_tr[teach_idx], np.eye(10, dtype=np.float32)[
      y_tr[teach_idx]], c.teacher.num_steps, c.teacher.batch_size, c.teacher.learning_rate,
                                    config.seed)
  teacher_probs = lambda x: students.predict(teacher.apply, t_params, x)
  results["teacher_acc"] = _accuracy(teacher_probs(x_te), y_te)
  results["teacher_train_s"] = time.time() - t0
  logging.info("teacher acc %.4f (%.0fs)", results["teacher_acc"], results["teacher_train_s"])

  t0 = time.time()
  gan = gan_lib.image_gan(10, c.gan.latent_dim, c.gan.width, learning_rate=c.gan.learning_rate)
  state = gan_lib.train(gan, x_tr[teach_idx], y_tr[teach_idx], c.gan.num_steps, c.gan.batch_size,
                        config.seed, log_fn=lambda s, m: log("gan/images", s, m),
                        log_every=c.gan.log_every)
  results["gan_train_s"] = time.time() - t0
  art["gan_grid"] = gan_lib.sample(gan, state.g_params, np.repeat(np.arange(10), 8), config.seed)
  student = students.MLP(10, tuple(c.student.hidden))

  def synth(kind, n, seed, pool):
    """n points of generator `kind` (labels for class-conditional ones drawn from the data)."""
    r = np.random.default_rng(seed)
    labels = r.choice(y_tr[teach_idx], size=n)
    if kind == "gan":
      return gan_lib.sample(gan, state.g_params, labels, seed + 7)
    if kind == "collapsed_gan":
      z = np.repeat(r.normal(size=(1, gan.latent_dim)), n, axis=0).astype(np.float32)
      return gan_lib.sample(gan, state.g_params, labels, seed + 7, z=z)
    if kind == "noise":
      # Pixel-wise Gaussian with the data's per-pixel mean and std.
      mu, sd = x_tr[teach_idx].mean(0), x_tr[teach_idx].std(0)
      return np.clip(mu + sd * r.normal(size=(n,) + mu.shape), -1, 1).astype(np.float32)
    if kind == "mixup":
      return augment.mixup(pool, -(-n // len(pool)), c.mixup_alpha, seed)[:n]
    if kind == "jitter":
      return augment.gaussian_noise(pool, -(-n // len(pool)), c.noise_sigma, seed, (-1, 1))[:n]
    if kind == "prototypes":
      return augment.prototypes(pool, teacher_probs(pool), c.prototypes_per_class, n)
    raise ValueError(f"Unknown generator {kind!r}.")

  if do_augmentation:
    per_seed = {k: [] for k in AUG_SETS}
    for s in range(config.num_seeds):
      seed = config.seed + 1000 * (s + 1)
      real_idx = np.random.default_rng(seed).choice(pool_idx, c.n_real, replace=False)
      real, real_y = x_tr[real_idx], y_tr[real_idx]
      n_extra = c.multiplier * c.n_real
      sets = {"real": real,
              "real+gan": np.concatenate([real, synth("gan", n_extra, seed, real)]),
              "real+noise": np.concatenate([real, synth("jitter", n_extra, seed, real)]),
              "real+mixup": np.concatenate([real, synth("mixup", n_extra, seed, real)]),
              "gan": synth("gan", n_extra, seed, real)}
      for name in AUG_SETS:
        if name == "no_teacher":
          x, q = real, np.eye(10, dtype=np.float32)[real_y]
        else:
          x = sets[name]
          q = teacher_probs(x)
        params = students.train_network(student, x, q, c.student.num_steps, c.student.batch_size,
                                        c.student.learning_rate, seed)
        per_seed[name].append(_accuracy(students.predict(student.apply, params, x_te), y_te))
      logging.info("images seed %d: %s", s, {k: v[-1] for k, v in per_seed.items()})
    results["augmentation"] = {k: dict(zip(("mean", "se"), score.mean_and_se(v))) | {"per_seed": v}
                               for k, v in per_seed.items()}

  if do_score:
    n = c.score_n
    steps = n // c.score_batch_size

    feature_fn = jax.jit(lambda p, x: teacher.apply(p, x, method=students.CNN.features))

    def fit_eval(x, seed):
      params = students.fit_soft(
          student, student.init(jax.random.key(seed), x[:1]), x, teacher_probs(x),
          students.epoch_indices(len(x), c.score_batch_size, steps, seed), c.student.learning_rate)
      return _accuracy(students.predict(student.apply, params, x_te), y_te)

    features = lambda x: np.concatenate(
        [np.asarray(feature_fn(t_params, jnp.asarray(x[i:i + 4096])))
         for i in range(0, len(x), 4096)])
    test_features = features(x_te)
    cs = {}
    for kind in GENERATORS:
      syn, ref = [], []
      for s in range(c.score_seeds):
        seed = config.seed + 77 * (s + 1)
        idx = np.random.default_rng(seed).choice(pool_idx, 2 * n, replace=False)
        ref.append(x_tr[idx[:n]])
        syn.append(x_tr[idx[n:]] if kind == "real" else synth(kind, n, seed, x_tr[idx[n:]]))
      r = score.compression_score(fit_eval, syn, ref)
      cs[kind] = {"cs_mean": r["mean"], "cs_se": r["se"], "ratios": r["ratios"],
                  "acc_synthetic": r["acc_synthetic"], "acc_real": r["acc_real"],
                  "is_style": score.inception_style_score(teacher_probs(syn[0])),
                  "fid_style": score.fid_style_score(features(syn[0]), test_features)}
      art[f"samples_{kind}"] = syn[0][:16]
      logging.info("CS %s: %.3f +- %.3f", kind, r["mean"], r["se"])
    results["compression_score"] = cs
  return results, art


def plot(results: dict, art: dict, workdir: str) -> list[str]:
  """Sample grids and the CS / IS / FID comparison; returns the written paths."""
  import os  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  paths = []
  grid = art["gan_grid"].reshape(10, 8, 28, 28).transpose(0, 2, 1, 3).reshape(280, 224)
  fig, ax = plt.subplots(figsize=(4, 5))
  ax.imshow(grid, cmap="gray", vmin=-1, vmax=1)
  ax.set_title("conditional DCGAN samples (row = class)")
  ax.axis("off")
  paths.append(os.path.join(workdir, "image_gan_samples.png"))
  fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
  plt.close(fig)
  if "compression_score" in results:
    cs = results["compression_score"]
    kinds = list(cs)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].bar(kinds, [cs[k]["cs_mean"] for k in kinds], yerr=[cs[k]["cs_se"] for k in kinds])
    axes[0].set_title("Compression Score (higher = better)")
    axes[1].bar(kinds, [cs[k]["is_style"] for k in kinds])
    axes[1].set_title("IS-style, teacher probs (higher = better)")
    axes[2].bar(kinds, [cs[k]["fid_style"] for k in kinds])
    axes[2].set_title("FID-style, teacher features (lower = better)")
    for ax in axes:
      ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    paths.append(os.path.join(workdir, "compression_score.png"))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
  return paths
