"""Meta-training of the H-Meta-NAS supernet and of the fixed-architecture (manual) baselines.

Both plug into the generic loop `metanas.train.train`. The supernet task samples one architecture
per task on the host (uniform over genes, optionally the "sandwich" rule: task 0 gets the largest
and task 1 the smallest network, and optionally OFA's progressive shrinking: the largest network
alone first, then elastic kernels, then depths, then the whole space) and ships the decoded
architecture inside the batch, so the jitted step is compiled once. A manual baseline is a plain
network of one fixed shape trained with first-order MAML on the same episodes and step budget.
"""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import config_dict

from metanas import train
from metanas.data import omniglot
from metanas.meta import experiment
from metanas.meta import maml
from metanas.nas import hmetanas
from metanas.nas import search_space as ss
from metanas.nas import supernet


@flax.struct.dataclass
class TrainState:
  meta_params: dict  # {"model": params, "inner_lr": lrs}
  opt_state: optax.OptState


def settings_from(config: config_dict.ConfigDict) -> hmetanas.MamlSettings:
  m = config.maml
  return hmetanas.MamlSettings(m.num_inner_steps, m.inner_lr, m.first_order, m.learn_inner_lr)


def space_from(config: config_dict.ConfigDict, num_classes: int, image_size: int,
               in_channels: int) -> ss.SearchSpace:
  s = config.space
  return ss.SearchSpace(max_depth=s.max_depth, depth_choices=tuple(s.depth_choices),
                        kernel_choices=tuple(s.kernel_choices), width_ratios=tuple(s.width_ratios),
                        global_multipliers=tuple(s.global_multipliers), base_width=s.base_width,
                        in_channels=in_channels, image_size=image_size, num_classes=num_classes)


# Progressive shrinking (OFA, Cai et al. 2020): the genes each stage lets vary; the others are
# held at the largest network's values. After the last listed stage the whole space is sampled.
PROGRESSIVE_STAGES = ("largest", "kernel", "depth")


def progressive_stage(step: int, boundaries) -> str:
  """Stage of training step `step` when stage i of PROGRESSIVE_STAGES ends at boundaries[i]
  (increasing step numbers; fewer boundaries skip the later stages); "all" after the last."""
  for name, end in zip(PROGRESSIVE_STAGES, boundaries):
    if step < end:
      return name
  return "all"


def _free_genes(space: ss.SearchSpace, stage: str) -> np.ndarray:
  """bool [num_genes]: the genes sampled in `stage` (kernels, then the depth too, then all)."""
  L = space.max_depth
  free = np.zeros(space.num_genes, bool)
  if stage == "all":
    free[:] = True
  elif stage in ("kernel", "depth"):
    free[2:2 + L] = True
    free[1] = stage == "depth"
  elif stage != "largest":
    raise ValueError(f"Unknown progressive stage {stage!r}; use one of "
                     f"{PROGRESSIVE_STAGES + ('all',)}.")
  return free


def sample_archs(space: ss.SearchSpace, rng: np.random.Generator, n: int,
                 sandwich: bool, stage: str = "all") -> np.ndarray:
  """Genes [n, num_genes] for one meta-batch: uniform over the genes `stage` lets vary (the rest
  at the largest network's values), plus the stage's largest and smallest networks under the
  sandwich rule (H-Meta-NAS Sec. 3.2)."""
  free = _free_genes(space, stage)
  big = ss.largest(space)
  genes = ss.canonical(space, np.where(free, ss.random_genes(space, rng, n), big))
  if sandwich and n >= 2:
    genes[0] = big
    genes[1] = ss.canonical(space, np.where(free, ss.smallest(space), big))
  return genes


def _optimizer(config, num_steps: int):
  """Adam (optionally clipped, constant or cosine rate): the MAML experiment's optimiser."""
  return experiment.build_optimizer(config.optim, num_steps)


def episodes(sampler: omniglot.OmniglotSampler, rng: np.random.Generator, n: int,
             spec: omniglot.EpisodeSpec) -> dict:
  batch = sampler.sample(rng, n, spec)
  batch.pop("classes")
  return batch


