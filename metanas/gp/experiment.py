"""GPPVAE experiments (arXiv 1810.11738, Sec. 4): out-of-sample view prediction, CVAE/LIGP baselines.

`run(config, workdir)` (registry method "gppvae") trains, for every seed in `config.seeds`, the
models named in `config.models` on `config.dataset` ("rotated_mnist" or "coil20") and reports the
per-pixel MSE of predicted images for held-out (object, view) pairs:

- "cvae": a CVAE conditioned on the one-hot view. Prediction for (o, v*): the mean of the encoder
  means of object o's training images (each encoded with its own view), decoded with condition v*.
- "ligp": the pretrained VAE (i.i.d. prior) + a GP with the additive one-hot linear kernel
  s_o [o = o'] + s_v [v = v'] + s_n fitted by type-II ML to the encoder means (an object effect
  plus a view effect in latent space); prediction = GP posterior mean, decoded.
- "gppvae_dis": the pretrained VAE frozen, the object x view kernel fitted on the ELBO's GP term.
- "gppvae_joint": GPPVAE-dis, then everything trained jointly by low-memory stochastic backprop.
Prediction for the GP models: the GP posterior mean of the test latents given the encoder means
of the training images, decoded.

Writes results.json (per model: mean/std over seeds, per-seed values, held-out-view and
random-pair MSE), table.md, metrics.jsonl and prediction-grid figures into the workdir.
"""

import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from metanas import metric_writer
from metanas.gp import data as gp_data
from metanas.gp import gppvae
from metanas.gp import kernels
from metanas.gp import plots
from metanas.gp import training
from metanas.gp import vae

MODELS = ("cvae", "ligp", "gppvae_dis", "gppvae_joint")


@functools.partial(jax.jit, static_argnums=(0, 6))
def _predict_cvae(nets, params, images_tr, cond_tr, obj_onehot_tr, cond_te_obj, batch_size):
  """CVAE predictions: object-mean encoder means decoded at the test views.

  Args:
    nets, params: the CVAE.
    images_tr, cond_tr: [N, H, W] training images and their one-hot views [N, V].
    obj_onehot_tr: [N, P] one-hot objects of the training images.
    cond_te_obj: (one-hot test views [M, V], one-hot test objects [M, P]).
    batch_size: minibatch size for encoding/decoding.

  Returns:
    [M, H, W] predicted test images.
  """
  n = images_tr.shape[0]
  batched = lambda x: gppvae.batched(x, batch_size)
  mu = jax.lax.map(lambda a: vae.encode(nets, params, a[0], a[1])[0],
                   (batched(images_tr), batched(cond_tr)))
  mu = mu.reshape(-1, mu.shape[-1])[:n]
  counts = jnp.maximum(jnp.sum(obj_onehot_tr, axis=0), 1.0)
  obj_mean = (obj_onehot_tr.T @ mu) / counts[:, None]  # [P, L]
  cond_te, obj_te = cond_te_obj
  return gppvae.decode_all(nets, params, obj_te @ obj_mean, batch_size, cond_te)


def _predict_gp(nets, spec, params, kparams, ds, batch_size):
  """GP posterior-mean latents of the test pairs given training encoder means, decoded."""
  tr, te = ds["train_idx"], ds["test_idx"]
  return np.asarray(gppvae.predict_images(
      nets, spec, params, kparams, jnp.asarray(ds["images"][tr]), jnp.asarray(ds["obj"][tr]),
      jnp.asarray(ds["view"][tr]), jnp.asarray(ds["obj"][te]), jnp.asarray(ds["view"][te]),
      batch_size))


def _mse(pred, ds):
  te = ds["test_idx"]
  err = np.mean((pred - ds["images"][te]) ** 2, axis=(1, 2))
  unseen = ds["view"][te] == ds["heldout_view"]
  return {"mse": float(err.mean()), "mse_heldout_view": float(err[unseen].mean()),
          "mse_random_pairs": float(err[~unseen].mean())}


def _kernel_spec(config, ds, kind):
  k = config.kernel
  return kernels.KernelSpec(num_objects=ds["num_objects"], num_views=ds["num_views"], kind=kind,
                            view_kernel=k.view_kernel, object_dim=k.object_dim,
                            view_dim=k.view_dim, noise_floor=k.noise_floor)


