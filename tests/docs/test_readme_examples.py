"""The README is a contract: every example in it and in docs/*.md runs, in document order, against a live server
loaded with the demo data — what `./run app` gives a new user — and any non-zero exit or 4xx/5xx answer fails.

Per document: a fresh copy of a demo database (`manage.py migrate`, then `manage.py demo --if-missing`, as
`./run app` does, made once per run) in a var dir of its own, gunicorn and one `qcluster` on it, and the stand-in
model, all on free ports; nothing reaches the Internet. The demo's own judges are switched off (see
DemoServer.switch_off_the_demo_judges). The examples run as written, except for what a reader supplies
themselves: see SUBSTITUTIONS below. How blocks are marked is in tests/docs/examples.py.

These tests always use SQLite in their own var dir, whatever DATABASE_URL/REDIS_URL say: the examples describe
the embedded setup, and each document needs a database of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from standin.server import StandinLLM
from tests.docs.examples import DOCUMENTS, ROOT, Block, problems, read_blocks

README_URL = "http://127.0.0.1:8000"  # where the examples expect `./run app`
BLOCK_TIMEOUT_SECONDS = 90

# What a reader fills in, and where the test gets it. Applied to the text of every example:
SUBSTITUTIONS = {
    README_URL: "{url}",  # the live server of this test, on a free port
}
# And in every example's environment ($TOKEN in shell, os.environ["TOKEN"] in Python):
#   TOKEN, EVALAPP_TOKEN   an API token of the demo's editor, "demo" (`manage.py create_token demo`)
#   EVALAPP_URL            the live server (the client's default base URL)
#   OPENAI_API_KEY         a dummy key: the server sends OpenAI-model calls to the stand-in (see base_env)


def test_every_code_block_is_run_or_marked_not_run_with_a_reason():
    """Fast, and without a server: a new block that the examples test can't run fails here until it is marked."""
    found = []
    for document in DOCUMENTS:
        found += problems(read_blocks(document))
    assert not found, "\n".join(found)


def test_every_check_still_finds_its_example():
    codes = {document: [block.code for block in read_blocks(document)] for document in DOCUMENTS}
    stale = [key for key in CHECKS if sum(key[1] in code for code in codes.get(key[0], [])) != 1]
    assert not stale, f"these CHECKS match no example, or more than one: {stale}"


def test_a_marker_without_a_reason_or_away_from_its_block_is_refused():
    from tests.docs.examples import DocumentError

    assert [b.kind for b in read_blocks("x.md", "```sh\necho\n```\n```python\npass\n```\n```json\n{}\n```\n")] == ["shell", "python", ""]
    assert problems(read_blocks("x.md", "```json\n{}\n```\n")) == [
        "x.md:1: a ```json block this test cannot run; make it a ```sh or ```python example, or put "
        "<!-- example: not run — <why> --> on the line above it"
    ]
    [marked] = read_blocks("x.md", "<!-- example: not run — an output sample -->\n```json\n{}\n```\n")
    assert (marked.directive, marked.reason, marked.line) == ("not run", "an output sample", 2)
    for bad in (
        "<!-- example: not run -->\n```json\n{}\n```\n",  # no reason
        "<!-- example: skip — why -->\n```json\n{}\n```\n",  # unknown directive
        "<!-- example: not run — why -->\n\n```json\n{}\n```\n",  # not right above the block
        "<!-- example: not run — why -->\ntext\n",  # above no block
        "```sh\necho\n",  # never closed
    ):
        with pytest.raises(DocumentError):
            read_blocks("x.md", bad)


