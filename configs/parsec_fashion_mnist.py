r"""PARSEC (arXiv 1902.05116) on Fashion-MNIST: search, retrain comparison, DARTS, transfer, memory.

Commands (METANAS_DATA_DIR=../shared/data):
  # Search + DARTS baseline + retrain comparison (+ transfer to MNIST), small CPU scale:
  python -m metanas.main --config configs/parsec_fashion_mnist.py:cpu --workdir /tmp/parsec_cpu
  # Memory/step-time sweep PARSEC vs DARTS over 3/5/7/11 candidate ops:
  python -m metanas.main --config configs/parsec_fashion_mnist.py:memory --workdir /tmp/parsec_mem
  # Paper-like sizes (4 nodes, 8 cells, 16 channels, K = 16, 28x28; for an accelerator):
  python -m metanas.main --config configs/parsec_fashion_mnist.py:paper --workdir /tmp/parsec_paper
Switches: --config.darts.enabled=False (skip the DARTS baseline), --config.transfer.enabled=False,
--config.transfer.name=mnist (transfer target), --config.search.cost_weight=0.01 (expected-MFLOPs
penalty on pi), --config.memory.enabled=True (add the sweep to any run).
Variants: `:smoke` (seconds), `:cpu`, `:cpu_long` (`:cpu` with 2000 warm-up steps, 150 search
steps and 1500-step retrains; ~25 min per search seed on an idle core), `:memory`, `:paper`.

`:cpu` is small because the shared 2-core CPU gives each job a fraction of a core (14x14 images,
2 cells x 2 nodes, 8 channels, batch 32). Search: 400 warm-up steps that train only the shared
weights with one child per step drawn from the fixed uniform prior (search.warmup_net="child";
the same warm-up for DARTS, so both searches start from the same weights; "own" = DARTS warms up
its mixed network), then 50 alternating steps with K = 16 samples (the paper's K); DARTS gets the
same steps. Retraining: 300 Adam steps of batch 64 (1.9 epochs of the 10k search-train images),
PARSEC's and DARTS's architectures with 3 seeds, 10 random architectures, tested on the 10k test
images. The parts can run as parallel processes and be merged (experiments/parsec.md,
experiments/parsec_tables.py): --config.parsec.enabled=False, --config.darts.enabled=False,
--config.retrain.num_random=0, --config.retrain.random_shard=(i,n),
--config.retrain.seed_shard=(i,n). Runtime: on the shared 2-core CPU (a few % of a core per
process) the 7-process split took ~70 min; idle-machine time not measured. Measured numbers:
experiments/parsec.md.
"""

from ml_collections import config_dict

from metanas import config_lib
from metanas import train

PAPER_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
             "avg_pool_3x3", "skip_connect")


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "cpu_long", "memory", "paper"))
  c = config_dict.ConfigDict()
  c.method = "parsec"
  c.data_dir = config_dict.placeholder(str)
  c.data = dict(name="fashion_mnist", source="npz", downsample=2, num_train=10_000,
                num_val=5_000, num_test=2_000, split_seed=0)
  c.model = dict(num_nodes=2, ops=PAPER_OPS, channels=8, num_cells=2, reduce_before=(1,))
  c.search = dict(enabled=True, num_samples=4, batch_size=32, w_lr=3e-3, pi_lr=0.05,
                  grad_clip=5.0, cost_weight=0.0, warmup_steps=0,
                  warmup_net="child")
  c.train = train.default_train_config()
  c.train.num_steps = 80
  c.train.log_every = 10
  c.train.eval_every = 80
  c.train.checkpoint_every = 80
  c.train.num_devices = 1
  c.parsec = dict(enabled=True)
  c.darts = dict(enabled=True)
  c.retrain = dict(enabled=True, compare=True, num_steps=80, batch_size=32, learning_rate=3e-3,
                   num_train=10_000, eval_batch=500, num_seeds=2, num_random=6, random_seed=1,
                   random_shard=(0, 1), seed_shard=(0, 1))
  c.transfer = dict(enabled=True, name="mnist", num_steps=20)
  c.memory = dict(enabled=False, op_counts=(3, 5, 7, 11), channels=8, num_cells=1, image_size=14,
                  in_channels=1, batch_size=32, repeats=3)
  if variant in ("cpu", "cpu_long"):
    c.data.num_test = 10_000
    c.search.num_samples = 16
    c.search.warmup_steps = 400
    c.train.num_steps = 50
    c.train.eval_every = 50
    c.train.checkpoint_every = 50
    c.retrain.num_steps = 300
    c.retrain.batch_size = 64
    c.retrain.num_seeds = 3
    c.retrain.num_random = 10
  if variant == "cpu_long":  # experiments/parsec/long/RULE.md: 5x warm-up, 5x retrain, 150 steps.
    c.search.warmup_steps = 2000
    c.train.num_steps = 150
    c.retrain.num_steps = 1500
    c.transfer.num_steps = 50
  if variant == "memory":
    c.memory.enabled = True
    c.search.enabled = False
  elif variant == "paper":
    c.data.downsample = 1
    c.data.num_train = 25_000
    c.data.num_val = 25_000
    c.data.num_test = 10_000
    c.model.num_nodes = 4
    c.model.channels = 16
    c.model.num_cells = 8
    c.model.reduce_before = (2, 5)
    c.search.num_samples = 16
    c.search.warmup_steps = 2_000
    c.retrain.num_seeds = 3
    c.retrain.num_random = 10
    c.train.num_steps = 20_000
    c.train.log_every = 100
    c.train.eval_every = 2_000
    c.train.checkpoint_every = 1_000
    c.retrain.num_steps = 20_000
    c.retrain.num_train = 50_000
    c.transfer.num_steps = 5_000
    c.memory.op_counts = (3, 5, 7, 11)
    c.memory.channels = 16
    c.memory.num_cells = 8
    c.memory.image_size = 28
    c.memory.batch_size = 64
  elif variant == "smoke":
    c.data.downsample = 4
    c.data.num_train = 256
    c.data.num_val = 128
    c.data.num_test = 64
    c.model.num_nodes = 1
    c.model.ops = PAPER_OPS[3:6]
    c.model.channels = 4
    c.model.num_cells = 1
    c.model.reduce_before = ()
    c.search.num_samples = 2
    c.search.batch_size = 16
    c.search.warmup_steps = 1
    c.train.num_steps = 2
    c.train.log_every = 1
    c.train.eval_every = 2
    c.train.checkpoint_every = 2
    c.retrain.num_steps = 2
    c.retrain.batch_size = 16
    c.retrain.num_train = 256
    c.retrain.eval_batch = 32
    c.retrain.num_seeds = 1
    c.retrain.num_random = 2
    c.transfer.num_steps = 1
    c.memory.enabled = True
    c.memory.op_counts = (2,)
    c.memory.channels = 4
    c.memory.image_size = 7
    c.memory.batch_size = 8
    c.memory.repeats = 1
  return c
