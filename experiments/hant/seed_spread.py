r"""Fine-tuning seed spread of the students of a finished (or partial) HANT sweep.

Each selected student of WORKDIR's sweep (same ops, same distilled starting weights, same recipe as
the run's `finetune` config) is fine-tuned again with other PRNG keys: seed s uses the key the run
itself would use with `--config.seed=s` (`fold_in(key(s), 3)`: minibatch order), so seed = the
run's own seed reproduces its row. Reads WORKDIR/config.json, teacher.pkl, candidates.pkl and
sweep.json (or sweep_partial.json); refuses to run if the caches were made with another config.
Writes WORKDIR/seed_spread.json and prints a table (mean and sample std over the run's row and the
new seeds).

  METANAS_DATA_DIR=/work/shared/data python experiments/hant/seed_spread.py /work/runs/hant_fit \
      cpu_1t_b1 0.35 1,2
"""

import json
import os
import sys

import jax
import numpy as np
from ml_collections import config_dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from metanas.hant import accelerate as acc_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import data as data_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import distill  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import experiment  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import training  # pylint: disable=g-import-not-at-top,wrong-import-position


def _load_cached(workdir, name, config, keys):
  def refuse():
    raise RuntimeError(f"{name} in {workdir} is missing or was made with another config")
  return experiment.cached(os.path.join(workdir, name), experiment.fingerprint(config, keys),
                           refuse, what=name)


def main(workdir: str, device: str, frac: float, seeds: tuple[int, ...]) -> list[dict]:
  with open(os.path.join(workdir, "config.json")) as f:
    config = config_dict.ConfigDict(json.load(f))
  if config.seed in seeds:
    raise ValueError(f"seed {config.seed} is the run's own seed; its row is already included")
  with open(experiment.run_file(workdir, "sweep")) as f:
    sweep = json.load(f)
  rows = [r for r in sweep if r["device"] == device and abs(r.get("frac", -1) - frac) < 1e-9
          and "ops" in r]
  if not rows:
    raise ValueError(f"no finished rows for {device} at budget {frac} in {workdir}")
  arch = experiment.make_arch(config.model)
  data = data_lib.load(config.data, config.data_dir, arch.image_hw, arch.image_c)
  teacher = acc_lib.Teacher(arch, _load_cached(workdir, "teacher.pkl", config,
                                               experiment.TEACHER_KEYS))
  cands = _load_cached(workdir, "candidates.pkl", config, experiment.CANDIDATE_KEYS)
  out = []
  for r in rows:
    ops = tuple(r["ops"])
    accs = {config.seed: r["test_acc"]}
    for s in seeds:
      params = distill.student_params(cands.bank, ops, teacher.params)
      params = training.kd_finetune(arch, ops, params, teacher.params, data["x_train"],
                                    data["y_train"], config.finetune,
                                    jax.random.fold_in(jax.random.key(s), 3))
      accs[s] = training.evaluate(arch, ops, params, data["x_test"], data["y_test"])["acc"]
      print(f"{r['method']} seed {s}: {100 * accs[s]:.2f}", flush=True)
    v = np.array(list(accs.values()))
    out.append({"method": r["method"], "ops": r["ops"], "test_acc_by_seed": accs,
                "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0})
    with open(os.path.join(workdir, "seed_spread.json"), "w") as f:
      json.dump({"device": device, "frac": frac, "rows": out}, f, indent=1)
  print(f"\n| method | test acc by seed (%) | mean | std |\n|---|---|---|---|")
  for o in out:
    by = " / ".join(f"{100 * a:.2f}" for a in o["test_acc_by_seed"].values())
    print(f"| {o['method']} | {by} | {100 * o['mean']:.2f} | {100 * o['std']:.2f} |")
  return out


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2], float(sys.argv[3]), tuple(int(s) for s in sys.argv[4].split(",")))
