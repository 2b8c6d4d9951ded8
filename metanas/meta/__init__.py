"""Meta-learning: the MAML core and the experiments built on it."""
