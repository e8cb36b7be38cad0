"""How ingest and judging grow with processes on PostgreSQL + Redis (issue 15, the README's "Scaling out").

Runs the two existing benchmarks once per process count and prints one table:

- ingest: `bench/ingest.py --db postgres` (5,000 traces × 5 spans, batches of 100) with N gunicorn workers, N client
  connections and EVALAPP_INGEST_WRITERS=N (the admission limit, which defaults to the number of cores);
- judging: `bench/scoring.py --db postgres --only b` (a backlog of 2,000 traces) with N qcluster worker processes,
  the stand-in at 500 ms a call and an endpoint allowed 128 calls at once (a 256/s bound, so the endpoint is not
  what stops the workers).

    .venv/bin/python bench/scale_out.py                 # 1, 2, 4 processes
    .venv/bin/python bench/scale_out.py --counts 1,2,4,8

Every process here shares one machine (see `nproc`): past the number of cores, more processes only share them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def ingest_rate(count: int) -> str:
    env = dict(os.environ, EVALAPP_INGEST_WRITERS=str(count))
    out = run([sys.executable, "bench/ingest.py", "--db", "postgres", "--traces", "5000", "--batch", "100",
               "--web-workers", str(count), "--concurrency", str(max(count, 2))], env)
    rates = re.findall(r"^\s*(\w[\w /]*?):\s+([\d,]+) traces/s", out, re.MULTILINE)
    if not rates:
        raise SystemExit(f"no figure in bench/ingest.py's output:\n{out}")
    return ", ".join(f"{label} {rate}" for label, rate in rates)


def judging_rate(count: int) -> str:
    out = run([sys.executable, "bench/scoring.py", "--db", "postgres", "--only", "b", "--workers", str(count), "--concurrency", "128"], dict(os.environ))
    found = re.search(r"= ([\d.]+) judgements/s", out)
    if not found:
        raise SystemExit(f"no figure in bench/scoring.py's output:\n{out}")
    return f"{found.group(1)} judgements/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,2,4", help="process counts to try")
    args = parser.parse_args()
    counts = [int(part) for part in args.counts.split(",")]
    print(f"{os.cpu_count()} cores; PostgreSQL + Redis", flush=True)
    print("| processes | ingest (gunicorn workers = client connections = ingest writers) | judging (qcluster workers) | load (1 min) |")
    print("|---|---|---|---|")
    for count in counts:
        ingest = ingest_rate(count)
        judging = judging_rate(count)
        print(f"| {count} | {ingest} | {judging} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
