"""Class-conditional GANs in the AC-GAN style (Odena et al. 2017) for tabular rows and images.

The generator G(z, y) gets the class y as a one-hot next to the noise z; the discriminator D(x)
returns a real/fake logit and class logits. With s = sigmoid cross-entropy and c = softmax
cross-entropy (AC-GAN, Eqs. 2-3 of Odena et al.):

  L_D = s(D_adv(x), 1) + s(D_adv(G(z, y)), 0) + c(D_cls(x), y_x) + c(D_cls(G(z, y)), y)
  L_G = s(D_adv(G(z, y)), 1) + c(D_cls(G(z, y)), y)            (non-saturating)

Tabular generators emit standardised numeric columns and one logit vector per categorical block; in
training each block is a Gumbel-softmax relaxation (temperature `tau`), when sampling a hard
Gumbel-max draw, so synthetic rows are always valid one-hot rows. The image generator is a small
conditional DCGAN (nearest-neighbour upsampling + 3x3 convolutions, tanh output in [-1, 1]).

One step is `gan_step(gan, state, batch, rng) -> (state, metrics)`, a pure function of its inputs;
`make_step(gan)` returns it jitted once with the state donated.
"""

import dataclasses
import functools
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from metanas.compression import tabular
from metanas.models import conv


class TabularGenerator(nn.Module):
  """MLP generator: [B, latent] noise + [B, K] one-hot class -> [B, spec.dim] raw output.

  The raw output holds numeric values then un-normalised logits per categorical block.
  """
  out_dim: int
  hidden: tuple[int, ...] = (128, 128)

  @nn.compact
  def __call__(self, z, y_onehot):
    h = jnp.concatenate([z, y_onehot], axis=-1)
    for width in self.hidden:
      h = nn.leaky_relu(nn.LayerNorm()(nn.Dense(width)(h)), 0.2)
    return nn.Dense(self.out_dim)(h)


class TabularDiscriminator(nn.Module):
  """MLP discriminator: [B, dim] -> (real/fake logit [B], class logits [B, K])."""
  num_classes: int
  hidden: tuple[int, ...] = (128, 128)

  @nn.compact
  def __call__(self, x):
    h = x
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
    return nn.Dense(1)(h)[..., 0], nn.Dense(self.num_classes)(h)


