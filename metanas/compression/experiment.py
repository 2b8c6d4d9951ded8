"""`run(config, workdir)` for method "gan_compression" (Liu, Fusi & Mackey 2018, arXiv 1812.02271).

`config.task` selects the experiment:
  "tabular"            MAGIC / Adult: RF teacher, transfer sets, RF and MLP students (test AUC).
  "images"             Fashion-MNIST: CNN teacher, GAN-augmented transfer sets for a small student,
                       and the Compression Score with IS-/FID-style comparisons.
  "compression_score"  the Fashion-MNIST Compression Score part alone.
Results go to `workdir/results.json`, GAN losses to `metrics.jsonl`, figures to the workdir.
"""

import time

from ml_collections import config_dict

from metanas import metric_writer
from metanas.compression import image_experiment
from metanas.compression import tabular_experiment

TASKS = ("tabular", "images", "compression_score")


def run(config: config_dict.ConfigDict, workdir: str) -> dict:
  if config.task not in TASKS:
    raise ValueError(f"Unknown config.task {config.task!r}; choose one of {TASKS}.")
  writer = metric_writer.MetricWriter(workdir, tensorboard=False)

  def log(prefix, step, metrics):
    writer.write(step, metrics, prefix=f"{prefix}/")

  t0 = time.time()
  if config.task == "tabular":
    results = {"per_seed": {}, "summary": {}}
    for name in config.tabular.datasets:
      runs = [tabular_experiment.run_seed(name, config.tabular, config.seed + s, config.data_dir,
                                          log)
              for s in range(config.num_seeds)]
      results["per_seed"][name] = runs
      results["summary"][name] = tabular_experiment.summarise(runs)
    tabular_experiment.plot(results["summary"], f"{workdir}/tabular_auc_vs_trees.png",
                            tuple(config.tabular.student_trees))
  else:
    results, art = image_experiment.run(config, log,
                                        do_augmentation=config.task == "images",
                                        do_score=True)
    image_experiment.plot(results, art, workdir)
  results["wall_s"] = time.time() - t0
  writer.close()
  metric_writer.write_results(workdir, results)
  return results
