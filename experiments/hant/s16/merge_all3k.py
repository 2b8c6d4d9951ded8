"""All-threads 3000-step rows of sessions 14-16 in one workdir (part D of experiments/hant/s16/RULE.md)."""
import json, os
R = "/work/runs"
dst = f"{R}/hant_s16_all3k"
os.makedirs(dst, exist_ok=True)
rows = []
for w in ["hant_rf14_merged", "hant_rf14_all80", "hant_rf15_all42", "hant_s16_all100"]:
  for r in json.load(open(f"{R}/{w}/sweep.json")):
    if r["device"] != "cpu_all_b25" or r["method"] == "width_kd":
      continue
    r = dict(r, source=w)
    for k in ("measured_ms", "speedup", "measured_ms_first", "speedup_first"):
      r.pop(k, None)
    rows.append(r)
g42 = next(r for r in rows if r.get("frac") == 0.42 and r["method"] == "greedy")
rows.append(dict(g42, method="ip", source="hant_rf15_all42 (greedy row: the paper's IP selects the same network)"))
json.dump(rows, open(f"{dst}/sweep.json", "w"), indent=1)
json.dump(json.load(open(f"{R}/hant_rf14_merged/results.json")), open(f"{dst}/results.json", "w"), indent=1)
print(len(rows), "rows;", len({tuple(r["ops"]) for r in rows if "ops" in r}), "distinct students")
