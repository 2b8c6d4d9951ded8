"""metanas: meta-learning, architecture search and statistical learning in JAX."""

__version__ = "0.1.0"
