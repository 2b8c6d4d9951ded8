"""Monotone tanh warping of a phenotype (Fusi et al. 2014, arXiv 1402.5447, Eq. 2; Snelson 2004).

  z = f(y) = d * y + sum_i a_i * tanh(b_i * (y + c_i)),   a_i, b_i, d > 0,

so f'(y) = d + sum_i a_i b_i (1 - tanh^2(b_i (y + c_i))) >= d > 0 and f is strictly increasing. The
warping acts on the standardised phenotype (y - loc) / scale; `loc` and `scale` are stored with the
parameters so that the log-Jacobian and the inverse refer to the original scale of y.

Parameters are plain pytrees (`WarpParams`); the optimiser sees the unconstrained `raw` form
(log a, log b, c, log d), mapped by `constrain`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class WarpParams(NamedTuple):
  """Constrained warping parameters.

  Attributes:
    a: [num_terms] tanh amplitudes (>= 0).
    b: [num_terms] tanh slopes (>= 0).
    c: [num_terms] tanh offsets, on the standardised scale.
    d: [] linear slope (> 0).
    loc: [] centre used to standardise y.
    scale: [] spread used to standardise y (> 0).
  """
  a: jax.Array
  b: jax.Array
  c: jax.Array
  d: jax.Array
  loc: jax.Array
  scale: jax.Array


def identity(num_terms: int = 3, loc: float = 0.0, scale: float = 1.0) -> WarpParams:
  """The warping with a = 0, d = 1: f(y) = (y - loc) / scale."""
  z = jnp.zeros((num_terms,))
  return WarpParams(a=z, b=jnp.ones((num_terms,)), c=z, d=jnp.ones(()),
                    loc=jnp.asarray(loc, z.dtype), scale=jnp.asarray(scale, z.dtype))


def constrain(raw: dict, loc, scale) -> WarpParams:
  """Maps unconstrained `raw` = {log_a, log_b, c, log_d} to `WarpParams`."""
  return WarpParams(a=jnp.exp(raw["log_a"]), b=jnp.exp(raw["log_b"]), c=raw["c"],
                    d=jnp.exp(raw["log_d"]), loc=jnp.asarray(loc), scale=jnp.asarray(scale))


def _standardise(params: WarpParams, y: jax.Array) -> jax.Array:
  return (y - params.loc) / params.scale


def apply(params: WarpParams, y: jax.Array) -> jax.Array:
  """z = f(y) (Eq. 2), elementwise.

  Args:
    params: the warping.
    y: [...] phenotype values on the original scale.

  Returns:
    [...] warped values.
  """
  u = _standardise(params, y)[..., None]
  return params.d * u[..., 0] + jnp.sum(params.a * jnp.tanh(params.b * (u + params.c)), axis=-1)


def derivative(params: WarpParams, y: jax.Array) -> jax.Array:
  """f'(y) with respect to the original-scale y, elementwise ([...] -> [...]); always > 0."""
  u = _standardise(params, y)[..., None]
  t = jnp.tanh(params.b * (u + params.c))
  du = params.d + jnp.sum(params.a * params.b * (1.0 - t * t), axis=-1)
  return du / params.scale


def log_jacobian(params: WarpParams, y: jax.Array) -> jax.Array:
  """sum_n log f'(y_n), the change-of-variables term of the warped likelihood (Eq. 3).

  Args:
    params: the warping.
    y: [N] phenotypes.

  Returns:
    [] the log-Jacobian.
  """
  return jnp.sum(jnp.log(derivative(params, y)))


def inverse(params: WarpParams, z: jax.Array, num_iters: int = 100) -> jax.Array:
  """y = f^{-1}(z) by safeguarded Newton's method, elementwise.

  Since |tanh| <= 1, the root on the standardised scale lies in
  [(z - sum a) / d, (z + sum a) / d]; a Newton step that leaves the current bracket, or that is not
  half as long as the previous step (Numerical Recipes' rtsafe rule), is replaced by bisection, so
  the iteration converges for any monotone warping, also with near-flat regions (small d).

  Args:
    params: the warping.
    z: [...] warped values.
    num_iters: Newton/bisection iterations (bisection alone gains a factor 2 per step).

  Returns:
    [...] original-scale values with f(y) = z.
  """
  z = jnp.asarray(z)
  total_a = jnp.sum(params.a)
  lo = (z - total_a) / params.d
  hi = (z + total_a) / params.d
  u0 = jnp.clip(z / params.d, lo, hi)

  def f_and_df(u):
    t = jnp.tanh(params.b * (u[..., None] + params.c))
    f = params.d * u + jnp.sum(params.a * t, axis=-1)
    df = params.d + jnp.sum(params.a * params.b * (1.0 - t * t), axis=-1)
    return f, df

  def body(_, state):
    u, lo, hi, dx_old = state
    f, df = f_and_df(u)
    r = f - z
    lo = jnp.where(r < 0, u, lo)
    hi = jnp.where(r > 0, u, hi)
    step = r / df
    newton = u - step
    # rtsafe rule: bisect when Newton leaves the bracket or does not halve the previous step.
    ok = (newton > lo) & (newton < hi) & (2.0 * jnp.abs(step) < jnp.abs(dx_old))
    u_new = jnp.where(ok, newton, 0.5 * (lo + hi))
    u_new = jnp.where(r == 0, u, u_new)
    return u_new, lo, hi, u_new - u

  u, _, _, _ = jax.lax.fori_loop(0, num_iters, body, (u0, lo, hi, hi - lo))
  return u * params.scale + params.loc
