r"""Meta-fine-tunes the searched sub-networks of a finished H-Meta-NAS run from inherited weights.

Reads <workdir>/results.json and the supernet checkpoint of a finished run of
`configs/hmetanas_omniglot.py` (same config and overrides as that run), trains every searched
sub-network (latency and MAC budgets) alone for `--steps` first-order MAML steps starting from the
weights it inherits from the supernet, tests it on the run's test tasks and writes
<workdir>/results_finetuned_<steps>.json. A run started with `--config.finetune_steps=N` does the same
inside `run`. `--scratch` is the control: the same shapes and steps from a fresh initialisation
(<workdir>/results_scratch_<steps>.json). Prints one line per sub-network.

  python experiments/hmetanas/finetune_subnets.py --config configs/hmetanas_omniglot.py:cpu \
      --workdir /work/runs/hmetanas_15k --steps 2000
"""

import argparse
import json

from metanas import config_lib
from metanas.nas import hmetanas_experiment


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", required=True, help="config spec of the finished run")
  p.add_argument("--workdir", required=True)
  p.add_argument("--steps", type=int, required=True)
  p.add_argument("--devices", default="", help="comma-separated: only these devices' "
                 "sub-networks ('macs' = the MAC budgets); default all")
  p.add_argument("--scratch", action="store_true",
                 help="control: the same shapes and steps from a fresh initialisation")
  args = p.parse_args()
  config = config_lib.load_config(args.config)
  results = hmetanas_experiment.finetune_workdir(
      config, args.workdir, args.steps, inherit=not args.scratch,
      devices=tuple(d for d in args.devices.split(",") if d))
  key, word = ("scratch", "scratch") if args.scratch else ("finetuned", "fine-tuned")
  for name, rows in list(results["adaptation"].items()) + [("macs", results["mac_budgets"])]:
    for r in rows:
      if f"{key}_accuracy" in r:
        print(f"{name:12s} budget {r.get('budget', float('nan')):9.4g}  {r['arch']:40s} "
              f"searched {100 * r['test_accuracy']:5.1f}%  {word} "
              f"{100 * r[f'{key}_accuracy']:5.1f}% +- {100 * r[f'{key}_accuracy_ci95']:.1f}")
  if not args.devices:
    print(json.dumps(results[f"summary_{key}"], indent=1))


if __name__ == "__main__":
  main()
