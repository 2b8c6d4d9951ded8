r"""MAML on Omniglot N-way K-shot classification (Finn et al. 2017, Table 1).

Commands:
  # 5-way 1-shot, the CPU variant (first order, im2col convolutions, tasks one at a time,
  # 28000 steps, cosine meta LR, learnt inner LRs; ~53 minutes on an idle 2-core CPU):
  python -m metanas.main --config configs/maml_omniglot.py:cpu --workdir /tmp/omni_5w1s
  # The paper's setting (second order, meta-batch 32, 60k steps; for accelerators):
  python -m metanas.main --config configs/maml_omniglot.py:paper --workdir /tmp/omni_paper
  # Other settings: --config.data.k_shot=5, or --config.data.n_way=20 (paper: inner lr 0.1,
  # 5 inner steps for 20-way; meta-batch 16).
  # 20-way 1-shot with the :cpu recipe (meta-batch 8, 4000 steps):
  python -m metanas.main --config configs/maml_omniglot.py:cpu_20way --workdir /tmp/omni_20w1s
Variants: `:smoke`, `:cpu`, `:cpu_20way`, `:paper`, `:paper_5shot`, `:paper_20way`.
Data: $METANAS_DATA_DIR/omniglot28.npz, or `--config.data.source=tfds`.

Paper (600 test tasks): 5-way 1-shot 98.7%, 5-way 5-shot 99.9%, 20-way 1-shot 95.8%.
Measured `:cpu` 5-way 1-shot (600 test tasks, accuracy after 1 / 3 / 10 inner steps; 28000
first-order steps, cosine-annealed meta LR, learnt per-layer per-step inner LRs, task_chunk=1):
95.5% / 95.6% / 95.7% +- 0.4% (9.1 steps/s on an idle 2-core CPU, i.e. ~53 min; 91 min on a
machine shared with five CPU-heavy jobs). The same recipe at 14000 steps: 94.5% +- 0.5% (3 steps,
task_chunk=1) and 95.2% +- 0.5% (tasks vmapped). 20-way 1-shot (`:cpu_20way`): 82.2% +- 0.4%.
See experiments/README.md.
"""

from ml_collections import config_dict

from metanas import config_lib
from metanas import train


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(
      arg, ("smoke", "cpu", "cpu_20way", "paper", "paper_5shot", "paper_20way"))
  c = config_dict.ConfigDict()
  c.method = "maml"
  c.task = "omniglot"
  c.data_dir = config_dict.placeholder(str)
  c.data = dict(source="npz", protocol="background", n_way=5, k_shot=1, n_query=15,
                num_val_chars=0, train_rotations=True, test_rotations=False)
  c.model = dict(name="conv4", hidden=(), filters=64, downsample="stride", conv_impl="im2col")
  c.maml = dict(num_inner_steps=1, inner_lr=0.4, first_order=False, learn_inner_lr=False,
                meta_batch_size=32, task_chunk=0)
  # task_chunk: 0 = all tasks of a meta-batch vmapped at once; c > 0 = c tasks at a time with
  # accumulated meta-gradients (same result; faster on CPU at large meta-batch, see
  # experiments/README.md "Speed"). Keep it a multiple of the number of devices.
  c.optim = dict(learning_rate=1e-3, grad_clip=0.0, schedule="constant")
  c.train = train.default_train_config()
  c.train.num_steps = 60_000
  c.train.log_every = 100
  c.train.eval_every = 5000
  c.train.checkpoint_every = 1000
  c.eval = dict(num_tasks=600, inner_steps=(1, 3), num_query=0, chunk=40, periodic_num_tasks=100)
  c.distributed = dict(enabled=False, coordinator_address="auto", num_processes=1, process_id=0)
  if variant == "paper":
    c.model.conv_impl = "lax"
  elif variant == "paper_5shot":
    c.model.conv_impl = "lax"
    c.data.k_shot = 5
  elif variant == "paper_20way":
    c.model.conv_impl = "lax"
    c.data.n_way = 20
    c.maml.num_inner_steps = 5
    c.maml.inner_lr = 0.1
    c.maml.meta_batch_size = 16
    c.data.n_query = 5
    c.eval.inner_steps = (5, 10)
  elif variant in ("cpu", "cpu_20way"):
    c.maml.task_chunk = 1  # One task at a time: 1.4x faster step on CPU (benchmarks/maml_step.py).
    c.maml.first_order = True
    c.maml.meta_batch_size = 16
    c.data.n_query = 5
    c.maml.learn_inner_lr = True  # MAML++ per-layer per-step inner rates (first order suffices).
    c.optim.schedule = "cosine"  # MAML++ cosine annealing of the meta learning rate.
    c.train.num_steps = 28_000  # 14000 gave 94.5-95.2%: at the threshold (experiments/).
    c.train.eval_every = 2000
    c.eval.inner_steps = (1, 3, 10)
    if variant == "cpu_20way":  # 20-way 1-shot with the :cpu recipe: 4x the images per task.
      c.data.n_way = 20
      c.maml.meta_batch_size = 8
      c.train.num_steps = 4000
  elif variant == "smoke":
    c.data.n_query = 2
    c.data.num_val_chars = 20
    c.model.filters = 8
    c.maml.meta_batch_size = 8
    c.train.num_steps = 4
    c.train.log_every = 2
    c.train.eval_every = 2
    c.train.checkpoint_every = 2
    c.eval.num_tasks = 8
    c.eval.periodic_num_tasks = 8
    c.eval.chunk = 8
    c.eval.inner_steps = (1,)
  return c
