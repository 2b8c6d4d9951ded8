"""GPPVAE ELBO, its low-memory stochastic backprop, the naive full-batch gradient and prediction.

ELBO (arXiv 1810.11738, Eq. 8), one reparameterised sample Z = mu + sigma * eps:

  ELBO = sum_n [log N(y_n | g(z_n), sigma_y^2 I) + H(q(z_n | y_n))] + sum_l log N(Z[:, l] | 0, K).

The GP term couples all N images, so a minibatch estimate of its gradient is biased. Low-memory
stochastic backprop (paper Sec. 3.3, Eqs. 9-10):
  (1) encode every image without building a backward graph and sample Z [N, L];
  (2) evaluate the GP term and its gradients dZ = d GP / dZ [N, L] and d GP / d(kernel params) in
      O(N R^2) (Woodbury; `metanas.gp.lowrank`), with no encoder graph attached;
  (3) sweep the minibatches again, backpropagating through the encoder/decoder the per-image terms
      plus the linear surrogate <stop_grad(dZ_b), z_b> (first-order Taylor expansion of the GP term
      around the current Z), accumulating the gradient;
then one optimiser step. By the chain rule the accumulated gradient equals the exact full-batch
gradient (the `naive_grad` here), while live activations are those of one minibatch. Losses are
-ELBO / N so learning rates do not depend on N.
"""

import functools

import jax
import jax.numpy as jnp

from metanas.gp import kernels
from metanas.gp import lowrank
from metanas.gp import vae


def gp_loglik(spec: kernels.KernelSpec, kparams: dict, z: jax.Array, obj: jax.Array,
              view: jax.Array) -> jax.Array:
  """sum_l log N(Z[:, l] | 0, K(obj, view)) for z [N, L], obj/view [N]."""
  feats = kernels.features(spec, kparams, obj, view)
  return lowrank.log_likelihood(feats, kernels.noise(spec, kparams), z)


def full_elbo(nets: vae.Networks, spec: kernels.KernelSpec, params: dict, kparams: dict,
              images: jax.Array, obj: jax.Array, view: jax.Array, eps: jax.Array) -> jax.Array:
  """The whole-dataset ELBO (Eq. 8) in one graph; images [N, H, W], eps [N, L]."""
  terms, z = vae.per_image_terms(nets, params, images, eps)
  return jnp.sum(terms) + gp_loglik(spec, kparams, z, obj, view)


def naive_grad(nets: vae.Networks, spec: kernels.KernelSpec, params: dict, kparams: dict,
               images: jax.Array, obj: jax.Array, view: jax.Array, eps: jax.Array):
  """Reference: loss = -ELBO / N and its gradient by backprop through all N images at once.

  Memory grows linearly with N (all activations are kept for the backward pass).

  Returns:
    (loss, (grad wrt params, grad wrt kparams)).
  """
  n = images.shape[0]
  fn = lambda p, k: -full_elbo(nets, spec, p, k, images, obj, view, eps) / n
  return jax.value_and_grad(fn, argnums=(0, 1))(params, kparams)


def batched(x: jax.Array, batch_size: int) -> jax.Array:
  """[N, ...] -> [ceil(N / B), B, ...], zero-padded at the end."""
  n = x.shape[0]
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  if pad:
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
  return x.reshape((num_batches, batch_size) + x.shape[1:])


def encode_all(nets: vae.Networks, params: dict, images: jax.Array,
               batch_size: int) -> tuple[jax.Array, jax.Array]:
  """Encoder (mu, logvar) [N, L] of all images, one minibatch at a time, no gradient graph."""
  n = images.shape[0]
  params = jax.lax.stop_gradient(params)
  mu, logvar = jax.lax.map(lambda x: vae.encode(nets, params, x), batched(images, batch_size))
  return mu.reshape(-1, mu.shape[-1])[:n], logvar.reshape(-1, logvar.shape[-1])[:n]


