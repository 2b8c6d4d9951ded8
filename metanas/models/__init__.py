"""Flax models. Algorithms only ever see their `params` pytrees and pure `apply` functions."""
