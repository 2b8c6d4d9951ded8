"""Every config's :smoke variant runs end to end; bad configs fail at start-up naming the key."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from metanas import config_lib
from metanas import main as metanas_main
from metanas.data import npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))


def test_configs_exist():
  names = [os.path.basename(c) for c in CONFIGS]
  assert "maml_sinusoid.py" in names and "maml_omniglot.py" in names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p)[:-3])
def test_smoke_variant_runs_end_to_end(path, tmp_path, data_dir):
  config = config_lib.load_config(f"{path}:smoke")
  assert config.get_type("method") is str  # Every config names its method.
  results = metanas_main.run(config, str(tmp_path))
  assert results
  assert os.path.exists(tmp_path / "results.json"), "run() must write results.json"
  with open(tmp_path / "results.json") as f:
    json.load(f)
  with open(tmp_path / "config.json") as f:  # main.run records the full config of every method.
    written = json.load(f)
  assert written["method"] == config.method and written.keys() == config.to_dict().keys()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.basename(p)[:-3])
def test_variants_build_and_lock(path):
  for variant in ("smoke", "cpu", "paper"):
    config = config_lib.load_config(f"{path}:{variant}")
    with pytest.raises(AttributeError):
      config.this_key_does_not_exist = 1
  with pytest.raises(config_lib.ConfigError, match="Unknown config variant"):
    config_lib.load_config(f"{path}:no_such_variant")


def test_maml_smoke_learns_something(tmp_path):
  """Eval after adaptation beats no adaptation on the smoke sinusoid run (real training signal)."""
  config = config_lib.load_config(os.path.join(ROOT, "configs", "maml_sinusoid.py:smoke"))
  with config.unlocked():
    config.train.num_steps = 200
    config.train.log_every = 100
    config.train.eval_every = 200
    config.train.checkpoint_every = 200
    config.eval.num_tasks = 64
  r = metanas_main.run(config, str(tmp_path))
  assert r["eval/test/step1_mse"] < 0.9 * r["eval/test/step0_mse"]
  assert np.isfinite(r["train/loss"])


def _cli(*args, env=None):
  return subprocess.run([sys.executable, "-m", "metanas.main", *args], capture_output=True,
                        text=True, env=env, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("override,needle", [
    ("--config.maml.inner_lrr=0.1", "inner_lrr"),
    ("--config.maml.meta_batch_size=abc", "meta_batch_size"),
    ("--config.no_such_group.x=1", "no_such_group"),
])
def test_bad_overrides_fail_at_startup_naming_the_key(override, needle, tmp_path):
  r = _cli("--config", "configs/maml_sinusoid.py:smoke", "--workdir", str(tmp_path), override)
  assert r.returncode == 2
  assert needle in r.stderr and "Traceback" not in r.stderr
  assert not os.path.exists(tmp_path / "checkpoints")


def test_missing_required_value_names_the_key(tmp_path):
  cfg = tmp_path / "needs_value.py"
  cfg.write_text(
      "from metanas import config_lib\n"
      "from ml_collections import config_dict\n"
      "def get_config(arg=None):\n"
      "  c = config_dict.ConfigDict()\n"
      "  c.method = 'maml'\n"
      "  c.data = dict(path=config_lib.required(str))\n"
      "  return c\n")
  r = _cli("--config", str(cfg), "--workdir", str(tmp_path / "wd"))
  assert r.returncode == 2 and "data.path" in r.stderr and "--config.data.path" in r.stderr
  with pytest.raises(config_lib.ConfigError, match="data.path"):
    config_lib.validate(config_lib.load_config(str(cfg)))
  config = config_lib.load_config(str(cfg))
  config.data.path = "x"
  config_lib.validate(config)


def test_missing_data_directory_gives_documented_error(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != npz.ENV_VAR}
  r = _cli("--config", "configs/maml_omniglot.py:smoke", "--workdir", str(tmp_path), env=env)
  assert r.returncode == 2
  assert npz.ENV_VAR in r.stderr and "Traceback" not in r.stderr
