"""Convolution lowerings agree (values and first/second-order gradients); batch-stat norm."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metanas.models import conv
from metanas.models import maml_nets


@pytest.mark.parametrize("stride,padding", [(1, "SAME"), (2, "SAME"), (2, "VALID")])
def test_conv_impls_agree_with_lax(stride, padding):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 3))
  k = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 3, 4))
  ref = conv.conv2d(x, k, stride, padding, "lax")
  for impl in ("im2col", "taps", "patches"):
    np.testing.assert_allclose(conv.conv2d(x, k, stride, padding, impl), ref, rtol=1e-5,
                               atol=1e-5)


def test_conv4_second_order_gradients_agree_across_impls():
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 12, 12, 1))
  y = jnp.array([0, 1, 0, 1])
  grads = {}
  for impl in ("lax", "im2col"):
    model = maml_nets.Conv4(num_classes=2, filters=4, conv_impl=impl)
    params = model.init(jax.random.PRNGKey(0), x)

    def loss(p):
      logits = model.apply(p, x)
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), y])

    def adapted_loss(p):  # One inner step, differentiated through (second order).
      g = jax.grad(loss)(p)
      return loss(jax.tree.map(lambda a, b: a - 0.1 * b, p, g))

    grads[impl] = (adapted_loss(params), jax.grad(adapted_loss)(params))
  np.testing.assert_allclose(grads["lax"][0], grads["im2col"][0], rtol=1e-4)
  for a, b in zip(jax.tree.leaves(grads["lax"][1]), jax.tree.leaves(grads["im2col"][1])):
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)


def test_batch_stat_norm_uses_current_batch_statistics():
  x = 3.0 + 2.0 * jax.random.normal(jax.random.PRNGKey(0), (8, 5, 5, 3))
  norm = conv.BatchStatNorm()
  params = norm.init(jax.random.PRNGKey(1), x)
  y = norm.apply(params, x)
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
  np.testing.assert_allclose(y.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
