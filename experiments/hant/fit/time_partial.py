import json, os, sys
sys.path.insert(0, "/work/main")
from metanas import config_lib
from metanas.hant import experiment, latency_tables
cfg = config_lib.load_config("/work/main/configs/hant_fashion_mnist.py:cpu")
cfg.model.widths = (16, 32, 64)
arch = experiment.make_arch(cfg.model)
W = "/work/runs/hant_fit"
sweep = json.load(open(os.path.join(W, "sweep_partial.json")))
rows = [r for r in sweep if r["device"] == "cpu_1t_b1" and "ops" in r]
nets = {"teacher": tuple(arch.teacher_ops)}
nets.update({"|".join(r["ops"]): tuple(r["ops"]) for r in rows})
m = latency_tables.measure_networks(arch, nets, "cpu_1t_b1", repeats=20)
for r in rows:
  r["measured_ms"] = m["|".join(r["ops"])]
  r["speedup"] = m["teacher"] / r["measured_ms"]
json.dump({"teacher_ms": m["teacher"], "rows": rows}, open(os.path.join(W, "timed_1t.json"), "w"), indent=1)
print("teacher", m["teacher"])
for r in rows:
  print(f"| {100*r['frac']:.0f}% | {r['method']} | {' '.join(r['ops'])} | {r['predicted_ms']:.3f} | {r['measured_ms']:.3f} | {r['speedup']:.2f}x | {100*r['acc_before']:.2f} | {100*r['test_acc']:.2f} | {100*(0.9221-r['test_acc']):.2f} |")