# --- the live server -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(var_dir: Path, standin: StandinLLM) -> dict[str, str]:
    """The environment of every server-side process (manage.py, gunicorn, qcluster)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVALAPP_")}
    # DJANGO_ALLOW_ASYNC_UNSAFE: the browser tests' conftest sets it in this process; a server must not inherit it
    # (and `check --deploy` refuses it).
    for key in ("DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(key, None)
    env.update(
        DJANGO_SETTINGS_MODULE="evalapp.settings",  # the production settings, as `./run app` uses
        SECRET_KEY=os.environ.get("SECRET_KEY") or "evalapp-readme-examples-only-9a3c",
        EVALAPP_VAR_DIR=str(var_dir),
        EVALAPP_STANDIN_URL=standin.api_base,  # as `./run app` sets it for the demo's endpoint
        EVALAPP_ENDPOINT_ALLOWED_HOSTS="127.0.0.1",  # as `./run app` sets it: the stand-in answers on loopback
        # litellm's default for OpenAI models without an api_base: the examples' `openai/gpt-4.1-mini` endpoint is
        # answered by the stand-in, never by OpenAI.
        OPENAI_BASE_URL=standin.api_base,
        OPENAI_API_BASE=standin.api_base,
        # The shared virtualenv may hold an editable install of another checkout: import this one.
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def standin() -> Iterator[StandinLLM]:
    with StandinLLM() as server:
        yield server


@dataclass(frozen=True)
class DemoDatabase:
    path: Path
    token: str  # an API token of the demo's editor, "demo"


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory, standin) -> DemoDatabase:
    """What `./run app` makes before it starts serving — `migrate`, then `demo --if-missing` — and a token; made
    once (it takes seconds) and copied for each document."""
    var_dir = tmp_path_factory.mktemp("readme-demo")
    env = base_env(var_dir, standin)
    manage(env, "migrate", "--noinput")
    manage(env, "demo", "--if-missing")
    token = manage(env, "create_token", "demo", "--name", "readme-examples").strip()
    return DemoDatabase(var_dir / "evalapp.sqlite3", token)


@dataclass
class DemoServer:
    url: str
    token: str
    env: dict[str, str]  # for the server-side commands (manage.py) the examples run
    standin: StandinLLM
    logs: list[Path] = field(default_factory=list)

    def get(self, path: str, **params) -> httpx.Response:
        return self.request("GET", path, params=params)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Token {self.token}"}
        response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def switch_off_the_demo_judges(self) -> None:
        """Left on, the demo's seven judges would spend the test's first minute judging its 400 traces (about
        1,800 stand-in calls: what a new user's worker does while they read) and starve the examples' by-hand runs
        of endpoint slots. No example depends on them being on: judging by hand ignores the switch."""
        [demo] = [e for e in self.get("/api/v1/experiments").json()["experiments"] if e["name"] == "demo-agent"]
        for judge in self.get(f"/api/v1/experiments/{demo['id']}/judges").json()["judges"]:
            self.request("POST", f"/api/v1/experiments/{demo['id']}/judges/{judge['name']}/stop")

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text()[-3000:]}" for log in self.logs if log.exists())


def stop(process: subprocess.Popen) -> None:
    """Stop a process started in a process group of its own, and the workers it forked."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=5)
            break
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def demo_server(var_dir: Path, demo: DemoDatabase, standin: StandinLLM, *, collectstatic: bool = False) -> Iterator[DemoServer]:
    """gunicorn and a qcluster, as `./run app` starts them, on a copy of the demo database (and with the static
    files collected first, as `./run app` does, when asked: hashed, compressed, served by whitenoise)."""
    var_dir.mkdir(parents=True)
    for suffix in ("", "-wal"):  # a write-ahead log left behind holds part of the database
        if Path(f"{demo.path}{suffix}").exists():
            shutil.copy(f"{demo.path}{suffix}", var_dir / f"evalapp.sqlite3{suffix}")
    env = base_env(var_dir, standin)
    port = free_port()
    server = DemoServer(f"http://127.0.0.1:{port}", demo.token, env, standin)
    processes: list[subprocess.Popen] = []

    def start(name: str, *command: str) -> None:
        log = var_dir / f"{name}.log"
        server.logs.append(log)
        with open(log, "w") as output:
            processes.append(subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=output,
                                              stderr=subprocess.STDOUT, start_new_session=True))

    if collectstatic:
        manage(env, "collectstatic", "--noinput")
    try:
        start("gunicorn", "-m", "gunicorn", "evalapp.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
              "--log-level", "warning")
        deadline = time.monotonic() + 60
        while True:
            try:
                server.get("/api/v1/experiments")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not come up\n{server.log_tails()}") from None
                time.sleep(0.2)
        server.switch_off_the_demo_judges()
        start("qcluster", "manage.py", "qcluster")
        yield server
    finally:
        for process in processes:
            stop(process)


