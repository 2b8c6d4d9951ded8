"""All-threads 12000-step rows of session 16 (35%, 42%) + session 15's width x0.5 rows, one workdir."""
import json, os
R = "/work/runs"
dst = f"{R}/hant_s16_all12k"
os.makedirs(dst, exist_ok=True)
rows = []
for w in ["hant_s16_all35", "hant_s16_all42_merged"]:
  for r in json.load(open(f"{R}/{w}/sweep.json")):
    r = dict(r, source=w)
    for k in ("measured_ms", "speedup", "measured_ms_first", "speedup_first"):
      r.pop(k, None)
    rows.append(r)
json.dump(rows, open(f"{dst}/sweep.json", "w"), indent=1)
json.dump(json.load(open(f"{R}/hant_s16_all35/results.json")), open(f"{dst}/results.json", "w"), indent=1)
print(len(rows), "rows")
