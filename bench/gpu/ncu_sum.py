"""Sums an `ncu --csv --metrics gpu__time_duration.sum` log by kernel name (run_kernels.sh profile).

  python3 bench/gpu/ncu_sum.py ncu.csv   -> per kernel: launches, total us, mean us; and the total
"""
import csv
import re
import sys
from collections import defaultdict

rows = []
with open(sys.argv[1], newline="") as f:
    lines = [l for l in f if l.startswith('"')]  # the app's own output is interleaved
for r in csv.DictReader(lines):
    if r.get("Metric Name") != "gpu__time_duration.sum":
        continue
    unit = r.get("Metric Unit", "ns")
    v = float(r["Metric Value"].replace(",", ""))
    us = v / 1e3 if unit == "nsecond" or unit == "ns" else v if unit in ("usecond", "us") else v * 1e3
    name = re.sub(r"\(.*", "", r["Kernel Name"]).replace("void ", "")
    name = re.sub(r"fgcu::(\(anonymous namespace\)::)?", "", name)
    rows.append((name, us, r.get("Grid Size", ""), r.get("Block Size", "")))
by = defaultdict(lambda: [0, 0.0, ""])
for name, us, grid, block in rows:
    key = f"{name} {grid}x{block}"
    by[key][0] += 1
    by[key][1] += us
total = sum(us for _, us, _, _ in rows)
print(f"{len(rows)} launches, {total:.1f} us in all")
for key, (n, us, _) in sorted(by.items(), key=lambda kv: -kv[1][1]):
    print(f"{us:10.1f} us {n:5d} x {us / n:8.2f} us  {key[:150]}")