# --- running the examples ------------------------------------------------------------------------------------


def substituted(code: str, server: DemoServer) -> str:
    for text, replacement in SUBSTITUTIONS.items():
        code = code.replace(text, replacement.format(url=server.url))
    return code


def example_env(server: DemoServer) -> dict[str, str]:
    env = dict(server.env)
    env.update(TOKEN=server.token, EVALAPP_TOKEN=server.token, EVALAPP_URL=server.url, OPENAI_API_KEY="sk-not-a-real-key")
    # MLflow's client (the README's MLflow example) would otherwise send usage telemetry to the Internet.
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


# Shell examples run with `set -euo pipefail`, and curl fails on an HTTP status >= 400 (printing the answer).
SHELL_PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --show-error "$@"; }
"""


def run_block(block: Block, setup: list[Block], server: DemoServer, scratch: Path) -> subprocess.CompletedProcess:
    code = substituted(block.code, server)
    if block.kind == "shell":
        script = scratch / f"line{block.line}.sh"
        script.write_text(SHELL_PRELUDE + code)
        command = ["bash", str(script)]
    else:
        script = scratch / f"line{block.line}.py"
        script.write_text("".join(substituted(s.code, server) + "\n" for s in setup) + code)
        command = [sys.executable, str(script)]
    # From the checkout's root, as the README's `.venv/bin/python manage.py ...` lines expect.
    return subprocess.run(command, cwd=ROOT, env=example_env(server), capture_output=True, text=True, timeout=BLOCK_TIMEOUT_SECONDS)


# What an example's exit status can't tell. Keyed by document and a piece of the block's text, which must match
# exactly one block (test_every_check_still_finds_its_example), so these can't silently go stale.
def printed_one_token_and_nothing_else(server: DemoServer, block: Block, output: str) -> None:
    # `export TOKEN=$(...)` succeeds whatever the command in it did, even under `set -e`; a failing create_token
    # would show here as its error message.
    assert re.fullmatch(r"ea_[A-Za-z0-9_-]{20,}\n", output), output


def otlp_spans_arrived(server: DemoServer, block: Block, output: str) -> None:
    # The exporter only logs a refused export; look for the trace itself.
    [experiment] = [e for e in server.get("/api/v1/experiments").json()["experiments"] if e["name"] == "checkout-agent"]
    traces = server.get(f"/api/v1/experiments/{experiment['id']}/traces", session_id="conversation-123").json()["traces"]
    assert [(t["name"], t["status"]) for t in traces] == [("support_agent", "OK")], (
        f"the spans the example exported are not in checkout-agent's session conversation-123: {traces}\n{output}"
    )


def mlflow_trace_arrived(server: DemoServer, block: Block, output: str) -> None:
    # MLflow's client logs a failed export and carries on; look for the trace and the feedback in evalapp.
    [experiment] = [e for e in server.get("/api/v1/experiments").json()["experiments"] if e["name"] == "checkout-agent"]
    [trace] = server.get(f"/api/v1/experiments/{experiment['id']}/traces", session_id="conversation-456").json()["traces"]
    shown = (trace["name"], trace["status"], trace["user_id"], trace["metadata"].get("app_version"))
    assert shown == ("support_agent", "OK", "user-42", "2.1.0"), trace
    assert f"tr-{trace['trace_id']}" in output, output  # what mlflow.search_traces found
    feedback = server.get(f"/api/v1/experiments/{experiment['id']}/assessments", trace_id=trace["trace_id"]).json()["assessments"]
    assert [(a["name"], a["source_type"], a["value"]) for a in feedback] == [("thumbs", "HUMAN", True)], feedback


def each_run_judge_got_a_verdict(server: DemoServer, block: Block, output: str) -> None:
    # run_judge exits 0 when the judge recorded an error (its message instead of a rationale).
    verdicts = [line for line in output.splitlines() if "[stand-in model]" in line]
    assert len(verdicts) == block.code.count("manage.py run_judge"), output


def printed_a_verdict(server: DemoServer, block: Block, output: str) -> None:
    # A job that ended in an error still "runs"; its printed result must be the model's answer.
    assert "[stand-in model]" in output, output


def printed_the_field_error(server: DemoServer, block: Block, output: str) -> None:
    # The example registers a judge with a typo on purpose; it must be refused, not created.
    assert "did you mean {{ outputs }}?" in output, output


def the_endpoint_test_reached_the_standin(server: DemoServer, block: Block, output: str) -> None:
    models = [request["body"].get("model") for request in server.standin.requests if isinstance(request["body"], dict)]
    assert "gpt-4.1-mini" in models, models


def the_rewrite_raised_held_out_kappa(server: DemoServer, block: Block, output: str) -> None:
    # The stand-in's rewrite adds the refusals the labeller failed: held-out κ must rise.
    kappas = dict(re.findall(r"^(.+): κ (-?[0-9.]+) ", output, re.MULTILINE))
    assert float(kappas["Rewritten by a model"]) > float(kappas["Current instructions"]), output
    assert "shadow version" in output, output


CHECKS: dict[tuple[str, str], Callable[[DemoServer, Block, str], None]] = {
    ("README.md", "export TOKEN=$("): printed_one_token_and_nothing_else,
    ("README.md", "OTLPSpanExporter("): otlp_spans_arrived,
    ("README.md", "mlflow.log_feedback("): mlflow_trace_arrived,
    ("README.md", "manage.py run_judge"): each_run_judge_got_a_verdict,
    ("README.md", "helpful.run("): printed_a_verdict,
    ("README.md", "polite.align("): the_rewrite_raised_held_out_kappa,
    ("docs/client.md", 'name="tone"'): printed_the_field_error,
    ("docs/client.md", "c.test_endpoint(ep)"): the_endpoint_test_reached_the_standin,
    ("docs/client.md", "judge.run("): printed_a_verdict,
}


def runnable_documents() -> list[str]:
    return [document for document in DOCUMENTS if any(b.kind and b.directive != "not run" for b in read_blocks(document))]


@pytest.mark.slow
@pytest.mark.parametrize("document", runnable_documents())
def test_examples_run_in_document_order_against_the_demo(document, demo_database, standin, tmp_path):
    blocks = read_blocks(document)
    assert not problems(blocks), problems(blocks)
    scratch = tmp_path / "examples"
    scratch.mkdir()
    standin.reset()
    with demo_server(tmp_path / "var", demo_database, standin) as server:
        setup: list[Block] = []
        for block in blocks:
            if block.directive == "not run":
                continue
            started = time.monotonic()
            done = run_block(block, [] if block.directive == "setup" else setup, server, scratch)
            output = done.stdout + done.stderr
            assert done.returncode == 0, (
                f"the example at {block.where} failed (exit {done.returncode}):\n{block.code}\n--- its output ---\n{output}"
                f"\n{server.log_tails()}"
            )
            for (checked_document, piece), check in CHECKS.items():
                if checked_document == document and piece in block.code:
                    check(server, block, output)
            print(f"{block.where}: ran in {time.monotonic() - started:.1f} s\n{output}")
            if block.directive == "setup":
                setup.append(block)