def _upsample2(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class ImageGenerator(nn.Module):
  """Conditional DCGAN generator: noise + one-hot class -> [B, 28, 28, 1] images in [-1, 1]."""
  width: int = 32
  conv_impl: str = "im2col"

  @nn.compact
  def __call__(self, z, y_onehot):
    h = nn.Dense(7 * 7 * 2 * self.width)(jnp.concatenate([z, y_onehot], axis=-1))
    h = nn.relu(nn.LayerNorm()(h)).reshape(z.shape[0], 7, 7, 2 * self.width)
    h = conv.Conv(self.width, 3, impl=self.conv_impl)(_upsample2(h))          # 14 x 14.
    h = nn.relu(nn.LayerNorm(reduction_axes=(1, 2, 3))(h))
    h = conv.Conv(self.width // 2, 3, impl=self.conv_impl)(_upsample2(h))     # 28 x 28.
    h = nn.relu(nn.LayerNorm(reduction_axes=(1, 2, 3))(h))
    return jnp.tanh(conv.Conv(1, 3, impl=self.conv_impl)(h))


class ImageDiscriminator(nn.Module):
  """AC-GAN image discriminator: [B, 28, 28, 1] -> (logit [B], class logits [B, K])."""
  num_classes: int
  width: int = 32
  conv_impl: str = "im2col"

  @nn.compact
  def __call__(self, x):
    h = nn.leaky_relu(conv.Conv(self.width, 3, stride=2, impl=self.conv_impl)(x), 0.2)
    h = nn.leaky_relu(conv.Conv(2 * self.width, 3, stride=2, impl=self.conv_impl)(h), 0.2)
    h = nn.leaky_relu(nn.Dense(128)(h.reshape(x.shape[0], -1)), 0.2)
    return nn.Dense(1)(h)[..., 0], nn.Dense(self.num_classes)(h)


@dataclasses.dataclass(frozen=True)
class GAN:
  """Static description of a conditional GAN (hashable; closed over by the jitted step).

  Attributes:
    generator, discriminator: Flax modules as above.
    num_classes: K.
    latent_dim: size of z.
    data_shape: shape of one example, e.g. (dim,) or (28, 28, 1).
    spec: the tabular layout (None for images): which raw outputs are categorical logits.
    tau: Gumbel-softmax temperature used in training for categorical blocks.
    straight_through: in training, feed the discriminator hard one-hot blocks (Gumbel-max forward)
      with the tau-softmax gradient (straight-through Gumbel-softmax, Jang et al. 2017), so D cannot
      tell fake rows from real ones merely by their soft categorical entries.
    learning_rate, beta1: Adam settings shared by G and D.
    aux_weight: weight of the class (auxiliary classifier) terms.
  """
  generator: nn.Module
  discriminator: nn.Module
  num_classes: int
  latent_dim: int
  data_shape: tuple[int, ...]
  spec: tabular.TabularSpec | None = None
  tau: float = 0.5
  straight_through: bool = False
  learning_rate: float = 2e-4
  beta1: float = 0.5
  aux_weight: float = 1.0

  @property
  def tx(self) -> optax.GradientTransformation:
    return optax.adam(self.learning_rate, b1=self.beta1)


@flax.struct.dataclass
class GANState:
  """Pytree training state: step counter, both parameter sets and both optimizer states."""
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt: Any
  d_opt: Any


def tabular_gan(spec: tabular.TabularSpec, num_classes: int = 2, latent_dim: int = 32,
                hidden: tuple[int, ...] = (128, 128), **kwargs) -> GAN:
  return GAN(TabularGenerator(spec.dim, tuple(hidden)), TabularDiscriminator(num_classes,
                                                                             tuple(hidden)),
             num_classes, latent_dim, (spec.dim,), spec, **kwargs)


def image_gan(num_classes: int = 10, latent_dim: int = 64, width: int = 32,
              conv_impl: str = "im2col", **kwargs) -> GAN:
  return GAN(ImageGenerator(width, conv_impl), ImageDiscriminator(num_classes, width, conv_impl),
             num_classes, latent_dim, (28, 28, 1), None, **kwargs)


def init_state(gan: GAN, rng: jax.Array) -> GANState:
  """Initial parameters (from `rng`) and Adam states."""
  kg, kd = jax.random.split(rng)
  z = jnp.zeros((1, gan.latent_dim))
  y = jnp.zeros((1, gan.num_classes))
  g_params = gan.generator.init(kg, z, y)
  d_params = gan.discriminator.init(kd, jnp.zeros((1,) + tuple(gan.data_shape)))
  return GANState(jnp.zeros((), jnp.int32), g_params, d_params, gan.tx.init(g_params),
                  gan.tx.init(d_params))


def finalize(gan: GAN, raw: jax.Array, rng: jax.Array, hard: bool) -> jax.Array:
  """Turns raw generator output into data rows: categorical blocks via Gumbel-(soft)max.

  Args:
    gan: the GAN (its `spec` says where the blocks are; images pass through).
    raw: [B, *data_shape] generator output.
    rng: key for the Gumbel noise.
    hard: one-hot Gumbel-max draws (sampling) instead of the tau-softmax relaxation (training).

  Returns:
    [B, *data_shape].
  """
  if gan.spec is None or not gan.spec.cat_sizes:
    return raw
  parts = [raw[:, :gan.spec.num_numeric]]
  for key, (start, stop) in zip(jax.random.split(rng, len(gan.spec.cat_sizes)),
                                gan.spec.blocks()):
    logits = raw[:, start:stop] + jax.random.gumbel(key, (raw.shape[0], stop - start))
    one_hot = jax.nn.one_hot(jnp.argmax(logits, axis=-1), stop - start)
    if hard:
      parts.append(one_hot)
    else:
      soft = jax.nn.softmax(logits / gan.tau, axis=-1)
      parts.append(soft + jax.lax.stop_gradient(one_hot - soft) if gan.straight_through else soft)
  return jnp.concatenate(parts, axis=-1)


def generate(gan: GAN, g_params, z: jax.Array, y: jax.Array, rng: jax.Array,
             hard: bool = True) -> jax.Array:
  """G(z, y): z [B, latent_dim], y [B] int labels -> [B, *data_shape] samples."""
  raw = gan.generator.apply(g_params, z, jax.nn.one_hot(y, gan.num_classes))
  return finalize(gan, raw, rng, hard)


def _losses(gan: GAN, g_params, d_params, x_real, y_real, rng):
  kz, kg = jax.random.split(rng)
  z = jax.random.normal(kz, (x_real.shape[0], gan.latent_dim))
  x_fake = generate(gan, g_params, z, y_real, kg, hard=False)
  adv_real, cls_real = gan.discriminator.apply(d_params, x_real)
  adv_fake, cls_fake = gan.discriminator.apply(d_params, x_fake)
  ce = lambda logits, y: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  bce = lambda logits, t: optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, t)).mean()
  d_loss = (bce(adv_real, 1.0) + bce(adv_fake, 0.0)
            + gan.aux_weight * (ce(cls_real, y_real) + ce(cls_fake, y_real)))
  g_loss = bce(adv_fake, 1.0) + gan.aux_weight * ce(cls_fake, y_real)
  return d_loss, g_loss


