"""The model client is imported by each qcluster worker process as it starts (django-q2's post_spawn), not by
the qcluster parent before it forks — so the sentinel, monitor and pusher never carry litellm — and not on a
worker's first judgement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
sys.argv = ["manage.py", "qcluster"]
import django
django.setup()
before = sorted(name for name in ("litellm", "openai.resources.chat.completions") if name in sys.modules)
from django_q.signals import post_spawn
post_spawn.send(sender="django_q", proc_name="Process-test")
after = sorted(name for name in ("litellm", "openai.resources.chat.completions") if name in sys.modules)
import gc
print(json.dumps({"before": before, "after": after, "frozen": gc.get_freeze_count()}))
"""


def test_a_qcluster_process_imports_the_model_client_only_when_a_worker_process_spawns(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", EVALAPP_VAR_DIR=str(tmp_path), LITELLM_LOCAL_MODEL_COST_MAP="True")
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    frozen = modules.pop("frozen")
    assert modules == {"before": [], "after": ["litellm", "openai.resources.chat.completions"]}
    # and what it imported is kept out of the cyclic collector's full passes (design note 55)
    assert frozen > 100_000
