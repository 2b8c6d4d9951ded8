r"""Re-times every network of a HANT sweep on a quiet machine (teacher, every student, width-scaled
teachers).

Usage: python experiments/hant/remeasure.py WORKDIR [REPEATS] [WIDTHS] [min|rounds] [ROUNDS]
The network shapes are those of `configs/hant_fashion_mnist.py:cpu` (the sweep's ops name the
candidates), with the stage widths replaced by WIDTHS (e.g. 16,32,64) when the run used
`--config.model.widths`. Reads WORKDIR/sweep.json and results.json, or, for a run that was stopped
before its end, sweep_partial.json and results_partial.json; the devices are those of the sweep's
rows. Writes WORKDIR/sweep_remeasured.json (same rows with measured_ms / speedup replaced and the
first-pass values, where the run had timed them, kept as measured_ms_first / speedup_first) and
results_remeasured.json (`rounds`: sweep_rounds.json / results_rounds.json), and prints every
re-timed row; `make_table.py WORKDIR remeasured` (or `rounds`) prints the tables from them.

Modes. Default: the teacher and the students in one timing subprocess, each the median of REPEATS
back-to-back calls (as in every re-timing up to session 10); `min`: the fastest of REPEATS calls
taken in REPEATS interleaved rounds (one call of every network per round), which a burst of load
disturbs less. In both, each width-scaled network is timed in a subprocess of its own. Session 15
found that on this machine a compiled network runs, by chance per subprocess, either "fast" or
~35% "slow" (teacher 0.45 or 0.61 ms, the same network in five fresh subprocesses), so a width
network timed in another subprocess than the teacher can gain or lose ~35% of speed-up by chance,
and that interleaving many networks (`min`) slows the teacher and the students by 15-40% (cache)
but not the width network timed alone (experiments/hant.md). `rounds`: ROUNDS (default 5) fresh
subprocesses, each timing every network (width networks included) back-to-back (median of
REPEATS calls) in a rotated order; a network's time is its fastest round (the "fast" mode), and
its speed-up the teacher's fastest round over that.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from metanas import config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import experiment  # pylint: disable=g-import-not-at-top,wrong-import-position
from metanas.hant import latency_tables  # pylint: disable=g-import-not-at-top,wrong-import-position


def _rounds(nets: dict, dev: str, repeats: int, rounds: int) -> dict:
  """{key: [ms per round]}: each round one fresh timing subprocess with every network (widths
  included), each the median of `repeats` back-to-back calls, in a rotated order."""
  keys, out = list(nets), {k: [] for k in nets}
  for i in range(rounds):
    order = keys[i % len(keys):] + keys[:i % len(keys)]
    ms = latency_tables.measure_mixed({k: nets[k] for k in order}, dev, repeats=repeats)
    for k in keys:
      out[k].append(ms[k])
  return out


def _measure(arch, config, rows, dev, timing) -> tuple[dict, dict, dict | None]:
  """(ms, speed-up, ms per round or None) per network key ("teacher", "|".join(ops), "width<w>")
  of one device."""
  nets = {"teacher": tuple(arch.teacher_ops)}
  nets.update({"|".join(r["ops"]): tuple(r["ops"]) for r in rows if "ops" in r})
  widths = {}
  for w in sorted({r["width_mult"] for r in rows if _is_width(r)}):
    arch_w = experiment.make_arch(config.model, w)
    widths[f"width{w}"] = (arch_w, tuple(arch_w.teacher_ops))
  if timing["reduce"] == "rounds":
    per_round = _rounds({**{k: (arch, v) for k, v in nets.items()}, **widths}, dev,
                        timing["repeats"], timing["rounds"])
    ms = {k: float(np.min(v)) for k, v in per_round.items()}
    return ms, {k: ms["teacher"] / v for k, v in ms.items()}, per_round
  # One subprocess for the teacher and the students, one per width-scaled network (as up to
  # session 14: the width networks are then timed alone, the others interleaved).
  kw = dict(repeats=timing["repeats"], reduce=timing["reduce"], rounds=timing["rounds"])
  ms = latency_tables.measure_networks(arch, nets, dev, **kw)
  for k, (arch_w, ops) in widths.items():
    ms[k] = latency_tables.measure_networks(arch_w, {k: ops}, dev, **kw)[k]
  return ms, {k: ms["teacher"] / v for k, v in ms.items()}, None


def _is_width(r) -> bool:
  return r["method"] in ("width", "width_kd")


def main(workdir: str, repeats: int = 20, widths: tuple[int, ...] | None = None,
         reduce: str = "median", rounds: int = 5) -> None:
  rounds = rounds if reduce == "rounds" else repeats if reduce == "min" else 1
  timing = dict(repeats=repeats, reduce=reduce, rounds=rounds)
  with open(experiment.run_file(workdir, "sweep")) as f:
    sweep = json.load(f)
  with open(experiment.run_file(workdir, "results")) as f:
    results = json.load(f)
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  config = config_lib.load_config(os.path.join(root, "configs", "hant_fashion_mnist.py") + ":cpu")
  if widths:
    config.model.widths = tuple(widths)
  arch = experiment.make_arch(config.model)
  timed = [r for r in sweep if "ops" in r or _is_width(r)]  # not the infeasible rows
  for dev in dict.fromkeys(r["device"] for r in timed):
    rows = [r for r in timed if r["device"] == dev]
    ms, speedup, per_round = _measure(arch, config, rows, dev, timing)
    if per_round is not None:
      results[f"{dev}/ms_per_round"] = per_round
    first = results.get(f"{dev}/teacher_measured_ms")
    print(f"{dev}: teacher {'-' if first is None else f'{first:.3f}'} -> {ms['teacher']:.3f} ms")
    if first is not None:
      results[f"{dev}/teacher_measured_ms_first"] = first
    results[f"{dev}/teacher_measured_ms"] = ms["teacher"]
    for r in rows:
      if "measured_ms" in r:
        r["measured_ms_first"], r["speedup_first"] = r["measured_ms"], r.get("speedup")
      key = f"width{r['width_mult']}" if _is_width(r) else "|".join(r["ops"])
      r["measured_ms"], r["speedup"] = ms[key], speedup[key]
      was = r.get("speedup_first")
      print(f"  {r.get('frac', r.get('width_mult'))} {r['method']}: "
            f"{'-' if was is None else f'{was:.2f}x'} -> {r['speedup']:.2f}x")
  suffix = "rounds" if reduce == "rounds" else "remeasured"
  with open(os.path.join(workdir, f"sweep_{suffix}.json"), "w") as f:
    json.dump(sweep, f, indent=1)
  results["remeasure_timing"] = timing
  with open(os.path.join(workdir, f"results_{suffix}.json"), "w") as f:
    json.dump(results, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1], *(int(a) for a in sys.argv[2:3]),
       *(tuple(int(w) for w in a.split(",")) for a in sys.argv[3:4]), *sys.argv[4:5],
       *(int(a) for a in sys.argv[5:6]))
