"""Pages while ingest saturates the web server (design note 51): the demo data on SQLite, gunicorn as `./run app`
runs it (`--web sync`: 3 sync processes, the earlier default; `--web threads`: 2 processes × 4 threads, the
default now), `--clients` connections posting batches of 100 traces to the JSON API as fast as they are answered
(the ingest slots, EVALAPP_INGEST_WRITERS = 2 on this machine, turn the rest away with 503), and meanwhile one
client reading the Traces tab and the Overview in turn. Prints page p50/p95 with and without the ingest load, and
the traces/s stored.

    .venv/bin/python bench/pages_under_ingest.py --web threads|sync [--seconds 20] [--clients 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from first_load import PYTHON, ROOT, free_port, manage, server_env, wait_until_up  # noqa: E402

WEB = {"sync": ["--workers", "3"], "threads": ["--workers", "2", "--threads", "4"]}


def batch(size: int) -> dict:
    now = datetime.now(tz=UTC).isoformat()
    return {"traces": [{
        "trace_id": uuid.uuid4().hex, "start_time": now, "end_time": now,
        "request": {"messages": [{"role": "user", "content": "Where is my order? " * 20}]},
        "response": {"content": "It ships tomorrow. " * 20},
        "spans": [{"span_id": f"s{n}", "name": "step", "start_time": now, "end_time": now} for n in range(5)],
    } for _ in range(size)]}


def read_pages(url: str, seconds: float, experiment: int) -> list[float]:
    timings = []
    with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser:
        form = browser.get("/login/").text
        csrf = form.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        browser.post("/login/", data={"csrfmiddlewaretoken": csrf, "username": "demo", "password": "demo"})
        for path in ("traces", "overview") * 3:  # warm every process up
            browser.get(f"/experiments/{experiment}/{path}")
        deadline = time.monotonic() + seconds
        pages = ("traces", "overview")
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            browser.get(f"/experiments/{experiment}/{pages[n % 2]}").raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
            n += 1
            time.sleep(0.1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--web", choices=sorted(WEB), default="threads")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evalapp-pages-ingest-") as tmp:
        env = server_env(Path(tmp))
        manage(env, "migrate", "--noinput")
        manage(env, "demo", "--if-missing")
        token = subprocess.run([PYTHON, "manage.py", "create_token", "demo", "--name", "bench"], cwd=ROOT, env=env,
                               check=True, capture_output=True, text=True).stdout.strip()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([PYTHON, "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{port}", *WEB[args.web]],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(url, server)
            experiment = httpx.get(f"{url}/api/v1/experiments", headers={"Authorization": f"Bearer {token}"}).json()["experiments"][0]["id"]
            quiet = read_pages(url, args.seconds / 2, experiment)
            stop, stored = threading.Event(), [0]

            def ingest() -> None:
                with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
                    while not stop.is_set():
                        answer = client.post(f"/api/v1/experiments/{experiment}/traces", json=batch(100))
                        if answer.status_code == 200:
                            stored[0] += 100
                        else:
                            time.sleep(0.05)

            senders = [threading.Thread(target=ingest) for _ in range(args.clients)]
            began = time.monotonic()
            for sender in senders:
                sender.start()
            busy = read_pages(url, args.seconds, experiment)
            stop.set()
            for sender in senders:
                sender.join()
            elapsed = time.monotonic() - began
        finally:
            server.terminate()
            server.wait(10)

    def summary(values: list[float]) -> str:
        ordered = sorted(values)
        return f"p50 {statistics.median(ordered):.0f} ms, p95 {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms (n = {len(ordered)})"

    print(f"web {args.web} ({' '.join(WEB[args.web])}): pages quiet {summary(quiet)}; "
          f"under ingest {summary(busy)}; ingest {stored[0] / elapsed:.0f} traces/s stored by {args.clients} clients")


if __name__ == "__main__":
    main()
