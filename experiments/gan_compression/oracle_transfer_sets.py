"""Diagnosis on VALIDATION rows: how much of the teacher gap extra REAL rows would close.

Usage (numbers in experiments/gan_compression.md, "Diagnosis"):
  PYTHONPATH=. METANAS_DATA_DIR=../shared/data python \
      experiments/gan_compression/oracle_transfer_sets.py adult 0,1 real,gmm,munge,gan

Per seed: first 2000 rows of the shuffled training split = training rows, next 4000 = validation
rows, next 18000 = "real" extra rows (the ideal generator: 9x fresh draws from the data
distribution). 500-tree RF teacher; train+X transfer sets labelled by the teacher; 1- and 5-tree RF
students; prints validation AUCs and the fraction of the 1-tree gap closed. "gan" is the ORIGINAL
AC-GAN (no quantile codec, soft Gumbel blocks, aux weight 1, 2000 steps at 5e-4).
"""
import sys, time, numpy as np
from sklearn import metrics, ensemble
from metanas.compression import tabular, students, augment, gan as gan_lib
name = sys.argv[1]; seeds = [int(s) for s in sys.argv[2].split(",")]
which = sys.argv[3].split(",")
auc = lambda y, s: metrics.roc_auc_score(y, s)
for seed in seeds:
  d = tabular.load(name, None, None, 4000, seed=seed)
  x_all, y_all = d.x_train, d.y_train
  xtr, ytr = x_all[:2000], y_all[:2000]
  xval, yval = x_all[2000:6000], y_all[2000:6000]
  xextra = x_all[6000:24000]
  t = students.rf_teacher(xtr, ytr, 500, seed)
  res = {"teacher": auc(yval, t.predict_proba(xval)[:, 1])}
  sets = {"train": xtr}
  if "real" in which: sets["train+real"] = np.concatenate([xtr, xextra])
  if "gmm" in which: sets["train+gmm"] = np.concatenate([xtr, augment.class_gmm(xtr, ytr, d.spec, 18000, 10, seed)[0]])
  if "munge" in which: sets["train+munge"] = np.concatenate([xtr, augment.munge(xtr, d.spec, 9, 0.5, 5.0, seed)])
  if "gan" in which:
    t0 = time.time()
    g = gan_lib.tabular_gan(d.spec, 2, 32, (128, 128), tau=0.5, learning_rate=5e-4)
    st = gan_lib.train(g, xtr, ytr, 2000, 128, seed)
    lab = np.random.default_rng(seed).choice(ytr, size=18000)
    sets["train+gan"] = np.concatenate([xtr, gan_lib.sample(g, st.g_params, lab, seed + 1)])
    print("gan time", time.time() - t0, flush=True)
  for k, x in sets.items():
    q = t.predict_proba(x)[:, 1]
    r = students.rf_student_scores(x, q, xval, (1, 5), seed)
    res[k] = {f"rf{j}": round(auc(yval, s), 4) for j, s in r.items()}
  tr = res["train"]["rf1"]
  print(name, seed, {k: v for k, v in res.items()}, {k: round((v["rf1"] - tr) / (res["teacher"] - tr), 2) for k, v in res.items() if k != "teacher"}, flush=True)