def gan_step(gan: GAN, state: GANState, batch: tuple[jax.Array, jax.Array],
             rng: jax.Array) -> tuple[GANState, dict[str, jax.Array]]:
  """One simultaneous AC-GAN update of D and G (Odena et al. Eqs. 2-3).

  Args:
    gan: static GAN description.
    state: current `GANState`.
    batch: (x [B, *data_shape] real rows, y [B] int32 labels).
    rng: this step's key (callers fold in the step number).

  Returns:
    (new state, {"d_loss", "g_loss"} scalars).
  """
  x_real, y_real = batch
  d_loss_fn = lambda dp: _losses(gan, state.g_params, dp, x_real, y_real, rng)[0]
  g_loss_fn = lambda gp: _losses(gan, gp, state.d_params, x_real, y_real, rng)[1]
  d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.d_params)
  g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.g_params)
  d_updates, d_opt = gan.tx.update(d_grads, state.d_opt, state.d_params)
  g_updates, g_opt = gan.tx.update(g_grads, state.g_opt, state.g_params)
  new_state = GANState(state.step + 1, optax.apply_updates(state.g_params, g_updates),
                       optax.apply_updates(state.d_params, d_updates), g_opt, d_opt)
  return new_state, {"d_loss": d_loss, "g_loss": g_loss}


@functools.lru_cache(maxsize=16)
def make_step(gan: GAN, donate: bool = True) -> Callable:
  """`gan_step` with `gan` bound, jitted once per GAN (state donated unless `donate=False`).

  Cached, so training the same GAN again (another seed) reuses the compiled step.
  """
  return jax.jit(functools.partial(gan_step, gan), donate_argnums=(0,) if donate else ())


def train(gan: GAN, x: np.ndarray, y: np.ndarray, num_steps: int, batch_size: int, seed: int,
          log_fn: Callable[[int, dict], None] | None = None, log_every: int = 500) -> GANState:
  """Trains the GAN on (x, y) with uniformly drawn minibatches (host-side indices).

  Args:
    gan: the GAN.
    x: [n, *data_shape] float32 real rows; y: [n] int labels in [0, K).
    num_steps, batch_size: the schedule.
    seed: initialisation, minibatch and noise seed.
    log_fn: optional `log_fn(step, metrics)` called every `log_every` steps.

  Returns:
    The final `GANState`.
  """
  if x.shape[1:] != tuple(gan.data_shape):
    raise ValueError(f"GAN expects examples of shape {gan.data_shape}, got {x.shape[1:]}.")
  if len(x) < batch_size:
    raise ValueError(f"GAN batch size {batch_size} exceeds the {len(x)} training rows; lower it.")
  rng = jax.random.key(seed)
  rng, init_rng = jax.random.split(rng)
  state = init_state(gan, init_rng)
  step = make_step(gan)
  host_rng = np.random.default_rng(seed)
  x_dev, y_dev = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
  for i in range(num_steps):
    idx = jnp.asarray(host_rng.integers(0, len(x), size=batch_size))
    state, metrics = step(state, (x_dev[idx], y_dev[idx]), jax.random.fold_in(rng, i))
    if log_fn is not None and ((i + 1) % log_every == 0 or i + 1 == num_steps):
      metrics = jax.device_get(metrics)
      if not all(np.isfinite(v) for v in metrics.values()):
        raise FloatingPointError(f"GAN training diverged at step {i + 1} ({metrics}); lower "
                                 "the learning rate (--config.gan.learning_rate).")
      log_fn(i + 1, metrics)
  return state


def sample(gan: GAN, g_params, labels: np.ndarray, seed: int, batch_size: int = 2048,
           z: np.ndarray | None = None) -> np.ndarray:
  """Draws one sample per requested label.

  Args:
    gan: the GAN; g_params: generator parameters.
    labels: [n] int class of each sample.
    seed: noise seed.
    batch_size: generation chunk size.
    z: optional [n, latent_dim] fixed noise (e.g. a collapsed generator uses one z for all).

  Returns:
    [n, *data_shape] float32 NumPy samples.
  """
  rng = jax.random.key(seed)
  if z is None:
    z = np.random.default_rng(seed).standard_normal((len(labels), gan.latent_dim))
  z = np.asarray(z, np.float32)
  size = min(batch_size, 1 << max(len(labels) - 1, 0).bit_length())   # Few distinct shapes.
  out = []
  for i, start in enumerate(range(0, len(labels), size)):
    zc, yc = np.asarray(z[start:start + size]), np.asarray(labels[start:start + size])
    pad = size - len(yc)
    zc = np.concatenate([zc, np.zeros((pad, gan.latent_dim), zc.dtype)])
    yc = np.concatenate([yc, np.zeros((pad,), yc.dtype)])
    out.append(np.asarray(_generate(gan, g_params, jnp.asarray(zc), jnp.asarray(yc),
                                    jax.random.fold_in(rng, i + 1)))[:size - pad])
  return np.concatenate(out, axis=0).astype(np.float32)


_generate = jax.jit(generate, static_argnums=(0,), static_argnames=("hard",))
