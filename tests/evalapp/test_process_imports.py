"""What a process carries (issue 15, design note 47): the heavy libraries are imported where they are used, not by
every process that sets Django up — the qcluster's sentinel, monitor and pusher, the gRPC receiver and every web
worker would each hold them. Checked in a fresh interpreter: this one has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import io, json, sys

HEAVY = ("litellm", "openai", "scipy", "numpy", "redis", "psycopg", "cryptography", "grpc")
seen = {}

def loaded():
    return [name for name in HEAVY if name in sys.modules]

sys.argv = ["manage.py", sys.argv[1]]
import django

django.setup()
seen["setup"] = loaded()
if sys.argv[1] == "runserver":
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from standin.server import StandinConfig, StandinLLM

    setup_test_environment()
    call_command("migrate", verbosity=0)
    standin = StandinLLM(StandinConfig()).start()
    call_command("demo", "--traces", "30", "--standin-url", standin.api_base, stdout=io.StringIO())
    from django.contrib.auth import get_user_model

    from traces.models import Experiment

    experiment = Experiment.objects.get(name="demo-agent")
    trace = experiment.traces.order_by("pk").first()
    browser = Client()
    browser.force_login(get_user_model().objects.get(username="demo"))
    pages = [f"/experiments/{experiment.pk}/{tab}" for tab in ("overview", "traces", "sessions", "judges", "datasets", "alerts")]
    for url in [*pages, f"/experiments/{experiment.pk}/traces/{trace.trace_id}", "/api/v1/experiments"]:
        status = browser.get(url, follow=True).status_code
        assert status == 200, (url, status)
    seen["pages"] = loaded()
    from judges.manual import judge_by_hand

    [evaluation] = judge_by_hand(experiment.judges.order_by("pk").first(), trace_ids=[trace.trace_id])
    assert evaluation.assessment is not None, evaluation.error_message
    seen["model call"] = loaded()
    standin.stop()
print(json.dumps(seen))
"""


def process_imports(tmp_path: Path, command: str) -> dict[str, list[str]]:
    # The default set-up: SQLite, no Redis (on PostgreSQL a process loads psycopg, as it must).
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", EVALAPP_VAR_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", SCRIPT, command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_process_sets_up_django_without_a_heavy_library(tmp_path):
    # What the qcluster parent holds when it forks its sentinel, monitor, pusher and workers.
    assert process_imports(tmp_path, "qcluster") == {"setup": []}


def test_a_web_process_imports_litellm_only_when_a_model_is_called(tmp_path):
    seen = process_imports(tmp_path, "runserver")
    assert seen["setup"] == []
    # Every tab of the demo, a trace and the API: no model client. (scipy, yes: a rate's interval is scipy's.)
    assert not {"litellm", "openai"} & set(seen["pages"]), seen["pages"]
    assert {"litellm", "openai"} <= set(seen["model call"])
