r"""HANT on ImageNet: accelerate EfficientNet-B0..B4 (arXiv 2107.10624, Table 1), read through TFDS.

Commands (for users with ImageNet prepared for TFDS in --config.data_dir, and an accelerator):
  python -m metanas.main --config configs/hant_imagenet.py:paper --workdir /tmp/hant_b0 \
      --config.data_dir=~/tensorflow_datasets
  # B1..B4: --config.model.name=efficientnet_b4 (resolution follows the variant: 240/260/300/380)
  #   or the variants :paper_b1 ... :paper_b4.
Variants: `:smoke`, `:cpu`, `:paper`, `:paper_b1`..`:paper_b4`.

`:paper` describes the real setting: EfficientNet-B0 (MBConv layers, no squeeze-excite, trained
here from scratch as the teacher; the paper starts from pretrained weights) on imagenet2012 at
224x224, the full candidate registry (55 ops per layer), two measured CPU settings, budgets 20-100%.
It is tested only with `tfds.testing.mock_data` (tests/test_hant_imagenet.py); it has never been run.

`:smoke` and `:cpu` cannot use ImageNet on this machine (no data, 2 CPU cores), so they are tiny
STAND-INS: the first 2 (smoke) / 3 (cpu) MBConv stages of EfficientNet-B0 at width x0.25, on
Fashion-MNIST resized to 32x32 RGB from the offline .npz. They exercise the EfficientNet code path
end to end; their numbers say nothing about ImageNet.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(
      arg, ("smoke", "cpu", "paper", "paper_b1", "paper_b2", "paper_b3", "paper_b4"))
  c = config_dict.ConfigDict()
  c.method = "hant"
  c.seed = 0
  c.data_dir = config_dict.placeholder(str)
  c.data = dict(name="imagenet2012", source="tfds", num_val=10_000, num_train=0, num_test=0,
                seed=0, tfds_test_split="validation")
  c.model = dict(name="efficientnet_b0", widths=(), depths=(), image_hw=0, image_c=3,
                 num_classes=1000, width_mult=1.0, num_stages=7)
  c.teacher = dict(steps=300_000, batch_size=256, learning_rate=1e-3)
  c.candidates = ()  # The whole registry.
  c.distill = dict(num_images=50_000, num_val=10_000, steps=10_000, batch_size=128,
                   learning_rate=1e-3)
  c.finetune = dict(steps=20_000, batch_size=256, learning_rate=3e-4, alpha=0.7, temperature=2.0)
  c.devices = ("cpu_1t_b1", "cpu_all_b25")
  c.budget_fracs = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
  c.methods = ("ip", "greedy", "random")  # "ip_rf" / "random_rf": see hant_fashion_mnist.py.
  c.rf_floor = 0
  c.width_mults = (0.5, 0.75)
  c.latency = dict(repeats=20, num_random_nets=20)
  c.solver_time_limit_s = 10.0
  c.solver_benchmark = dict(num_layers=50, num_candidates=197, num_instances=3,
                            budget_fracs=(0.2, 0.5, 0.8), time_limit_s=10.0)
  if variant.startswith("paper_"):
    c.model.name = "efficientnet_" + variant.split("_")[1]
  elif variant in ("smoke", "cpu"):
    c.data = dict(name="fashion_mnist", source="npz", num_val=500, num_train=5000, num_test=1000,
                  seed=0, tfds_test_split="test")
    c.model.num_classes = 10
    c.model.image_hw = 32
    c.model.width_mult = 0.25
    c.model.num_stages = 3
    c.teacher = dict(steps=600, batch_size=64, learning_rate=3e-3)
    c.candidates = ("ir_e1_k3", "ir_e6_k3", "ir_e6_k5", "ir_e3_k3", "dws_k3_d1", "conv_k1",
                    "conv_k3", "skip")
    c.distill = dict(num_images=1024, num_val=500, steps=100, batch_size=32, learning_rate=3e-3)
    c.finetune = dict(steps=100, batch_size=64, learning_rate=1e-3, alpha=0.7, temperature=2.0)
    c.budget_fracs = (0.3, 0.5, 0.7, 1.0)
    c.width_mults = (0.5,)
    c.latency = dict(repeats=10, num_random_nets=4)
    c.solver_benchmark.num_instances = 1
  if variant == "smoke":
    c.data.num_train = 300
    c.data.num_val = 64
    c.data.num_test = 64
    c.model.num_stages = 2
    c.teacher = dict(steps=3, batch_size=16, learning_rate=3e-3)
    c.candidates = ("ir_e1_k3", "ir_e6_k3", "conv_k1")
    c.distill = dict(num_images=64, num_val=32, steps=2, batch_size=16, learning_rate=3e-3)
    c.finetune.steps = 2
    c.finetune.batch_size = 16
    c.devices = ("cpu_all_b25",)
    c.budget_fracs = (0.6,)
    c.methods = ("ip",)
    c.width_mults = ()
    c.latency = dict(repeats=2, num_random_nets=1)
    c.solver_benchmark = dict(num_layers=5, num_candidates=10, num_instances=0,
                              budget_fracs=(0.5,), time_limit_s=5.0)
  return c
