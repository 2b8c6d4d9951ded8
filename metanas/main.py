r"""Launches one experiment.

  python -m metanas.main --config configs/maml_sinusoid.py:cpu --workdir /tmp/sinusoid \
      [--config.train.num_steps=1000]

The config file's `get_config(arg)` builds a locked ConfigDict; `config.method` picks the method's
`run(config, workdir)` in `metanas.registry`. Everything else lives in importable functions.
"""

import os
import sys

import jax
from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from metanas import config_lib
from metanas import metric_writer
from metanas import parallel
from metanas import registry
from metanas.data import npz

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:variant].",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for metrics, checkpoints and results.")
flags.mark_flags_as_required(["config", "workdir"])


def run(config, workdir: str) -> dict:
  """Validates `config`, writes it to `workdir`/config.json and runs its method; the entry point
  shared by CLI, tests and notebooks."""
  config_lib.validate(config)
  fn = registry.get_run_fn(config.method)
  if jax.process_index() == 0:
    metric_writer.write_config(workdir, config)
  return fn(config, workdir)


def _clean(e: BaseException) -> str:
  text = str(e.args[0]) if e.args else str(e)
  while text.startswith(("'", '"')) and text.endswith(("'", '"')) and len(text) > 1:
    text = text[1:-1]
  return text.replace("\\n", " ").replace("\\'", "'").replace('\\"', '"')


def parse_flags(argv):
  """absl flag parsing with config errors reported as one clear line naming the key."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    if "Traceback" in text:  # An exception inside get_config(): keep its last line.
      head = text.split(":", 1)[0]
      text = f"{head}: " + [l for l in text.splitlines() if l.strip()][-1]
    print(f"error: {text}", file=sys.stderr)
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    print(f"error: bad --config override: {_clean(e)}. Overrides must name an existing key of "
          "the config file with a value of its type.", file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  # A persistent compilation cache makes re-runs (and resumed runs) start fast. It does not
  # change results. METANAS_COMPILATION_CACHE="" disables it.
  cache = os.environ.get("METANAS_COMPILATION_CACHE",
                         os.path.join(os.path.expanduser("~"), ".cache", "metanas", "jax"))
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  parallel.maybe_initialize_distributed(config)
  try:
    run(config, _WORKDIR.value)
  except (config_lib.ConfigError, npz.DataError, KeyError) as e:
    logging.error("%s", e)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
