"""Class-conditional GANs in the AC-GAN style (Odena et al. 2017) for tabular rows and images.

The generator G(z, y) gets the class y as a one-hot next to the noise z; the discriminator D(x)
returns a real/fake logit and class logits. With s = sigmoid cross-entropy and c = softmax
cross-entropy (AC-GAN, Eqs. 2-3 of Odena et al.):

  L_D = s(D_adv(x), 1) + s(D_adv(G(z, y)), 0) + c(D_cls(x), y_x) + c(D_cls(G(z, y)), y)
  L_G = s(D_adv(G(z, y)), 1) + c(D_cls(G(z, y)), y)            (non-saturating)

Options for tabular mode coverage (all off by default, `GAN` attributes):
  * `loss="wgan_gp"`: the adversarial terms become the WGAN-GP critic loss (Gulrajani et al. 2017,
    Alg. 1): L_D = D(G(z)) - D(x) + lambda (||grad D(x_hat)|| - 1)^2 with x_hat on segments between
    real and fake rows, L_G = -D(G(z)); the class terms stay.
  * `pac=m`: PacGAN (Lin et al. 2018): D judges m rows concatenated, so a generator that drops modes
    is caught by the lack of diversity within a pack.
  * `cond_dim > 0`: CTGAN training-by-sampling (Xu et al. 2019, Sec. 4.3): every row of a batch gets
    a condition vector, a one-hot over all categories of all discrete columns picking one category
    of one uniformly chosen column, the category drawn with probability ∝ log(1 + count); the real
    row is drawn among the rows with that category, G and D both see the condition, and G pays
    `cond_weight` x the cross-entropy of the chosen column's logits for not producing it.

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
  """MLP discriminator: [B, dim] -> (real/fake logit [B / pac], class logits [B, K]).

  With `pac > 1` (PacGAN) consecutive groups of `pac` rows are concatenated into one [pac * dim]
  input; the adversarial logit is per pack and the class head emits `pac` class-logit vectors, one
  per row of the pack. `pac = 1` is the plain per-row discriminator (same parameters).
  """
  num_classes: int
  hidden: tuple[int, ...] = (128, 128)
  pac: int = 1

  @nn.compact
  def __call__(self, x):
    if x.shape[0] % self.pac:
      raise ValueError(f"PacGAN: batch of {x.shape[0]} rows is not a multiple of pac={self.pac}.")
    h = x.reshape(x.shape[0] // self.pac, self.pac * x.shape[-1])
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
    cls = nn.Dense(self.pac * self.num_classes)(h).reshape(x.shape[0], self.num_classes)
    return nn.Dense(1)(h)[..., 0], cls


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
    learning_rate, beta1, beta2: Adam settings shared by G and D.
    aux_weight: weight of the class (auxiliary classifier) terms.
    loss: "gan" (non-saturating, sigmoid cross-entropy) or "wgan_gp" (Wasserstein critic with
      gradient penalty `gp_weight`).
    pac: rows per PacGAN pack seen by D (the discriminator module must be built with the same pac).
    cond_dim: width of the CTGAN condition vector (sum of the category counts; 0 = off).
    cond_weight: weight of G's cross-entropy for not producing the conditioned category.
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
  beta2: float = 0.999
  loss: str = "gan"
  gp_weight: float = 10.0
  pac: int = 1
  cond_dim: int = 0
  cond_weight: float = 1.0

  def __post_init__(self):
    if self.loss not in ("gan", "wgan_gp"):
      raise ValueError(f"GAN loss must be 'gan' or 'wgan_gp', got {self.loss!r}.")
    if self.cond_dim and (self.spec is None or self.cond_dim != sum(self.spec.cat_sizes)):
      raise ValueError("CTGAN conditioning needs a tabular spec and cond_dim = the total number "
                       "of categories.")

  @property
  def tx(self) -> optax.GradientTransformation:
    return optax.adam(self.learning_rate, b1=self.beta1, b2=self.beta2)


@flax.struct.dataclass
class GANState:
  """Pytree training state: step counter, both parameter sets and both optimizer states."""
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt: Any
  d_opt: Any


def tabular_gan(spec: tabular.TabularSpec, num_classes: int = 2, latent_dim: int = 32,
                hidden: tuple[int, ...] = (128, 128), pac: int = 1, conditional: bool = False,
                **kwargs) -> GAN:
  """Tabular AC-GAN; `pac` packs rows for D, `conditional` turns on CTGAN training-by-sampling."""
  return GAN(TabularGenerator(spec.dim, tuple(hidden)),
             TabularDiscriminator(num_classes, tuple(hidden), pac),
             num_classes, latent_dim, (spec.dim,), spec, pac=pac,
             cond_dim=sum(spec.cat_sizes) if conditional else 0, **kwargs)


def image_gan(num_classes: int = 10, latent_dim: int = 64, width: int = 32,
              conv_impl: str = "im2col", **kwargs) -> GAN:
  return GAN(ImageGenerator(width, conv_impl), ImageDiscriminator(num_classes, width, conv_impl),
             num_classes, latent_dim, (28, 28, 1), None, **kwargs)


def init_state(gan: GAN, rng: jax.Array) -> GANState:
  """Initial parameters (from `rng`) and Adam states."""
  kg, kd = jax.random.split(rng)
  z = jnp.zeros((1, gan.latent_dim))
  y = jnp.zeros((1, gan.num_classes + gan.cond_dim))
  g_params = gan.generator.init(kg, z, y)
  d_in = (gan.pac,) + tuple(gan.data_shape[:-1]) + (gan.data_shape[-1] + gan.cond_dim,)
  d_params = gan.discriminator.init(kd, jnp.zeros(d_in))
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


def _raw(gan: GAN, g_params, z, y, cond=None):
  g_in = jax.nn.one_hot(y, gan.num_classes)
  if gan.cond_dim:
    g_in = jnp.concatenate([g_in, cond], axis=-1)
  return gan.generator.apply(g_params, z, g_in)


def generate(gan: GAN, g_params, z: jax.Array, y: jax.Array, rng: jax.Array,
             hard: bool = True, cond: jax.Array | None = None) -> jax.Array:
  """G(z, y[, cond]): z [B, latent_dim], y [B] int labels, cond [B, cond_dim] -> [B, *data_shape]."""
  return finalize(gan, _raw(gan, g_params, z, y, cond), rng, hard)


def gradient_penalty(critic: Callable, real: jax.Array, fake: jax.Array, rng: jax.Array,
                     pac: int = 1) -> jax.Array:
  """WGAN-GP penalty mean((||grad critic(x_hat)|| - 1)^2) (Gulrajani et al. 2017, Eq. 3).

  Args:
    critic: [B, d] -> [B / pac] scores (one per pack of `pac` consecutive rows).
    real, fake: [B, d] rows.
    rng: key for the interpolation weights (one per pack, as in PacGAN/CTGAN).
    pac: pack size; the gradient norm is taken over each pack's [pac * d] input.

  Returns:
    Scalar penalty (without the weight lambda).
  """
  alpha = jnp.repeat(jax.random.uniform(rng, (real.shape[0] // pac, 1)), pac, axis=0)
  x_hat = alpha * real + (1.0 - alpha) * fake
  grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
  norms = jnp.linalg.norm(grads.reshape(real.shape[0] // pac, -1), axis=-1)
  return jnp.mean((norms - 1.0) ** 2)


def cond_penalty(gan: GAN, raw: jax.Array, cond: jax.Array) -> jax.Array:
  """CTGAN generator penalty: mean over rows of -log softmax(raw block)[conditioned category].

  Args:
    gan: the GAN (its spec gives the blocks).
    raw: [B, dim] generator output (logits for the categorical blocks).
    cond: [B, cond_dim] condition vectors, one 1 per row over all blocks' categories.
  """
  total, offset = 0.0, gan.spec.num_numeric
  for start, stop in gan.spec.blocks():
    logp = jax.nn.log_softmax(raw[:, start:stop], axis=-1)
    total = total - jnp.sum(cond[:, start - offset:stop - offset] * logp, axis=-1)
  return jnp.mean(total)


def _losses(gan: GAN, g_params, d_params, x_real, y_real, rng, cond=None):
  kz, kg = jax.random.split(rng)
  z = jax.random.normal(kz, (x_real.shape[0], gan.latent_dim))
  raw = _raw(gan, g_params, z, y_real, cond)
  x_fake = finalize(gan, raw, kg, hard=False)
  if gan.cond_dim:                                   # D judges (row, condition) pairs.
    x_real = jnp.concatenate([x_real, cond], axis=-1)
    x_fake = jnp.concatenate([x_fake, cond], axis=-1)
  adv_real, cls_real = gan.discriminator.apply(d_params, x_real)
  adv_fake, cls_fake = gan.discriminator.apply(d_params, x_fake)
  ce = lambda logits, y: optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  bce = lambda logits, t: optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, t)).mean()
  if gan.loss == "wgan_gp":
    critic = lambda x: gan.discriminator.apply(d_params, x)[0]
    gp = gradient_penalty(critic, x_real, x_fake, jax.random.fold_in(rng, 2), gan.pac)
    d_adv = jnp.mean(adv_fake) - jnp.mean(adv_real) + gan.gp_weight * gp
    g_adv = -jnp.mean(adv_fake)
  else:
    d_adv = bce(adv_real, 1.0) + bce(adv_fake, 0.0)
    g_adv = bce(adv_fake, 1.0)
  d_loss = d_adv + gan.aux_weight * (ce(cls_real, y_real) + ce(cls_fake, y_real))
  g_loss = g_adv + gan.aux_weight * ce(cls_fake, y_real)
  if gan.cond_dim:
    g_loss = g_loss + gan.cond_weight * cond_penalty(gan, raw, cond)
  return d_loss, g_loss


def gan_step(gan: GAN, state: GANState, batch: tuple[jax.Array, jax.Array],
             rng: jax.Array) -> tuple[GANState, dict[str, jax.Array]]:
  """One simultaneous AC-GAN update of D and G (Odena et al. Eqs. 2-3).

  Args:
    gan: static GAN description.
    state: current `GANState`.
    batch: (x [B, *data_shape] real rows, y [B] int32 labels[, cond [B, cond_dim] CTGAN
      condition vectors, required when `gan.cond_dim > 0`]).
    rng: this step's key (callers fold in the step number).

  Returns:
    (new state, {"d_loss", "g_loss"} scalars).
  """
  x_real, y_real = batch[:2]
  cond = batch[2] if gan.cond_dim else None
  d_loss_fn = lambda dp: _losses(gan, state.g_params, dp, x_real, y_real, rng, cond)[0]
  g_loss_fn = lambda gp: _losses(gan, gp, state.d_params, x_real, y_real, rng, cond)[1]
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


def category_codes(x: np.ndarray, spec: tabular.TabularSpec) -> np.ndarray:
  """[n, num_cat] category index of every categorical column of the one-hot rows `x`."""
  return np.stack([np.argmax(x[:, a:b], axis=1) for a, b in spec.blocks()], axis=1)


def row_conditions(rng: np.random.Generator, x: np.ndarray,
                   spec: tabular.TabularSpec) -> np.ndarray:
  """[n, cond_dim] CTGAN conditions of the rows `x`, each on one uniformly drawn categorical
  column: sampling with the conditions of randomly drawn training rows reproduces the data's joint
  distribution of categories (and labels). Needs no `CategorySampler` (no row grouping)."""
  codes = category_codes(x, spec)
  offsets = np.concatenate([[0], np.cumsum(spec.cat_sizes)[:-1]]).astype(np.int64)
  col = rng.integers(0, len(spec.cat_sizes), len(x))
  cond = np.zeros((len(x), int(sum(spec.cat_sizes))), np.float32)
  cond[np.arange(len(x)), offsets[col] + codes[np.arange(len(x)), col]] = 1.0
  return cond


class CategorySampler:
  """CTGAN training-by-sampling on the host (Xu et al. 2019, Sec. 4.3), NumPy only.

  `sample` picks, per row, a discrete column uniformly, a category of it with probability
  ∝ log(1 + count) (`log_frequency=True`, CTGAN's rule) or ∝ count, and a training row having that
  category uniformly. The conditions to sample with are `row_conditions` of training rows.
  """

  def __init__(self, x: np.ndarray, spec: tabular.TabularSpec, log_frequency: bool = True):
    if not spec.cat_sizes:
      raise ValueError("CTGAN conditioning needs at least one categorical column.")
    self.spec = spec
    self.codes = category_codes(x, spec)
    self.offsets = np.concatenate([[0], np.cumsum(spec.cat_sizes)[:-1]]).astype(np.int64)
    self.cond_dim = int(sum(spec.cat_sizes))
    counts = [np.bincount(self.codes[:, c], minlength=k) for c, k in enumerate(spec.cat_sizes)]
    self.probs = [(np.log1p(n) if log_frequency else n.astype(float)) for n in counts]
    self.probs = [p / p.sum() for p in self.probs]
    # Rows grouped by global category id g: rows_flat[starts[g]: starts[g] + counts[g]].
    n = len(x)
    self.rows_flat = np.concatenate([np.argsort(self.codes[:, c], kind="stable")
                                     for c in range(len(spec.cat_sizes))])
    flat_counts = np.concatenate(counts)
    self.counts = flat_counts
    self.starts = np.concatenate([c * n + np.concatenate([[0], np.cumsum(cnt)[:-1]])
                                  for c, cnt in enumerate(counts)]).astype(np.int64)

  def _one_hot(self, g: np.ndarray) -> np.ndarray:
    cond = np.zeros((len(g), self.cond_dim), np.float32)
    cond[np.arange(len(g)), g] = 1.0
    return cond

  def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns (row indices [B], condition vectors [B, cond_dim])."""
    col = rng.integers(0, len(self.spec.cat_sizes), batch_size)
    u = rng.random(batch_size)
    local = np.zeros(batch_size, np.int64)
    for c, p in enumerate(self.probs):
      mask = col == c
      local[mask] = np.minimum(np.searchsorted(np.cumsum(p), u[mask], side="right"), len(p) - 1)
    g = self.offsets[col] + local
    pick = np.floor(rng.random(batch_size) * self.counts[g]).astype(np.int64)
    return self.rows_flat[self.starts[g] + pick], self._one_hot(g)



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
  if batch_size % gan.pac:
    raise ValueError(f"GAN batch size {batch_size} must be a multiple of the PacGAN pack size "
                     f"{gan.pac}.")
  sampler = CategorySampler(x, gan.spec) if gan.cond_dim else None
  rng = jax.random.key(seed)
  rng, init_rng = jax.random.split(rng)
  state = init_state(gan, init_rng)
  step = make_step(gan)
  host_rng = np.random.default_rng(seed)
  x_dev, y_dev = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
  for i in range(num_steps):
    if sampler is None:
      idx = jnp.asarray(host_rng.integers(0, len(x), size=batch_size))
      batch = (x_dev[idx], y_dev[idx])
    else:
      idx, cond = sampler.sample(host_rng, batch_size)
      batch = (x_dev[idx], y_dev[idx], jnp.asarray(cond))
    state, metrics = step(state, batch, jax.random.fold_in(rng, i))
    if log_fn is not None and ((i + 1) % log_every == 0 or i + 1 == num_steps):
      metrics = jax.device_get(metrics)
      if not all(np.isfinite(v) for v in metrics.values()):
        raise FloatingPointError(f"GAN training diverged at step {i + 1} ({metrics}); lower "
                                 "the learning rate (--config.gan.learning_rate).")
      log_fn(i + 1, metrics)
  return state


def sample(gan: GAN, g_params, labels: np.ndarray, seed: int, batch_size: int = 2048,
           z: np.ndarray | None = None, cond: np.ndarray | None = None) -> np.ndarray:
  """Draws one sample per requested label.

  Args:
    gan: the GAN; g_params: generator parameters.
    labels: [n] int class of each sample.
    seed: noise seed.
    batch_size: generation chunk size.
    z: optional [n, latent_dim] fixed noise (e.g. a collapsed generator uses one z for all).
    cond: [n, cond_dim] CTGAN conditions (required iff `gan.cond_dim > 0`; e.g.
      `row_conditions` of the training rows the labels were drawn from).

  Returns:
    [n, *data_shape] float32 NumPy samples.
  """
  rng = jax.random.key(seed)
  if z is None:
    z = np.random.default_rng(seed).standard_normal((len(labels), gan.latent_dim))
  z = np.asarray(z, np.float32)
  if (cond is None) != (gan.cond_dim == 0):
    raise ValueError("Pass cond (CTGAN conditions) exactly when the GAN is conditional.")
  if cond is None:
    cond = np.zeros((len(labels), 0), np.float32)
  size = min(batch_size, 1 << max(len(labels) - 1, 0).bit_length())   # Few distinct shapes.
  out = []
  for i, start in enumerate(range(0, len(labels), size)):
    zc, yc = np.asarray(z[start:start + size]), np.asarray(labels[start:start + size])
    cc = np.asarray(cond[start:start + size], np.float32)
    pad = size - len(yc)
    zc = np.concatenate([zc, np.zeros((pad, gan.latent_dim), zc.dtype)])
    yc = np.concatenate([yc, np.zeros((pad,), yc.dtype)])
    cc = np.concatenate([cc, np.zeros((pad, cc.shape[1]), cc.dtype)])
    out.append(np.asarray(_generate(gan, g_params, jnp.asarray(zc), jnp.asarray(yc),
                                    jax.random.fold_in(rng, i + 1), hard=True,
                                    cond=jnp.asarray(cc) if gan.cond_dim else None))[:size - pad])
  return np.concatenate(out, axis=0).astype(np.float32)


_generate = jax.jit(generate, static_argnums=(0,), static_argnames=("hard",))
