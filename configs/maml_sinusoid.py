r"""MAML sinusoid regression (Finn et al. 2017, Sec. 5.1 / Table in Fig. 2).

Command (the default `:cpu` variant, about 3 minutes on a 2-core laptop):
  python -m metanas.main --config configs/maml_sinusoid.py:cpu --workdir /tmp/maml_sinusoid
Variants: `:smoke` (seconds, tests), `:cpu` = `:paper` (70k meta-steps, as in the paper).
K-shot: `--config.data.k_shot=5` (or 20).

Expected (K=10, 600 test tasks, 1 inner step at test): MSE about 0.6-0.8; the paper reports about
0.77 (Fig. 2). Measured numbers are in experiments/README.md.
"""

from ml_collections import config_dict

from metanas import config_lib
from metanas import train


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "maml"
  c.task = "sinusoid"
  c.data_dir = config_dict.placeholder(str)
  c.data = dict(k_shot=10, num_query=10)
  c.model = dict(name="mlp", hidden=(40, 40), filters=0, downsample="", conv_impl="")
  c.maml = dict(num_inner_steps=1, inner_lr=0.01, first_order=False, learn_inner_lr=False,
                meta_batch_size=25, task_chunk=0)
  # task_chunk: 0 = all tasks of a meta-batch vmapped at once; c > 0 = c tasks at a time with
  # accumulated meta-gradients (same result; faster on CPU at large meta-batch, see
  # experiments/README.md "Speed"). Keep it a multiple of the number of devices.
  c.optim = dict(learning_rate=1e-3, grad_clip=0.0, schedule="constant")
  c.train = train.default_train_config()
  c.train.num_steps = 70_000
  c.train.log_every = 1000
  c.train.eval_every = 10_000
  c.train.checkpoint_every = 10_000
  c.eval = dict(num_tasks=600, inner_steps=(1, 10), num_query=100, chunk=200,
                periodic_num_tasks=200)
  c.distributed = dict(enabled=False, coordinator_address="auto", num_processes=1, process_id=0)
  # The problem is small enough that `:cpu` IS the paper's protocol (70k meta-steps, ~3 minutes
  # on 2 cores); `:paper` is the same run, kept for uniformity.
  if variant == "smoke":
    c.train.num_steps = 6
    c.train.log_every = 2
    c.train.eval_every = 4
    c.train.checkpoint_every = 2
    c.maml.meta_batch_size = 8
    c.eval.num_tasks = 16
    c.eval.periodic_num_tasks = 8
    c.eval.chunk = 8
  return c
