"""GAN-setting selection for the tabular compression experiment on VALIDATION rows (never test).

Usage (numbers in experiments/gan_compression.md, "Selecting the GAN on validation rows"):
  PYTHONPATH=. METANAS_DATA_DIR=../shared/data python experiments/gan_compression/select_gan.py \
      DATASET SEEDS QUANTILE STRAIGHT_THROUGH GAN_STEPS [aux=W] [lr=LR] [tau=T] [h=H] [bs=B]
e.g. `... select_gan.py adult 0 1 1 2000 aux=0.1`.

Per seed: the whole training split is loaded, its first 2000 (shuffled) rows are the training rows,
the next 4000 training-split rows are the validation rows. A 500-tree RF teacher, the AC-GAN with the
given settings, 9x GAN rows; 1- and 5-tree RF students on train and train+GAN, teacher-labelled.
Prints validation AUCs, the fraction of the teacher gap closed by train+GAN, and the teacher's AUC
at recovering the GAN's conditioning labels (real validation rows: the teacher AUC; near 1 = the
GAN only draws prototypical, easy rows; near 0.5 = the class input is ignored).
"""
import sys, time, numpy as np
from sklearn import metrics
from metanas.compression import tabular, students, gan as gan_lib
name = sys.argv[1]; seeds = [int(s) for s in sys.argv[2].split(",")]
quant, st_, steps = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
extra = dict(a.split("=") for a in sys.argv[6:])
auc = lambda y, s: metrics.roc_auc_score(y, s)
for seed in seeds:
  d = tabular.load(name, None, None, 4000, seed=seed)
  xtr, ytr = d.x_train[:2000], d.y_train[:2000]
  xval, yval = d.x_train[2000:6000], d.y_train[2000:6000]
  t = students.rf_teacher(xtr, ytr, 500, seed)
  res = {"teacher": auc(yval, t.predict_proba(xval)[:, 1])}
  t0 = time.time()
  codec = tabular.QuantileCodec(xtr, d.spec) if quant else None
  xg = codec.encode(xtr) if quant else xtr
  g = gan_lib.tabular_gan(d.spec, 2, int(extra.get("latent", 32)), (int(extra.get("h", 128)),) * 2, tau=float(extra.get("tau", 0.5)),
                          learning_rate=float(extra.get("lr", 5e-4)), straight_through=bool(st_), aux_weight=float(extra.get("aux", 1.0)))
  st = gan_lib.train(g, xg, ytr, steps, int(extra.get("bs", 128)), seed)
  lab = np.random.default_rng(seed).choice(ytr, size=18000)
  xs = gan_lib.sample(g, st.g_params, lab, seed + 1)
  if quant: xs = codec.decode(xs)
  tg = time.time() - t0
  for k, x in {"train": xtr, "train+gan": np.concatenate([xtr, xs])}.items():
    q = t.predict_proba(x)[:, 1]
    r = students.rf_student_scores(x, q, xval, (1, 5), seed)
    res[k] = {f"rf{j}": round(auc(yval, s), 4) for j, s in r.items()}
  tr = res["train"]["rf1"]
  qs = t.predict_proba(xs)[:, 1]
  print(sys.argv[1:], seed, "gan %.0fs" % tg, res, "GAP rf1 %.2f rf5 %.2f" % ((res["train+gan"]["rf1"] - tr) / (res["teacher"] - tr), (res["train+gan"]["rf5"] - res["train"]["rf5"]) / (res["teacher"] - res["train"]["rf5"])),
        "teacherAUC on gan labels %.3f" % auc(lab, qs), flush=True)
