"""The client package on its own: importable without Django, and in step with the server's catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalapp_client import EvalappError, FieldError, Judge, SamplingConfig
from evalapp_client.builtins import BUILTIN_SCOPES, default_judge_name, resolve_builtin
from evalapp_client.errors import BadRequestError, ServerError, error_for
from judges.catalog import BUILTIN_JUDGES

ROOT = Path(__file__).resolve().parents[2]


def test_the_client_imports_and_works_where_django_is_not_importable():
    script = (
        "import sys\n"
        "sys.modules['django'] = None  # any `import django...` now fails\n"
        "import evalapp_client\n"
        "from evalapp_client import Client, SamplingConfig\n"
        "c = Client('http://127.0.0.1:1', token='t')\n"
        "assert SamplingConfig(sample_rate=0.3).to_json() == {'sample_rate': 0.3}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'traces', 'judges', 'evalapp'))\n"
        "assert loaded == ['django'], loaded\n"
        "print('ok')\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_clients_builtin_table_matches_the_servers_catalog():
    assert BUILTIN_SCOPES == {key: judge.scope for key, judge in BUILTIN_JUDGES.items()}
    for key, judge in BUILTIN_JUDGES.items():
        assert default_judge_name(key) == judge.default_name
        assert resolve_builtin(judge.default_name) == key  # snake_case → catalog key
        assert resolve_builtin(key) == key
    assert resolve_builtin("Sarcasm") == "Sarcasm"  # left for the server to refuse


def test_sampling_config_sends_only_what_is_set():
    assert SamplingConfig().to_json() == {}
    assert SamplingConfig(filter_string="").to_json() == {"filter_string": ""}  # "" removes the filter
    assert SamplingConfig(0.5, "trace.status = 'OK'", 600).to_json() == {
        "sample_rate": 0.5,
        "filter_string": "trace.status = 'OK'",
        "session_idle_seconds": 600,
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"detail": "name: is required", "errors": [{"field": "name", "message": "is required"}]}, [FieldError("name", "is required")]),
        ({"detail": "Invalid request.", "errors": {"name": ["Name must not be blank."]}}, [FieldError("name", "Name must not be blank.")]),
        ({"detail": "Send a JSON object."}, []),
    ],
)
def test_both_error_shapes_of_the_api_become_field_errors(body, expected):
    error = error_for(400, body, "", method="POST", path="/api/v1/experiments")
    assert isinstance(error, BadRequestError) and error.errors == expected


def test_an_error_page_that_is_not_json_still_says_what_happened():
    error = error_for(502, None, "<html><body>\n  Bad gateway\n</body></html>", method="GET", path="/api/v1/experiments")
    assert isinstance(error, ServerError) and isinstance(error, EvalappError)
    assert str(error) == "502 GET /api/v1/experiments: <html><body> Bad gateway </body></html>"


def test_a_judge_without_a_client_says_where_to_get_one():
    with pytest.raises(RuntimeError, match="get_judge"):
        Judge(id=1, experiment_id=1, name="x").stop()
