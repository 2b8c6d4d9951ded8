r"""Re-times every network of a HANT sweep on a quiet machine (teacher, every student, width-scaled
teachers), in one measurement pass per device so all share the same conditions.

Usage: python experiments/hant/remeasure.py WORKDIR [REPEATS] [WIDTHS] [min]
The network shapes are those of `configs/hant_fashion_mnist.py:cpu` (the sweep's ops name the
candidates), with the stage widths replaced by WIDTHS (e.g. 16,32,64) when the run used
`--config.model.widths`. Reads WORKDIR/sweep.json and results.json, or, for a run that was stopped
before its end, sweep_partial.json and results_partial.json; the devices are those of the sweep's
rows. Writes WORKDIR/sweep_remeasured.json (same rows with measured_ms / speedup replaced and the
first-pass values, where the run had timed them, kept as measured_ms_first / speedup_first) and
results_remeasured.json, and prints every re-timed row; `make_table.py WORKDIR remeasured` prints
the tables from them.

Each network's time is the median of REPEATS back-to-back calls (the default, as in every re-timing
up to session 10), or with `min` the fastest of REPEATS calls taken in REPEATS interleaved rounds
(one call of every network per round), which a burst of load disturbs less.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from metanas import config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import experiment  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import latency_tables  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(workdir: str, repeats: int = 20, widths: tuple[int, ...] | None = None,
         reduce: str = "median") -> None:
  timing = dict(repeats=repeats, reduce=reduce, rounds=repeats if reduce == "min" else 1)
  with open(experiment.run_file(workdir, "sweep")) as f:
    sweep = json.load(f)
  with open(experiment.run_file(workdir, "results")) as f:
    results = json.load(f)
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  config = config_lib.load_config(os.path.join(root, "configs", "hant_fashion_mnist.py") + ":cpu")
  if widths:
    config.model.widths = tuple(widths)
  arch = experiment.make_arch(config.model)
  is_width = lambda r: r["method"] in ("width", "width_kd")
  timed = [r for r in sweep if "ops" in r or is_width(r)]  # not the infeasible rows
  for dev in dict.fromkeys(r["device"] for r in timed):
    rows = [r for r in timed if r["device"] == dev]
    nets = {"teacher": tuple(arch.teacher_ops)}
    nets.update({"|".join(r["ops"]): tuple(r["ops"]) for r in rows if "ops" in r})
    measured = latency_tables.measure_networks(arch, nets, dev, **timing)
    width_ms = {}
    for w in sorted({r["width_mult"] for r in rows if is_width(r)}):
      arch_w = experiment.make_arch(config.model, w)
      width_ms[w] = latency_tables.measure_networks(arch_w, {"w": arch_w.teacher_ops}, dev,
                                                    **timing)["w"]
    t_ms = measured["teacher"]
    first = results.get(f"{dev}/teacher_measured_ms")
    print(f"{dev}: teacher {'-' if first is None else f'{first:.3f}'} -> {t_ms:.3f} ms")
    if first is not None:
      results[f"{dev}/teacher_measured_ms_first"] = first
    results[f"{dev}/teacher_measured_ms"] = t_ms
    for r in rows:
      if "measured_ms" in r:
        r["measured_ms_first"], r["speedup_first"] = r["measured_ms"], r.get("speedup")
      r["measured_ms"] = width_ms[r["width_mult"]] if is_width(r) else measured[
          "|".join(r["ops"])]
      r["speedup"] = t_ms / r["measured_ms"]
      was = r.get("speedup_first")
      print(f"  {r.get('frac', r.get('width_mult'))} {r['method']}: "
            f"{'-' if was is None else f'{was:.2f}x'} -> {r['speedup']:.2f}x")
  with open(os.path.join(workdir, "sweep_remeasured.json"), "w") as f:
    json.dump(sweep, f, indent=1)
  results["remeasure_timing"] = timing
  with open(os.path.join(workdir, "results_remeasured.json"), "w") as f:
    json.dump(results, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1], *(int(a) for a in sys.argv[2:3]),
       *(tuple(int(w) for w in a.split(",")) for a in sys.argv[3:4]), *sys.argv[4:5])
