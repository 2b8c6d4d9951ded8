r"""Runs the experiments behind the results tables and prints the tables from their workdirs.

  python experiments/reproduce.py --list                 # rows and their commands
  python experiments/reproduce.py --run --only maml_sin  # run rows whose id starts with maml_sin
  python experiments/reproduce.py                        # print markdown tables from workdirs/

Every row is (config, overrides) -> workdir; the number in the table is read from the workdir's
results.json, so a table can only show what a run measured. Runs resume if interrupted.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# id, table, description, config spec, overrides, metric keys in results.json, paper value.
ROWS = [
    ("maml_sin_k5", "MAML sinusoid (600 tasks, MSE after 1 / 10 steps)", "K=5",
     "configs/maml_sinusoid.py:cpu", ["--config.data.k_shot=5"], ("eval/test/step1_mse", "eval/test/step10_mse"), None),
    ("maml_sin_k10", "MAML sinusoid (600 tasks, MSE after 1 / 10 steps)", "K=10",
     "configs/maml_sinusoid.py:cpu", [], ("eval/test/step1_mse", "eval/test/step10_mse"), "~0.77 (Fig. 2)"),
    ("maml_sin_k20", "MAML sinusoid (600 tasks, MSE after 1 / 10 steps)", "K=20",
     "configs/maml_sinusoid.py:cpu", ["--config.data.k_shot=20"], ("eval/test/step1_mse", "eval/test/step10_mse"), None),
    ("maml_omni_5w1s_cpu", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 1-shot, :cpu, 6000 steps", "configs/maml_omniglot.py:cpu",
     ["--config.maml.task_chunk=0", "--config.train.num_steps=6000", "--config.optim.schedule=constant", "--config.maml.learn_inner_lr=False"], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"),
     "98.7%"),
    ("maml_omni_5w1s_cpu_10k", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 1-shot, :cpu, 10000 steps", "configs/maml_omniglot.py:cpu",
     ["--config.maml.task_chunk=0", "--config.train.num_steps=10000", "--config.optim.schedule=constant", "--config.maml.learn_inner_lr=False"], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"),
     "98.7%"),
    ("maml_omni_5w1s_cpu_14k", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 1-shot, 14000 steps, constant LR, fixed inner LR", "configs/maml_omniglot.py:cpu",
     ["--config.maml.task_chunk=0", "--config.train.num_steps=14000", "--config.optim.schedule=constant", "--config.maml.learn_inner_lr=False"], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"),
     "98.7%"),
    ("maml_omni_5w1s_cpu_cos", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 1-shot, :cpu recipe at 14000 steps (cosine LR, learnt inner LRs), tasks vmapped", "configs/maml_omniglot.py:cpu",
     ["--config.maml.task_chunk=0", "--config.train.num_steps=14000"], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"), "98.7%"),
    ("maml_omni_5w1s_cpu_chunk1", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 1-shot, :cpu recipe at 14000 steps, tasks one at a time (maml.task_chunk=1)", "configs/maml_omniglot.py:cpu",
     ["--config.train.num_steps=14000"], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"), "98.7%"),
    ("maml_omni_5w1s_cpu_28k", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 1-shot, :cpu (28000 steps, cosine LR, learnt inner LRs, task_chunk=1)", "configs/maml_omniglot.py:cpu",
     [], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"), "98.7%"),
    ("maml_omni_5w5s_cpu_4k", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "5-way 5-shot, :cpu recipe, 4000 steps", "configs/maml_omniglot.py:cpu",
     ["--config.maml.task_chunk=0", "--config.data.k_shot=5", "--config.train.num_steps=4000", "--config.train.eval_every=1000"],
     ("eval/test/step1_accuracy", "eval/test/step3_accuracy"), "99.9%"),
    ("maml_omni_5w5s_cpu", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)", "5-way 5-shot, :cpu",
     "configs/maml_omniglot.py:cpu", ["--config.data.k_shot=5"], ("eval/test/step1_accuracy", "eval/test/step3_accuracy"),
     "99.9%"),
    ("maml_omni_20w1s_cpu", "MAML Omniglot (600 test tasks, accuracy after 1 / 3 steps)",
     "20-way 1-shot, :cpu_20way (:cpu recipe, meta-batch 8, 4000 steps)",
     "configs/maml_omniglot.py:cpu_20way", ["--config.maml.task_chunk=0"],
     ("eval/test/step1_accuracy", "eval/test/step3_accuracy"), "95.8%"),
]


def workdir(row_id: str) -> str:
  return os.path.join(ROOT, "workdirs", row_id)


def command(row) -> list[str]:
  return [sys.executable, "-m", "metanas.main", "--config", row[3], "--workdir",
          workdir(row[0])] + list(row[4])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--run", action="store_true")
  parser.add_argument("--list", action="store_true")
  parser.add_argument("--only", default="")
  args = parser.parse_args()
  rows = [r for r in ROWS if r[0].startswith(args.only)]
  for row in rows:
    if args.list:
      print(row[0], " ".join(command(row)[1:]))
    elif args.run and not os.path.exists(os.path.join(workdir(row[0]), "results.json")):
      subprocess.run(command(row), cwd=ROOT, check=True)
  if args.list:
    return
  table = None
  for row in rows:
    if row[1] != table:
      table = row[1]
      print(f"\n### {table}\n\n| setting | command | paper | ours | wall time |\n|---|---|---|---|---|")
    path = os.path.join(workdir(row[0]), "results.json")
    ours, wall = "not run", ""
    if os.path.exists(path):
      with open(path) as f:
        res = json.load(f)
      parts = []
      for key in row[5]:
        value, ci = res.get(key), res.get(key + "_ci95")
        if not isinstance(value, (int, float)):
          parts.append(f"{value} (diverged on some tasks)")
          continue
        fmt = (lambda v: f"{100 * v:.1f}%") if "accuracy" in key else (lambda v: f"{v:.3f}")
        parts.append(fmt(value) + (f" ± {fmt(ci)}" if isinstance(ci, (int, float)) else ""))
      ours = " / ".join(parts)
      wall = f"{res.get('wall_time_sec', 0) / 60:.1f} min ({res.get('devices', '')})"
    cmd = "python -m metanas.main --config " + row[3] + " " + " ".join(row[4])
    print(f"| {row[2]} | `{cmd.strip()}` | {row[6] or '-'} | {ours} | {wall} |")


if __name__ == "__main__":
  main()
