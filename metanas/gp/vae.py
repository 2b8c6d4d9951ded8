"""Encoder / decoder networks and the per-image ELBO terms shared by VAE, CVAE and GPPVAE.

Parameters are one pytree {"enc", "dec", "log_var_y"}; the algorithms only see that pytree and
the pure functions below. The networks are MLPs (the paper uses convolutional nets; MLPs are the
CPU-friendly choice here and are documented as a deviation in experiments/gppvae.md).

Likelihood (paper Eq. 3): p(y | z) = N(y | g(z), sigma_y^2 I_D), sigma_y^2 = exp(log_var_y) learnt.
Encoder (Eq. 7): q(z | y) = N(mu(y), diag(exp(logvar(y)))). A CVAE feeds a condition vector c
(one-hot view) to both networks.
"""

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class Encoder(nn.Module):
  """[B, H, W] images (+ [B, C] condition) -> (mu [B, L], logvar [B, L])."""
  hidden: Sequence[int]
  latent_dim: int

  @nn.compact
  def __call__(self, images, cond=None):
    h = images.reshape(images.shape[0], -1)
    if cond is not None:
      h = jnp.concatenate([h, cond], axis=1)
    for width in self.hidden:
      h = nn.elu(nn.Dense(width)(h))
    mu = nn.Dense(self.latent_dim)(h)
    # Bounded log-variance keeps exp() finite early in training.
    logvar = 6.0 * jnp.tanh(nn.Dense(self.latent_dim)(h) / 6.0) - 2.0
    return mu, logvar


class Decoder(nn.Module):
  """[B, L] latents (+ [B, C] condition) -> [B, H, W] pixel means in (0, 1)."""
  hidden: Sequence[int]
  image_shape: tuple[int, int]

  @nn.compact
  def __call__(self, z, cond=None):
    h = z if cond is None else jnp.concatenate([z, cond], axis=1)
    for width in reversed(self.hidden):
      h = nn.elu(nn.Dense(width)(h))
    out = nn.sigmoid(nn.Dense(self.image_shape[0] * self.image_shape[1])(h))
    return out.reshape((z.shape[0],) + tuple(self.image_shape))


@dataclasses.dataclass(frozen=True)
class Networks:
  """Static network description (hashable; a jit static argument)."""
  image_shape: tuple[int, int]
  latent_dim: int = 16
  hidden: tuple[int, ...] = (256,)
  cond_dim: int = 0  # > 0 for a CVAE.

  @property
  def encoder(self) -> Encoder:
    return Encoder(self.hidden, self.latent_dim)

  @property
  def decoder(self) -> Decoder:
    return Decoder(self.hidden, self.image_shape)


def init(nets: Networks, rng: jax.Array, init_log_var_y: float = -3.0) -> dict:
  """Parameters {"enc", "dec", "log_var_y"} for `nets`."""
  k_enc, k_dec = jax.random.split(rng)
  images = jnp.zeros((1,) + tuple(nets.image_shape))
  cond = jnp.zeros((1, nets.cond_dim)) if nets.cond_dim else None
  enc = nets.encoder.init(k_enc, images, cond)["params"]
  dec = nets.decoder.init(k_dec, jnp.zeros((1, nets.latent_dim)), cond)["params"]
  return {"enc": enc, "dec": dec, "log_var_y": jnp.asarray(init_log_var_y)}


def encode(nets: Networks, params: dict, images: jax.Array, cond=None):
  """(mu [B, L], logvar [B, L]) of q(z | y)."""
  return nets.encoder.apply({"params": params["enc"]}, images, cond)


def decode(nets: Networks, params: dict, z: jax.Array, cond=None) -> jax.Array:
  """Pixel means g(z) [B, H, W]."""
  return nets.decoder.apply({"params": params["dec"]}, z, cond)


def reconstruction_loglik(params: dict, images: jax.Array, recon: jax.Array) -> jax.Array:
  """log N(y_n | g(z_n), sigma_y^2 I) per image ([B, H, W] x2 -> [B])."""
  d = images.shape[1] * images.shape[2]
  sq = jnp.sum((images - recon) ** 2, axis=(1, 2))
  lv = params["log_var_y"]
  return -0.5 * (d * (math.log(2 * math.pi) + lv) + sq * jnp.exp(-lv))


def entropy(logvar: jax.Array) -> jax.Array:
  """Entropy of the diagonal Gaussian q(z_n | y_n) per image ([B, L] -> [B])."""
  return 0.5 * jnp.sum(1.0 + math.log(2 * math.pi) + logvar, axis=1)


def per_image_terms(nets: Networks, params: dict, images: jax.Array, eps: jax.Array,
                    cond=None) -> tuple[jax.Array, jax.Array]:
  """The ELBO terms that factorise over images, and the sampled latents (reparameterised).

  Args:
    nets: network description.
    params: VAE parameters.
    images: [B, H, W].
    eps: [B, L] standard-normal noise; z = mu + exp(logvar / 2) * eps.
    cond: optional [B, C] condition (CVAE).

  Returns:
    (reconstruction log-lik + entropy per image [B], z [B, L]).
  """
  mu, logvar = encode(nets, params, images, cond)
  z = mu + jnp.exp(0.5 * logvar) * eps
  recon = decode(nets, params, z, cond)
  return reconstruction_loglik(params, images, recon) + entropy(logvar), z


def iid_elbo(nets: Networks, params: dict, images: jax.Array, eps: jax.Array,
             cond=None) -> jax.Array:
  """Standard VAE / CVAE ELBO per image with an N(0, I) prior and analytic KL ([B])."""
  mu, logvar = encode(nets, params, images, cond)
  z = mu + jnp.exp(0.5 * logvar) * eps
  recon = decode(nets, params, z, cond)
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + mu * mu - 1.0 - logvar, axis=1)
  return reconstruction_loglik(params, images, recon) - kl