def supernet_task(config, space: ss.SearchSpace, sampler, spec, evaluate=None) -> train.Task:
  """The generic loop's Task for supernet meta-training (one architecture per task)."""
  settings = settings_from(config)
  optimizer = _optimizer(config, config.train.num_steps)
  impl = config.model.conv_impl
  distill_weight = float(config.supernet.get("inplace_distill", 0.0))
  boundaries = tuple(config.supernet.get("progressive_steps", ()))
  if len(boundaries) > len(PROGRESSIVE_STAGES) or any(
      b <= a for a, b in zip((0,) + boundaries, boundaries)):
    raise ValueError(f"supernet.progressive_steps {boundaries} must be at most "
                     f"{len(PROGRESSIVE_STAGES)} increasing positive step numbers (the ends of "
                     f"the stages {PROGRESSIVE_STAGES}).")
  teacher_arch = supernet.arch_arrays(space, ss.largest(space)) if distill_weight else None

  def init(rng):
    params = supernet.init(space, rng,
                           head_per_depth=config.supernet.get("head_per_depth", False))
    mp = {"model": params,
          "inner_lr": maml.init_inner_lrs(params, settings.num_inner_steps, settings.inner_lr)}
    return TrainState(meta_params=mp, opt_state=optimizer.init(mp))

  def step(state, batch, rng):
    del rng
    (value, metrics), grads = jax.value_and_grad(hmetanas.meta_loss, has_aux=True)(
        state.meta_params, batch, settings, impl, teacher_arch, distill_weight)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.meta_params)
    metrics = dict(metrics, loss=value, grad_norm=optax.global_norm(grads))
    return TrainState(optax.apply_updates(state.meta_params, updates), opt_state), metrics

  def sample_batch(step_num):
    rng = np.random.default_rng([config.train.seed, 1, step_num])
    batch = episodes(sampler, rng, config.maml.meta_batch_size, spec)
    stage = progressive_stage(step_num, boundaries)
    genes = sample_archs(space, rng, config.maml.meta_batch_size, config.supernet.sandwich, stage)
    batch.update(ss.decode(space, genes))
    return batch

  return train.Task(init=init, step=step, sample_batch=sample_batch, evaluate=evaluate)


def baseline_task(config, space: ss.SearchSpace, genes: np.ndarray, sampler, spec,
                  evaluate=None, num_steps: int | None = None,
                  init_params: dict | None = None) -> train.Task:
  """Task for one fixed plain network (same episodes, optimiser and step budget as the supernet;
  `num_steps` overrides the budget the learning-rate schedule spans). `init_params` (plain
  weights of this shape, e.g. `supernet.slice_params` of a trained supernet) replaces the random
  initialisation: meta-fine-tuning a searched sub-network from the weights it inherits."""
  settings = settings_from(config)
  optimizer = _optimizer(config, num_steps or config.train.num_steps)
  impl = config.model.conv_impl
  loss_fn = maml.cross_entropy_loss(lambda p, x: supernet.plain_apply(p, x, impl))

  def init(rng):
    if init_params is None:
      params = supernet.plain_init(space, genes, rng)
    else:
      params = jax.tree.map(jnp.asarray, init_params)
    mp = {"model": params,
          "inner_lr": maml.init_inner_lrs(params, settings.num_inner_steps, settings.inner_lr)}
    return TrainState(meta_params=mp, opt_state=optimizer.init(mp))

  def step(state, batch, rng):
    del rng
    (value, metrics), grads = jax.value_and_grad(maml.meta_loss, has_aux=True)(
        state.meta_params, batch, loss_fn, settings.num_inner_steps, settings.first_order,
        settings.learn_inner_lr)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.meta_params)
    metrics = dict(metrics, loss=value, grad_norm=optax.global_norm(grads))
    return TrainState(optax.apply_updates(state.meta_params, updates), opt_state), metrics

  def sample_batch(step_num):
    rng = np.random.default_rng([config.train.seed, 1, step_num])
    return episodes(sampler, rng, config.maml.meta_batch_size, spec)

  return train.Task(init=init, step=step, sample_batch=sample_batch, evaluate=evaluate)


def plain_accuracy(meta_params: dict, tasks: dict, num_steps: int, impl: str,
                   chunk: int = 50) -> np.ndarray:
  """Per-task query accuracy of a plain network after `num_steps` inner steps, [T]."""
  loss_fn = maml.cross_entropy_loss(lambda p, x: supernet.plain_apply(p, x, impl))
  fn = jax.jit(jax.vmap(lambda t: maml.task_loss(meta_params, t, loss_fn, num_steps)[1]))
  T = tasks["support_x"].shape[0]
  out = []
  for s in range(0, T, chunk):
    part = {k: v[s:s + chunk] for k, v in tasks.items() if k != "classes"}
    out.append(np.asarray(fn(part)["accuracy"]))
  return np.concatenate(out)
