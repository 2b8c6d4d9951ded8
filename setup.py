"""metanas: meta-learning, architecture search and statistical learning in JAX."""
import setuptools

setuptools.setup(
    name="metanas",
    version="0.1.0",
    description="Meta-learning, NAS and statistical-learning methods in pure functional JAX.",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["metanas", "metanas.*"]),
    install_requires=[
        # Current JAX: jax.pmap and device_put_replicated are gone; we use jit + NamedSharding.
        "jax>=0.7.0",
        "jaxlib>=0.7.0",
        "flax>=0.10.0",
        "optax>=0.2.4",
        "chex>=0.1.88",
        "ml-collections>=1.0.0",
        "absl-py>=2.1.0",
        "orbax-checkpoint>=0.11.0",
        "tensorflow-datasets>=4.9.7",
        "ortools>=9.12",
        "numpy>=1.26",
        "scipy>=1.13",
        "scikit-learn>=1.5",
        "matplotlib>=3.8",
        "tensorboardX>=2.6",
        "pillow>=10.0",
    ],
    extras_require={
        "test": ["pytest>=8.0", "pytest-xdist>=3.5"],
        # Benchmark-only: the PyTorch reference MAML step. Not a library dependency.
        "bench": ["torch==2.13.0", "statsmodels>=0.14"],
    },
)
