"""Memory of the default `./run app` setup (issue 15): runs `./run app` itself in a scratch var dir, warms it up
(pages opened, 500 traces logged through the JSON API, judged by the demo's judges on the stand-in model), then
sums RSS and PSS (which counts a page shared between processes once) from /proc/<pid>/smaps_rollup over every
process it started, grouped by role. The stand-in model is the demo's fake LLM and is reported apart.

    .venv/bin/python bench/memory.py [--settle 30] [--each] [--db sqlite|postgres]

Target: web + worker summed RSS ≤ 800 MiB.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree[parent].append(int(entry))
    return tree


def descendants(root: int) -> list[int]:
    tree, found, todo = children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def role(pid: int) -> str | None:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    if "standin_llm" in command:
        return "stand-in model (demo only)"
    if "gunicorn" in command:
        return "web (gunicorn)"
    if "qcluster" in command:
        return "worker (qcluster)"
    if "otlp_grpc" in command:
        return "OTLP/gRPC receiver"
    if "python" in command:
        return None  # ./run's own steps (migrate, demo) have ended by now; anything else is not the app
    return None


def memory(pid: int) -> tuple[int, int]:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss = int(re.search(r"^Rss:\s+(\d+) kB", text, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
    return rss, pss


def libraries(pid: int) -> str:
    """The site-packages whose compiled modules the process has mapped (what it imported that is heavy: scipy,
    numpy, grpc, psycopg, pydantic_core and tiktoken for litellm...); pure-Python packages don't show."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""
    found = set(re.findall(r"site-packages/([A-Za-z0-9_]+)[^/\n]*/\S*\.so", maps))
    return " ".join(sorted(found))


def traces(count: int) -> list[dict]:
    now = datetime.now(timezone.utc)
    made = []
    for number in range(count):
        start = now - timedelta(seconds=count - number)
        made.append({
            "trace_id": f"memory-{number}-{os.getpid()}",
            "session_id": f"memory-session-{number // 5}",
            "spans": [{
                "span_id": "root", "name": "agent", "span_type": "AGENT",
                "start_time": start.isoformat(), "end_time": (start + timedelta(milliseconds=800)).isoformat(),
                "inputs": {"messages": [{"role": "user", "content": f"Where is my order {number}?"}]},
                "outputs": {"content": f"Your order {number} ships tomorrow."},
            }],
        })
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=30, help="seconds of judging after the traces are logged")
    parser.add_argument("--each", action="store_true", help="also print every process and the compiled libraries it has loaded")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: a fresh database evalapp_memory on 127.0.0.1 and the Redis broker (db 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evalapp-memory-") as var_dir:
        port, standin, grpc = free_port(), free_port(), free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("EVALAPP_", "DJANGO_"))}
        for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
            env.pop(key, None)
        env.update(EVALAPP_VAR_DIR=var_dir, EVALAPP_PORT=str(port), EVALAPP_STANDIN_PORT=str(standin),
                   EVALAPP_OTLP_GRPC_PORT=str(grpc))
        if args.db == "postgres":
            import psycopg
            import redis

            with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as connection:
                connection.execute("DROP DATABASE IF EXISTS evalapp_memory WITH (FORCE)")
                connection.execute("CREATE DATABASE evalapp_memory")
            redis.Redis.from_url("redis://127.0.0.1:6379/8").flushdb()
            env.update(DATABASE_URL="postgres://postgres@127.0.0.1:5432/evalapp_memory", REDIS_URL="redis://127.0.0.1:6379/8")
        log = open(Path(var_dir) / "run-app.log", "w")
        app = subprocess.Popen([str(ROOT / "run"), "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if app.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"./run app did not start: see {log.name}")
                time.sleep(1)
            manage_env = dict(env, SECRET_KEY=(Path(var_dir) / "secret_key").read_text().strip())
            token = subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", "create_token", "demo", "--name", "memory"],
                                   cwd=ROOT, env=manage_env, check=True, capture_output=True, text=True).stdout.strip()
            with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
                experiment = client.get("/api/v1/experiments").json()["experiments"][0]["id"]
                for pages in range(0, 500, 100):
                    client.post(f"/api/v1/experiments/{experiment}/traces", json={"traces": traces(500)[pages:pages + 100]}).raise_for_status()
            with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser:
                form = browser.get("/login/").text
                csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
                browser.post("/login/", data={"csrfmiddlewaretoken": csrf, "username": "demo", "password": "demo"})
                for _ in range(3):  # every web worker is likely to serve some of these
                    for tab in ("overview", "traces", "sessions", "judges", "datasets", "alerts"):
                        browser.get(f"/experiments/{experiment}/{tab}").raise_for_status()
            time.sleep(args.settle)
            totals: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
            for pid in descendants(app.pid):
                name = role(pid)
                if name:
                    rss, pss = memory(pid)
                    if args.each:
                        print(f"  {pid:>7} {name:<28} RSS {rss / 1024:6.0f}   PSS {pss / 1024:6.0f} MiB   {libraries(pid)}")
                    totals[name][0] += rss
                    totals[name][1] += pss
                    totals[name][2] += 1
        finally:
            os.killpg(app.pid, 15)
            app.wait(30)
    print(f"\nMemory of `./run app` after warm-up ({'PostgreSQL + Redis' if args.db == 'postgres' else 'SQLite + ORM broker'}; MiB)")
    app_rss = app_pss = 0
    for name, (rss, pss, count) in sorted(totals.items()):
        print(f"{name:<28} {count:2d} processes   RSS {rss / 1024:7.0f}   PSS {pss / 1024:7.0f}")
        if "stand-in" not in name:
            app_rss += rss
            app_pss += pss
    print(f"{'web + worker + gRPC':<28}                RSS {app_rss / 1024:7.0f}   PSS {app_pss / 1024:7.0f}   (target RSS ≤ 800)")


if __name__ == "__main__":
    sys.exit(main())