def run_seed(config, ds, seed: int, writer) -> tuple[dict, dict]:
  """Trains the configured models for one seed; returns (metrics per model, test predictions)."""
  rng = jax.random.key(seed)
  tr = ds["train_idx"]
  images = jnp.asarray(ds["images"][tr])
  obj, view = jnp.asarray(ds["obj"][tr]), jnp.asarray(ds["view"][tr])
  shape = tuple(ds["images"].shape[1:])
  bs = config.eval_batch_size
  results, preds = {}, {}
  log = lambda prefix: (lambda step, m: writer.write(step, m, prefix=f"seed{seed}/{prefix}/"))
  models = tuple(config.models)

  if "cvae" in models:
    t0 = time.time()
    nets_c = vae.Networks(shape, config.net.latent_dim, tuple(config.net.hidden), ds["num_views"])
    cond = jnp.asarray(np.eye(ds["num_views"], dtype=np.float32)[ds["view"][tr]])
    params_c, _ = training.train_iid(
        nets_c, vae.init(nets_c, jax.random.fold_in(rng, 1)), images, cond,
        config.cvae.num_epochs, config.cvae.batch_size, config.cvae.learning_rate,
        jax.random.fold_in(rng, 2), log("cvae"))
    te = ds["test_idx"]
    eye_v = np.eye(ds["num_views"], dtype=np.float32)
    eye_o = np.eye(ds["num_objects"], dtype=np.float32)
    preds["cvae"] = np.asarray(_predict_cvae(
        nets_c, params_c, images, cond, jnp.asarray(eye_o[ds["obj"][tr]]),
        (jnp.asarray(eye_v[ds["view"][te]]), jnp.asarray(eye_o[ds["obj"][te]])), bs))
    results["cvae"] = dict(_mse(preds["cvae"], ds), wall_s=time.time() - t0)
    logging.info("seed %d cvae %s", seed, results["cvae"])

  if not set(models) & {"ligp", "gppvae_dis", "gppvae_joint"}:
    return results, preds
  t0 = time.time()
  nets = vae.Networks(shape, config.net.latent_dim, tuple(config.net.hidden))
  params, _ = training.train_iid(
      nets, vae.init(nets, jax.random.fold_in(rng, 3)), images, None, config.vae.num_epochs,
      config.vae.batch_size, config.vae.learning_rate, jax.random.fold_in(rng, 4), log("vae"))
  vae_s = time.time() - t0
  mu, logvar = gppvae.encode_all_jit(nets, params, images, bs)

  if "ligp" in models:
    t0 = time.time()
    spec_l = _kernel_spec(config, ds, "additive")
    kp_l, _ = training.fit_kernel(spec_l, kernels.init(spec_l, jax.random.fold_in(rng, 5)), mu,
                                  None, obj, view, config.ligp.num_steps,
                                  config.ligp.learning_rate, jax.random.fold_in(rng, 6),
                                  log("ligp"), config.log_every)
    preds["ligp"] = _predict_gp(nets, spec_l, params, kp_l, ds, bs)
    results["ligp"] = dict(_mse(preds["ligp"], ds), wall_s=vae_s + time.time() - t0)
    logging.info("seed %d ligp %s", seed, results["ligp"])

  if set(models) & {"gppvae_dis", "gppvae_joint"}:
    t0 = time.time()
    spec = _kernel_spec(config, ds, "product")
    kp, _ = training.fit_kernel(spec, kernels.init(spec, jax.random.fold_in(rng, 7)), mu, logvar,
                                obj, view, config.dis.num_steps, config.dis.learning_rate,
                                jax.random.fold_in(rng, 8), log("dis"), config.log_every)
    dis_s = vae_s + time.time() - t0
    if "gppvae_dis" in models:
      preds["gppvae_dis"] = _predict_gp(nets, spec, params, kp, ds, bs)
      results["gppvae_dis"] = dict(_mse(preds["gppvae_dis"], ds), wall_s=dis_s)
      logging.info("seed %d dis %s", seed, results["gppvae_dis"])
    if "gppvae_joint" in models:
      t0 = time.time()
      params_j, kp_j, hist = training.train_joint(
          nets, spec, params, kp, images, obj, view, config.joint.num_epochs,
          config.joint.batch_size, config.joint.learning_rate, jax.random.fold_in(rng, 9),
          log("joint"))
      preds["gppvae_joint"] = _predict_gp(nets, spec, params_j, kp_j, ds, bs)
      results["gppvae_joint"] = dict(_mse(preds["gppvae_joint"], ds),
                                     wall_s=dis_s + time.time() - t0,
                                     final_loss=hist[-1]["loss"] if hist else float("nan"))
      logging.info("seed %d joint %s", seed, results["gppvae_joint"])
  return results, preds


