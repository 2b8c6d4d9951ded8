r"""HANT (arXiv 2107.10624): accelerate a trained Fashion-MNIST CNN by swapping its layers' ops.

Commands:
  # CPU variant (a 9-conv-layer teacher, 8 swappable layers x 13-14 candidates, two measured CPU
  # settings, 6 budgets from 20% to 100%; short schedules sized for a heavily shared 2-core CPU;
  # see experiments/hant.md for the measured runtime):
  METANAS_DATA_DIR=../shared/data python -m metanas.main \
      --config configs/hant_fashion_mnist.py:cpu --workdir /tmp/hant_cpu
  # 21 candidates per layer and ~5x longer schedules (an idle CPU, ~1 h):
  ... --config configs/hant_fashion_mnist.py:full --workdir /tmp/hant_full
  # A wider teacher and the full candidate pool with longer schedules (accelerator):
  ... --config configs/hant_fashion_mnist.py:paper --workdir /tmp/hant_paper
Variants: `:smoke`, `:cpu`, `:full`, `:paper` (every one of the 55 registered ops).
The trained teacher (`teacher.pkl`) and the distilled, scored candidates (`candidates.pkl`) are
cached in the workdir with a fingerprint of the config entries they depend on, so a rerun with
other budgets, methods or devices skips both (and a changed teacher / distillation config
recomputes them).
Data: $METANAS_DATA_DIR/fashion_mnist.npz (or --config.data.source=tfds).

Paper (ImageNet, EfficientNet-B0..B4): 3.6x speed-up at < 0.4% top-1 loss. Our measured numbers
(Fashion-MNIST, this CPU) are in experiments/hant.md.
"""

from ml_collections import config_dict

from metanas import config_lib

# The :cpu candidate pool: 14 ops covering the registry's families (metanas/hant/ops.py).
CPU_CANDIDATES = ("conv_k3", "conv_k1", "conv_k5", "dws_k3_d1", "dws_k5_d1", "ir_e1_k3",
                  "ir_e3_k3", "bn_r2_k3", "bn_r4_k3", "gc_g2_k3", "gc_g4_k3", "lr_r2_k3",
                  "pool_max_k3", "skip")
# The :full pool adds 7 more (21); :paper uses the whole registry (55).
FULL_CANDIDATES = CPU_CANDIDATES + ("conv_k3_d2", "fac_k3", "dw_k3", "ir_e6_k3", "ir_e3_k5",
                                    "bndw_r2_k3", "dws_k3_d2")


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "full", "paper"))
  c = config_dict.ConfigDict()
  c.method = "hant"
  c.seed = 0
  c.data_dir = config_dict.placeholder(str)
  c.data = dict(name="fashion_mnist", source="npz", num_val=2000, num_train=0, num_test=1000,
                seed=0, tfds_test_split="test")
  c.model = dict(name="cnn", widths=(8, 16, 32), depths=(3, 3, 3), image_hw=28, image_c=1,
                 num_classes=10, width_mult=1.0)
  c.teacher = dict(steps=500, batch_size=64, learning_rate=3e-3)
  c.candidates = CPU_CANDIDATES  # Empty tuple = the whole registry.
  # 50 distillation / 40 fine-tuning steps leave every swapped student near chance; 400 / 500 give
  # usable candidates (experiments/hant.md: ~11 min per CPU setting on a 2-core CPU).
  c.distill = dict(num_images=1024, num_val=1000, steps=400, batch_size=32, learning_rate=3e-3)
  c.finetune = dict(steps=500, batch_size=32, learning_rate=1e-3, alpha=0.7, temperature=2.0)
  c.devices = ("cpu_1t_b1", "cpu_all_b25")
  c.budget_fracs = (0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
  # Also "ip_fit", "greedy_fit", "random_fit" (the same selections on scores fitted to briefly
  # fine-tuned random students, metanas/hant/fit_scores.py) and "best_sample" (the best of those).
  # A suffix "_rf" ("ip_rf", "random_rf") adds a receptive-field floor (an extension:
  # experiments/hant/rf/RULE.md): rf_floor input pixels, 0 = min(image size, the teacher's field).
  c.methods = ("ip", "greedy", "random")
  c.rf_floor = 0
  # Fitted scores: num_samples random feasible students (budgets uniform in budget_range of the
  # teacher's predicted latency, devices in turn), each fine-tuned `steps` steps.
  c.fit = dict(num_samples=64, steps=300, batch_size=64, budget_range=(0.3, 0.9))
  c.width_mults = (0.5,)
  # Also distil each width-scaled network from the teacher with the students' fine-tuning recipe
  # (row "width_kd": uniform scaling given the students' extra training budget).
  c.width_kd = False
  c.latency = dict(repeats=10, num_random_nets=6)
  c.solver_time_limit_s = 10.0
  c.solver_benchmark = dict(num_layers=50, num_candidates=197, num_instances=1,
                            budget_fracs=(0.2, 0.5, 0.8), time_limit_s=10.0)
  if variant == "full":
    c.candidates = FULL_CANDIDATES
    c.data.num_test = 0
    c.teacher = dict(steps=2500, batch_size=128, learning_rate=3e-3)
    c.distill = dict(num_images=4096, num_val=2000, steps=400, batch_size=64, learning_rate=3e-3)
    c.finetune = dict(steps=500, batch_size=128, learning_rate=1e-3, alpha=0.7, temperature=2.0)
    c.width_mults = (0.25, 0.5, 0.75)
    c.latency = dict(repeats=20, num_random_nets=12)
    c.solver_benchmark.num_instances = 3
  elif variant == "paper":
    c.candidates = ()
    c.model.widths = (32, 64, 128)
    c.teacher = dict(steps=20_000, batch_size=128, learning_rate=2e-3)
    c.distill = dict(num_images=20_000, num_val=2000, steps=3000, batch_size=128,
                     learning_rate=2e-3)
    c.finetune.steps = 5000
    c.budget_fracs = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    c.width_mults = (0.25, 0.5, 0.75)
  elif variant == "smoke":
    c.data.num_val = 200
    c.data.num_train = 1000
    c.data.num_test = 200
    c.model.widths = (4, 8, 8)
    c.model.depths = (2, 2, 1)
    c.teacher = dict(steps=5, batch_size=32, learning_rate=3e-3)
    c.candidates = ("conv_k3", "conv_k1", "dws_k3_d1", "skip")
    c.distill = dict(num_images=128, num_val=100, steps=3, batch_size=16, learning_rate=3e-3)
    c.finetune.steps = 2
    c.finetune.batch_size = 16
    c.devices = ("cpu_all_b25",)
    c.budget_fracs = (0.6,)
    c.methods = ("ip", "greedy", "random", "ip_fit", "best_sample")
    c.fit = dict(num_samples=4, steps=2, batch_size=16, budget_range=(0.3, 0.9))
    c.width_mults = ()
    c.latency = dict(repeats=2, num_random_nets=1)
    c.solver_benchmark = dict(num_layers=5, num_candidates=10, num_instances=1,
                              budget_fracs=(0.5,), time_limit_s=5.0)
  return c
