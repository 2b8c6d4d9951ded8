"""Object x view kernels of GPPVAE as explicit low-rank feature maps (arXiv 1810.11738, Sec. 3.2).

The prior covariance of sample n (object o_n seen in view v_n) and sample m is

  K[n, m] = s_g * k_obj(o_n, o_m) * k_view(v_n, v_m) + s_n * [n == m]          (paper Eq. 5)

Both factors are written through feature vectors, k_obj(o, o') = x_o . x_o' (linear kernel on
learnt object features, x [P, Qo]) and k_view(v, v') = phi_v . phi_v', so the product kernel has the
Kronecker-structured feature rows F[n] = sqrt(s_g) * vec(x_{o_n} outer phi_{v_n}) of rank
R = Qo * Qv, and K = F F^T + s_n I (see `metanas.gp.lowrank`). View kernels:

- "periodic": a stationary kernel on the circle with learnt Fourier spectrum,
    k(t, t') = c_0 + sum_{m=1..M} c_m cos(m (t - t')),  c_m = softplus(raw_m) >= 0,
  t = 2 pi v / num_views. Non-negative coefficients make it positive semi-definite on any angles
  (Bochner's theorem on the circle); features [sqrt c_0, sqrt c_m cos(m t), sqrt c_m sin(m t)],
  Qv = 2M + 1. It generalises to a view that is never observed.
- "freeform": learnt view feature vectors w [V, Qv], k_view = w w^T (free-form low rank); an
  unobserved view keeps its initial features.

The additive one-hot kernel K = s_o [o_n == o_m] + s_v [v_n == v_m] + s_n I ("additive", used by
the LIGP baseline) has features [sqrt(s_o) onehot(o), sqrt(s_v) onehot(v)].

Positive definiteness: every feature kernel is PSD by construction, and s_n = softplus(raw) +
noise_floor > 0 adds a strictly positive diagonal ("jitter"), so K is PD for ANY parameter values
and A = s_n I + F^T F always has a Cholesky factor. Scales use softplus so they are positive too.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

VIEW_KERNELS = ("periodic", "freeform")
KERNEL_KINDS = ("product", "additive")


@dataclasses.dataclass(frozen=True)
class KernelSpec:
  """Static description of the kernel (hashable, so it can be a jit static argument).

  Attributes:
    num_objects: P, number of distinct objects (object ids are 0..P-1).
    num_views: V, number of views on the circle (view ids 0..V-1, angle 2 pi v / V).
    kind: "product" (GPPVAE, Eq. 5) or "additive" (one-hot LIGP baseline).
    view_kernel: "periodic" or "freeform" (product kernel only).
    object_dim: Qo, length of the learnt object feature vectors.
    view_dim: harmonics M for "periodic" (Qv = 2M + 1) or Qv for "freeform".
    noise_floor: the jitter added to s_n; keeps K and A well conditioned.
  """
  num_objects: int
  num_views: int
  kind: str = "product"
  view_kernel: str = "periodic"
  object_dim: int = 8
  view_dim: int = 4
  noise_floor: float = 1e-3

  def __post_init__(self):
    if self.kind not in KERNEL_KINDS:
      raise ValueError(f"Unknown kernel kind {self.kind!r}; choose one of {KERNEL_KINDS}.")
    if self.view_kernel not in VIEW_KERNELS:
      raise ValueError(f"Unknown view kernel {self.view_kernel!r}; choose one of {VIEW_KERNELS}.")
    if self.num_objects < 1 or self.num_views < 1 or self.object_dim < 1 or self.view_dim < 1:
      raise ValueError(f"KernelSpec sizes must be >= 1, got {self}.")
    if self.noise_floor <= 0:
      raise ValueError(f"noise_floor must be > 0 (it is the jitter keeping K PD), got "
                       f"{self.noise_floor}.")

  @property
  def rank(self) -> int:
    """R, the number of feature columns."""
    if self.kind == "additive":
      return self.num_objects + self.num_views
    qv = 2 * self.view_dim + 1 if self.view_kernel == "periodic" else self.view_dim
    return self.object_dim * qv


def _inv_softplus(x: float) -> float:
  return float(np.log(np.expm1(x)))


def init(spec: KernelSpec, rng: jax.Array) -> dict[str, jax.Array]:
  """Initial kernel parameters: prior variance ~1 per latent, s_n = 0.1 (unconstrained values)."""
  params = {"raw_noise": jnp.asarray(_inv_softplus(0.1))}
  if spec.kind == "additive":
    params["raw_object_scale"] = jnp.asarray(_inv_softplus(0.5))
    params["raw_view_scale"] = jnp.asarray(_inv_softplus(0.5))
    return params
  k_obj, k_view = jax.random.split(rng)
  # Object features with E[x.x] = 1, so s_g * k_obj * k_view starts at variance ~ s_g.
  params["object_feat"] = jax.random.normal(k_obj, (spec.num_objects, spec.object_dim)) / np.sqrt(
      spec.object_dim)
  params["raw_scale"] = jnp.asarray(_inv_softplus(0.9))
  if spec.view_kernel == "periodic":
    # Decaying spectrum (a smooth kernel), normalised to k(t, t) = 1.
    c = 0.5 ** np.arange(spec.view_dim + 1)
    params["raw_view_spectrum"] = jnp.asarray([_inv_softplus(v) for v in c / c.sum()])
  else:
    params["view_feat"] = jax.random.normal(k_view, (spec.num_views, spec.view_dim)) / np.sqrt(
        spec.view_dim)
  return params


def noise(spec: KernelSpec, params: dict[str, jax.Array]) -> jax.Array:
  """s_n = softplus(raw) + noise_floor > 0."""
  return jax.nn.softplus(params["raw_noise"]) + spec.noise_floor


def view_features(spec: KernelSpec, params: dict[str, jax.Array], view: jax.Array) -> jax.Array:
  """phi_v for view ids `view` [N] -> [N, Qv] (product kernel only)."""
  if spec.view_kernel == "freeform":
    return params["view_feat"][view]
  coef = jax.nn.softplus(params["raw_view_spectrum"])  # [M + 1] >= 0.
  t = 2 * jnp.pi * view.astype(jnp.float32) / spec.num_views
  m = jnp.arange(1, spec.view_dim + 1, dtype=jnp.float32)
  amp = jnp.sqrt(coef[1:] + 1e-12)
  cos = amp * jnp.cos(t[:, None] * m)
  sin = amp * jnp.sin(t[:, None] * m)
  const = jnp.broadcast_to(jnp.sqrt(coef[0] + 1e-12), t.shape)[:, None]
  return jnp.concatenate([const, cos, sin], axis=1)


def features(spec: KernelSpec, params: dict[str, jax.Array], obj: jax.Array,
             view: jax.Array) -> jax.Array:
  """Feature rows F [N, R] of samples with object ids `obj` [N] and view ids `view` [N]."""
  if obj.shape != view.shape or obj.ndim != 1:
    raise ValueError(f"obj and view must be matching 1-D id arrays, got {obj.shape} and "
                     f"{view.shape}.")
  if spec.kind == "additive":
    so = jnp.sqrt(jax.nn.softplus(params["raw_object_scale"]))
    sv = jnp.sqrt(jax.nn.softplus(params["raw_view_scale"]))
    return jnp.concatenate([so * jax.nn.one_hot(obj, spec.num_objects),
                            sv * jax.nn.one_hot(view, spec.num_views)], axis=1)
  x = params["object_feat"][obj]  # [N, Qo]
  phi = view_features(spec, params, view)  # [N, Qv]
  scale = jnp.sqrt(jax.nn.softplus(params["raw_scale"]))
  return scale * (x[:, :, None] * phi[:, None, :]).reshape(obj.shape[0], -1)


def dense(spec: KernelSpec, params: dict[str, jax.Array], obj: jax.Array,
          view: jax.Array) -> jax.Array:
  """The full N x N covariance, for tests and small problems only ([N], [N] -> [N, N])."""
  f = features(spec, params, obj, view)
  return f @ f.T + noise(spec, params) * jnp.eye(obj.shape[0], dtype=f.dtype)
