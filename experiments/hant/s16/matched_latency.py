"""Greedy / random / width points against an IP method's accuracy-latency curve at their own
measured latency (part D of RULE.md; information only, no rule was fixed for it).

Usage: python matched_latency.py WORKDIR DEVICE [METHOD]   (reads WORKDIR/sweep_rounds.json)
The curve: the METHOD students' (measured ms, test acc) points, accuracy replaced by its running
maximum over increasing latency (upper envelope), linear in between; points faster than every
student are skipped, points slower than every student compare with the best student.
"""
import json
import sys

import numpy as np


def margins(rows, method):
  pts = sorted((r["measured_ms"], r["test_acc"]) for r in rows if r["method"] == method)
  ms = np.array([p[0] for p in pts])
  acc = np.maximum.accumulate(np.array([p[1] for p in pts]))
  out = []
  for r in rows:
    if r["method"] not in ("greedy", "random", "width"):
      continue
    x = r["measured_ms"]
    if x < ms.min():
      continue
    ref = acc.max() if x > ms.max() else float(np.interp(x, ms, acc))
    out.append((100 * (r["test_acc"] - ref), r["method"], r.get("frac", r.get("width_mult")), x))
  return sorted(out, reverse=True)


def main(workdir, device, method="ip"):
  with open(f"{workdir}/sweep_rounds.json") as f:
    rows = [r for r in json.load(f) if r["device"] == device and "test_acc" in r]
  for d, m, what, x in margins(rows, method):
    print(f"{m:7s} {what}: {x:.3f} ms, {d:+.2f} pts vs the {method} curve")


if __name__ == "__main__":
  main(*sys.argv[1:])
