"""Builds the merged workdirs of RULE.md parts B-D from finished HANT runs (rows copied unchanged,
timings dropped, so that one `remeasure.py ... rounds 5` pass times every network together).

Usage: python experiments/hant/s16/merge.py {b,c,d} [RUNS_DIR]   (RUNS_DIR default /work/runs)
  b: hant_s16_all42 + session 15's width x0.5 rows (device set to cpu_all_b25)
     -> hant_s16_all42_merged
  c: hant_s16_all35 + hant_s16_all42_merged                                    -> hant_s16_all12k
  d: every cpu_all_b25 3000-step row of sessions 14-16 (teacher-recipe widths) -> hant_s16_all3k,
     plus an `ip` row at 42% = greedy's row there (the paper's IP selects the same network)
"""
import json
import os
import sys

TIMINGS = ("measured_ms", "speedup", "measured_ms_first", "speedup_first")
PARTS = {  # part: (destination, [(source workdir, keep(row) -> bool)], results.json from)
    "b": ("hant_s16_all42_merged",
          [("hant_s16_all42", lambda r: True),
           ("hant_ft12k_rf15", lambda r: r["method"] in ("width", "width_kd"))], "hant_s16_all42"),
    "c": ("hant_s16_all12k", [("hant_s16_all35", lambda r: True),
                              ("hant_s16_all42_merged", lambda r: True)], "hant_s16_all35"),
    "d": ("hant_s16_all3k",
          [(w, lambda r: r["device"] == "cpu_all_b25" and r["method"] != "width_kd")
           for w in ("hant_rf14_merged", "hant_rf14_all80", "hant_rf15_all42", "hant_s16_all100")],
          "hant_rf14_merged"),
}


def merge(part: str, runs: str) -> list:
  dst, sources, results_from = PARTS[part]
  rows = []
  for w, keep in sources:
    with open(os.path.join(runs, w, "sweep.json")) as f:
      for r in json.load(f):
        if keep(r):
          r = {k: v for k, v in r.items() if k not in TIMINGS}
          rows.append(dict(r, device="cpu_all_b25", source=w))
  if part == "d":
    g42 = next(r for r in rows if r.get("frac") == 0.42 and r["method"] == "greedy")
    rows.append(dict(g42, method="ip", source=g42["source"] + " (greedy row: the same network)"))
  os.makedirs(os.path.join(runs, dst), exist_ok=True)
  with open(os.path.join(runs, dst, "sweep.json"), "w") as f:
    json.dump(rows, f, indent=1)
  with open(os.path.join(runs, results_from, "results.json")) as f, \
       open(os.path.join(runs, dst, "results.json"), "w") as g:
    json.dump(json.load(f), g, indent=1)
  return rows


if __name__ == "__main__":
  out = merge(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/work/runs")
  print(len(out), "rows")
