"""Applies the verdict rule of experiments/hant/rf/RULE.md to a HANT workdir.

Usage: python experiments/hant/rf/verdict.py WORKDIR [remeasured] [METHOD] [TOL_POINTS]
Reads sweep[_remeasured].json; METHOD (default ip_rf) is checked against `random` and `greedy` at
every feasible budget of every device (accuracy >= theirs - TOL, default 0.3 points) and against
every width-scaled teacher (not above METHOD's accuracy-latency curve by more than TOL).
"""

import json
import os
import sys

import numpy as np


def check(sweep, method="ip_rf", tol=0.3):
  """Returns ([(device, what, ok, detail)], all ok)."""
  out = []
  for dev in sorted({r["device"] for r in sweep}):
    rows = [r for r in sweep if r["device"] == dev and "test_acc" in r]
    ours = {r["frac"]: r for r in rows if r["method"] == method}
    for base in ("random", "greedy"):
      for frac, r in sorted(ours.items()):
        b = next((x for x in rows if x["method"] == base and x.get("frac") == frac), None)
        if b is None:
          continue
        d = 100 * (r["test_acc"] - b["test_acc"])
        out.append((dev, f"{100 * frac:.0f}% vs {base}", d >= -tol,
                    f"{100 * r['test_acc']:.2f} vs {100 * b['test_acc']:.2f} ({d:+.2f} pts; "
                    f"{r['measured_ms']:.3f} vs {b['measured_ms']:.3f} ms)"))
    pts = sorted((r["measured_ms"], r["test_acc"]) for r in ours.values())
    if not pts:
      continue  # No student of `method` on this device: no curve to compare width points with.
    ms, acc = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    for w in (r for r in rows if r["method"] in ("width", "width_kd")):
      if w["measured_ms"] > ms.max():
        ok, ref = True, None  # Slower than every student: cannot lie above the curve.
      else:
        ref = acc[0] if w["measured_ms"] < ms.min() else float(np.interp(w["measured_ms"], ms, acc))
        ok = 100 * (w["test_acc"] - ref) <= tol
      kd = " + KD" if w["method"] == "width_kd" else ""
      out.append((dev, f"width x{w['width_mult']}{kd}", ok,
                  f"{100 * w['test_acc']:.2f} at {w['measured_ms']:.3f} ms vs curve "
                  f"{'-' if ref is None else f'{100 * ref:.2f}'}"))
  return out, all(o[2] for o in out)


def main(workdir, variant="", method="ip_rf", tol="0.3"):
  suffix = f"_{variant}" if variant else ""
  with open(os.path.join(workdir, f"sweep{suffix}.json")) as f:
    sweep = json.load(f)
  rows, ok = check(sweep, method, float(tol))
  print(f"| device | check ({method}) | ok | detail |\n|---|---|---|---|")
  for dev, what, good, detail in rows:
    print(f"| {dev} | {what} | {'yes' if good else '**no**'} | {detail} |")
  print(f"\nall checks pass: {ok}")


if __name__ == "__main__":
  main(*sys.argv[1:])