def _figure(workdir, config, ds, preds, seed):
  """Ground truth and predictions for the first few objects (all test cells of those objects)."""
  num_obj = min(config.num_figure_objects, ds["num_objects"])
  num_views = ds["num_views"]
  step = max(1, num_views // 16)
  views = np.unique(np.append(np.arange(0, num_views, step), ds["heldout_view"]))
  truth = np.zeros((num_obj, num_views) + ds["images"].shape[1:], np.float32)
  is_test = np.zeros((num_obj, num_views), bool)
  full = {name: np.zeros_like(truth) for name in preds}
  for i in range(ds["obj"].size):
    if ds["obj"][i] < num_obj:
      truth[ds["obj"][i], ds["view"][i]] = ds["images"][i]
  for j, i in enumerate(ds["test_idx"]):
    o, v = ds["obj"][i], ds["view"][i]
    if o < num_obj:
      is_test[o, v] = True
      for name, p in preds.items():
        full[name][o, v] = p[j]
  path = os.path.join(workdir, f"predictions_{config.dataset}_seed{seed}.png")
  plots.prediction_grid(path, truth, full, is_test, views, ds["heldout_view"],
                        f"{config.dataset}: predicted held-out views, seed {seed}")
  return path


def _table(config, summary) -> str:
  lines = [f"| model ({config.dataset}) | MSE (mean +- std over {len(config.seeds)} seeds) | "
           "held-out view | random pairs | wall s/seed |", "|---|---|---|---|---|"]
  for name in MODELS:
    if name in summary:
      s = summary[name]
      lines.append(f"| {name} | {s['mse_mean']:.4f} +- {s['mse_std']:.4f} | "
                   f"{s['mse_heldout_view_mean']:.4f} | {s['mse_random_pairs_mean']:.4f} | "
                   f"{s['wall_s_mean']:.0f} |")
  return "\n".join(lines) + "\n"


def run(config, workdir: str) -> dict:
  """Registry entry point: all models x seeds; writes results.json, table.md and figures."""
  unknown = set(config.models) - set(MODELS)
  if unknown:
    raise ValueError(f"Unknown model(s) {sorted(unknown)} in config.models; choose from {MODELS}.")
  os.makedirs(workdir, exist_ok=True)
  ds = gp_data.load(config.dataset, config.data_dir, config.data)
  logging.info("%s: %d images, %d train, %d test, held-out view %d", config.dataset,
               ds["obj"].size, ds["train_idx"].size, ds["test_idx"].size, ds["heldout_view"])
  writer = metric_writer.MetricWriter(workdir, tensorboard=config.tensorboard)
  per_seed, figures = {}, []
  t_start = time.time()
  for seed in config.seeds:
    res, preds = run_seed(config, ds, seed, writer)
    per_seed[seed] = res
    if seed == config.seeds[0] and config.num_figure_objects > 0 and preds:
      figures.append(_figure(workdir, config, ds, preds, seed))
  writer.close()
  summary = {}
  for name in MODELS:
    rows = [per_seed[s][name] for s in config.seeds if name in per_seed[s]]
    if not rows:
      continue
    summary[name] = {"per_seed": rows}
    for key in ("mse", "mse_heldout_view", "mse_random_pairs", "wall_s"):
      vals = np.array([r[key] for r in rows])
      summary[name][f"{key}_mean"] = float(vals.mean())
      summary[name][f"{key}_std"] = float(vals.std())
  table = _table(config, summary)
  with open(os.path.join(workdir, "table.md"), "w") as f:
    f.write(table)
  results = {"dataset": config.dataset, "num_train": int(ds["train_idx"].size),
             "num_test": int(ds["test_idx"].size), "heldout_view": ds["heldout_view"],
             "seeds": list(config.seeds), "models": summary, "figures": figures,
             "total_wall_s": time.time() - t_start}
  metric_writer.write_results(workdir, results)
  print(table)
  return results