def _batch_slicer(n: int, batch_size: int):
  """Minibatch i of an [N, ...] array without a padded copy of the data.

  Returns (batch size B, number of batches, slice_fn). `slice_fn(i, *arrays)` returns rows
  [start, start + B) of each array with start = min(i B, N - B) (the last batch overlaps the one
  before it instead of being padded) and a [B] mask that is 1 on the rows that batch i owns.
  """
  bs = min(batch_size, n)
  num_batches = -(-n // bs)

  def slice_fn(i, *arrays):
    start = jnp.minimum(i * bs, n - bs)
    mask = ((start + jnp.arange(bs)) >= i * bs).astype(jnp.float32)
    return [jax.lax.dynamic_slice_in_dim(a, start, bs) for a in arrays], mask

  return bs, num_batches, slice_fn


def lowmem_grad(nets: vae.Networks, spec: kernels.KernelSpec, params: dict, kparams: dict,
                images: jax.Array, obj: jax.Array, view: jax.Array, eps: jax.Array,
                batch_size: int):
  """Low-memory stochastic backprop (Sec. 3.3): the same value and gradient as `naive_grad`.

  Nothing of size N is materialised, so peak temporary memory is that of one minibatch whatever N
  (measured in benchmarks/gppvae_memory.py). The GP log-likelihood of Z [N, L] with K = F F' +
  s_n I depends on the data only through F'F [R, R], F'Z [R, L] and ||Z||^2 (Woodbury and the
  determinant lemma, `metanas.gp.lowrank`), so:
    (1) sweep the minibatches without a gradient graph: encode, sample z_b, compute the kernel
        features F_b, accumulate the three statistics;
    (2) the GP term and its gradients with respect to the statistics and s_n, in O(R^3 + R^2 L);
    (3) sweep the minibatches again: dGP/dz_b = F_b dGP/d(F'Z) + 2 dGP/d||Z||^2 z_b is formed
        per batch and enters the encoder's backward pass through the linear surrogate
        <stop_grad(dGP/dz_b), z_b> (the first-order Taylor expansion of the paper), next to the
        per-image terms; dGP/dF_b = F_b (G + G') + z_b dGP/d(F'Z)' (G = dGP/d(F'F)) is pulled back
        through the kernel features to the kernel parameters. Gradients are accumulated.
  By the chain rule the result equals the exact full-batch gradient.

  Args:
    nets, spec: static network and kernel descriptions.
    params: VAE parameters; kparams: kernel parameters.
    images: [N, H, W]; obj, view: [N] ids; eps: [N, L] reparameterisation noise.
    batch_size: images per pass (peak activation memory is that of one batch).

  Returns:
    (loss = -ELBO / N, (grad wrt params, grad wrt kparams), metrics dict of scalars).
  """
  n, num_latent = eps.shape
  bs, num_batches, slice_fn = _batch_slicer(n, batch_size)
  frozen = jax.lax.stop_gradient(params)
  feats = lambda k, o, v: kernels.features(spec, k, o, v)
  r = jax.eval_shape(feats, kparams, obj[:1], view[:1]).shape[1]

  # (1) Statistics of Z (sampled with the current encoder) and of the kernel features.
  def stats_body(acc, i):
    (x, o, v, e), m = slice_fn(i, images, obj, view, eps)
    mu, logvar = vae.encode(nets, frozen, x)
    z = (mu + jnp.exp(0.5 * logvar) * e) * m[:, None]
    f = jax.lax.stop_gradient(feats(kparams, o, v)) * m[:, None]
    ftf, ftz, zz = acc
    return (ftf + f.T @ f, ftz + f.T @ z, zz + jnp.sum(z * z)), None

  init = (jnp.zeros((r, r)), jnp.zeros((r, num_latent)), jnp.zeros(()))
  (ftf, ftz, zz), _ = jax.lax.scan(stats_body, init, jnp.arange(num_batches))

  # (2) The GP term and its gradients with respect to the statistics and to the noise.
  noise, noise_vjp = jax.vjp(lambda k: kernels.noise(spec, k), kparams)
  gp_val, (g_ftf, g_ftz, g_zz, g_noise) = jax.value_and_grad(
      lowrank.log_likelihood_from_stats, argnums=(0, 1, 2, 3))(ftf, ftz, zz, noise, n)
  g_ftf_sym = g_ftf + g_ftf.T

  # (3) Minibatch sweep: per-image terms + <dZ_b, z_b>; kernel features pulled back.
  def body(carry, i):
    acc_p, acc_k, total = carry
    (x, o, v, e), m = slice_fn(i, images, obj, view, eps)
    f, f_vjp = jax.vjp(lambda k: feats(k, o, v), kparams)

    def surrogate(p):
      terms, zb = vae.per_image_terms(nets, p, x, e)
      gz = jax.lax.stop_gradient(f @ g_ftz + 2.0 * g_zz * zb) * m[:, None]
      return jnp.sum(m * terms) + jnp.sum(gz * zb), (jnp.sum(m * terms), zb)

    g, (terms_sum, zb) = jax.grad(surrogate, has_aux=True)(params)
    zb = jax.lax.stop_gradient(zb)
    (g_k,) = f_vjp((f @ g_ftf_sym + zb @ g_ftz.T) * m[:, None])
    return (jax.tree.map(jnp.add, acc_p, g), jax.tree.map(jnp.add, acc_k, g_k),
            total + terms_sum), None

  zeros_p = jax.tree.map(jnp.zeros_like, params)
  (g_noise_k,) = noise_vjp(g_noise)
  (g_params, g_kparams, terms_total), _ = jax.lax.scan(
      body, (zeros_p, g_noise_k, jnp.zeros(())), jnp.arange(num_batches))
  elbo = terms_total + gp_val
  scale = -1.0 / n
  grads = (jax.tree.map(lambda g: scale * g, g_params), jax.tree.map(lambda g: scale * g, g_kparams))
  metrics = {"loss": -elbo / n, "gp_term": gp_val / n, "image_terms": terms_total / n}
  return -elbo / n, grads, metrics


def predict_latents(spec: kernels.KernelSpec, kparams: dict, z_train: jax.Array,
                    obj_train: jax.Array, view_train: jax.Array, obj_test: jax.Array,
                    view_test: jax.Array) -> jax.Array:
  """GP posterior mean of the latents of unseen (object, view) pairs ([M, L])."""
  feats = kernels.features(spec, kparams, obj_train, view_train)
  test_feats = kernels.features(spec, kparams, obj_test, view_test)
  mean, _ = lowrank.posterior(feats, kernels.noise(spec, kparams), z_train, test_feats)
  return mean


def decode_all(nets: vae.Networks, params: dict, z: jax.Array, batch_size: int,
               cond: jax.Array | None = None) -> jax.Array:
  """Decoder means for z [M, L] (optionally with [M, C] conditions), minibatched -> [M, H, W]."""
  m = z.shape[0]
  if cond is None:
    out = jax.lax.map(lambda zz: vae.decode(nets, params, zz), batched(z, batch_size))
  else:
    out = jax.lax.map(lambda a: vae.decode(nets, params, a[0], a[1]),
                      (batched(z, batch_size), batched(cond, batch_size)))
  return out.reshape((-1,) + out.shape[2:])[:m]



@functools.partial(jax.jit, static_argnums=(0, 1, 9))
def predict_images(nets: vae.Networks, spec: kernels.KernelSpec, params: dict, kparams: dict,
                   images_train: jax.Array, obj_train: jax.Array, view_train: jax.Array,
                   obj_test: jax.Array, view_test: jax.Array, batch_size: int) -> jax.Array:
  """Out-of-sample prediction (Sec. 3.4): decode the GP posterior mean of the test latents given
  the encoder means of the training images ([N, H, W] train -> [M, H, W] test), one jitted call."""
  mu, _ = encode_all(nets, params, images_train, batch_size)
  z = predict_latents(spec, kparams, mu, obj_train, view_train, obj_test, view_test)
  return decode_all(nets, params, z, batch_size)


encode_all_jit = jax.jit(encode_all, static_argnums=(0, 3))
