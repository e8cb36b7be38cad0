"""Merging into an evaluation dataset: 10,000 records (a merge's limit) into an empty dataset, the same again
(all unchanged), again with new expectations (all updated), a 10,000-row CSV parsed, and a search over the
records — each timed in-process (datasets.actions, no HTTP), in SQLite or PostgreSQL. Prints figures; asserts
nothing.

    .venv/bin/python bench/datasets.py --db sqlite
    .venv/bin/python bench/datasets.py --db postgres [--postgres-url postgres://postgres@127.0.0.1:5432/evalapp_bench_datasets]

PostgreSQL uses a scratch database (dropped and re-created); SQLite a temp file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import setup_database  # noqa: E402


def timed(label: str, action):
    started = time.perf_counter()
    result = action()
    print(f"{label:<58} {time.perf_counter() - started:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default="postgres://postgres@127.0.0.1:5432/evalapp_bench_datasets")
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    setup_database(args, "datasets")

    from datasets.actions import create_dataset, merge_records
    from datasets.models import search_records
    from datasets.records import parse_records
    from datasets.uploads import parse_upload
    from traces.actions import create_experiment

    dataset = create_dataset(create_experiment("bench"), "bench")
    rows = [
        {
            "inputs": {"messages": [{"role": "user", "content": f"Where is order {n}? It was due on day {n % 28 + 1}."}]},
            "expectations": {"expected_facts": [f"order {n}", "ships in 2 days"], "expected_response": f"Order {n} ships in 2 days."},
            "tags": {"split": "test" if n % 5 == 0 else "train"},
        }
        for n in range(args.records)
    ]
    print(f"{args.records:,} records, {args.db}")
    records = timed("validate (parse_records)", lambda: parse_records(rows))
    first = timed("merge into an empty dataset", lambda: merge_records(dataset, records))
    again = timed("merge the same records again (all unchanged)", lambda: merge_records(dataset, records))
    for row in rows:
        row["expectations"] = {"guidelines": "Be brief."}
    changed = timed("merge new expectations (all updated)", lambda: merge_records(dataset, parse_records(rows)))
    assert (first.created, again.unchanged, changed.updated) == (args.records, args.records, args.records)
    csv = "inputs.question,expectations.expected_response,tags.split\n" + "".join(
        f"Question {n}?,Answer {n}.,test\n" for n in range(args.records)
    )
    timed(f"parse a {len(csv) / 1024:,.0f} KiB CSV upload", lambda: parse_upload(csv.encode(), "csv"))
    timed("search the records (a word in 1 record)", lambda: list(search_records(dataset, "order 4321?")[:25]))


if __name__ == "__main__":
    main()
