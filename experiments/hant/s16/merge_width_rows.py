"""Copies a sweep and adds session 15's width x0.5 rows (device set to cpu_all_b25), timings dropped.

Usage: python merge_width_rows.py SRC_WORKDIR WIDTH_WORKDIR DST_WORKDIR (part B of RULE.md)."""
import json, os, sys
src, wsrc, dst = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(dst, exist_ok=True)
sweep = json.load(open(os.path.join(src, "sweep.json")))
for r in json.load(open(os.path.join(wsrc, "sweep.json"))):
  if r["method"] in ("width", "width_kd"):
    r = dict(r, device="cpu_all_b25")
    r.pop("measured_ms", None); r.pop("speedup", None)
    sweep.append(r)
json.dump(sweep, open(os.path.join(dst, "sweep.json"), "w"), indent=1)
json.dump(json.load(open(os.path.join(src, "results.json"))), open(os.path.join(dst, "results.json"), "w"), indent=1)
print(len(sweep), "rows")
