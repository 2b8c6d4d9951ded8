r"""GAN-augmented compression on Fashion-MNIST and the Compression Score (Liu et al. 2018, Secs. 4-5).

Command (the default `:cpu` variant; numbers and runtime in experiments/gan_compression.md):
  METANAS_DATA_DIR=../shared/data python -m metanas.main \
      --config configs/gan_compression_images.py:cpu --workdir /tmp/gan_compression_images
`--config.task=compression_score` runs the Compression Score part alone.
Variants: `:smoke` (seconds, tests), `:cpu` (CNN teacher on 10k images, small conditional DCGAN,
1000 real transfer images, 5 seeds; Compression Score on 1000 points, 10 seeds), `:paper` (teacher
on all 60k images, longer GAN training).

Runtime: `:cpu` 231 s on an idle 2-core CPU (47 min with the 1000-step GAN on a heavily shared
one); `:smoke` about 15 s of CPU.

Expected: GAN-augmented transfer beats real-only for the small student; Compression Score of real
data = 1 within its standard error; collapsed GAN and noise score lower. Measured (`:cpu`): teacher
acc 0.853; student 0.791 real-only vs 0.781 real+GAN (not better), 0.798 real+jitter, 0.794 mixup.
Compression Score: real 1.011 +- 0.020, jitter 0.991, mixup 0.979, prototypes 0.956, GAN 0.920,
collapsed GAN 0.757, noise 0.209; the CS orders jitter > mixup > GAN as the augmented students do,
IS-style reverses that order and rates the prototypes above real data. Tables:
experiments/gan_compression.md.
"""

from ml_collections import config_dict

from metanas import config_lib


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
  variant = config_lib.parse_variant(arg, ("smoke", "cpu", "paper"))
  c = config_dict.ConfigDict()
  c.method = "gan_compression"
  c.task = "images"            # Or "compression_score" (that part alone).
  c.data_dir = config_dict.placeholder(str)
  c.seed = 0
  c.num_seeds = 5
  c.images = dict(
      n_teacher=10000,         # Teacher and GAN training images; the rest is the real pool.
      n_test=10000,
      n_real=1000,             # Real images in the student's transfer set.
      multiplier=9,
      noise_sigma=0.3,         # Pixel jitter of the "real+noise" set (images live in [-1, 1]).
      mixup_alpha=0.4,
      teacher=dict(width=32, dense=128, num_steps=600, batch_size=128, learning_rate=1e-3),
      gan=dict(latent_dim=64, width=16, learning_rate=5e-4, num_steps=4000, batch_size=32,
               log_every=250),
      student=dict(hidden=(16,), num_steps=600, batch_size=128, learning_rate=2e-3),
      score_n=1000,            # Points per set for the Compression Score (one pass).
      score_batch_size=20,
      score_seeds=10,
      prototypes_per_class=5,  # The "prototypes" generator: most confident real images per class.
  )
  if variant == "paper":
    c.images.n_teacher = 55000
    c.images.teacher.num_steps = 8000
    c.images.gan = dict(latent_dim=64, width=32, learning_rate=2e-4, num_steps=20000,
                        batch_size=64, log_every=1000)
    c.images.student.num_steps = 3000
    c.images.score_n = 2000
  elif variant == "smoke":
    c.num_seeds = 2
    c.images.n_teacher, c.images.n_test, c.images.n_real = 256, 200, 64
    c.images.multiplier = 2
    c.images.teacher = dict(width=8, dense=16, num_steps=20, batch_size=32, learning_rate=1e-3)
    c.images.gan = dict(latent_dim=8, width=8, learning_rate=2e-4, num_steps=4, batch_size=16,
                        log_every=2)
    c.images.student.num_steps = 10
    c.images.student.batch_size = 32
    c.images.score_n, c.images.score_batch_size, c.images.score_seeds = 64, 16, 2
  return c
