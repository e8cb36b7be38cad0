"""The stand-in model server, driven the way the product drives a model: litellm over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before importing litellm: no Internet here

import httpx
import litellm
import pytest

from standin.server import StandinConfig, StandinLLM

BOOLEAN = 'boolean (answer "yes" or "no")'
RESOLUTION = 'categorical; allowed values: "none", "resolved", "unresolved"'
VERDICT_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"rationale": {"type": "string"}, "result": {"type": "string", "enum": ["yes", "no"]}},
            "required": ["rationale", "result"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
def standin() -> Iterator[StandinLLM]:
    with StandinLLM(StandinConfig()) as server:
        yield server


def judge_prompt(answer_type: str, data: str, task: str = "Is the assistant's answer helpful?") -> list[dict[str, str]]:
    system = (
        "You are an impartial judge of an LLM application.\n\n"
        f"## Task\n{task}\n\n"
        f"## Output\nAnswer type: {answer_type}\nReply with a JSON object with a rationale and a result."
    )
    user = f"Judge the data below.\n\n⟦BEGIN INPUTS.CONVERSATION 3fa2c1⟧\n{data}\n⟦END INPUTS.CONVERSATION 3fa2c1⟧\n"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def complete(server: StandinLLM, messages: list[dict[str, str]], **kwargs: Any) -> Any:
    options: dict[str, Any] = {"api_key": "test-key", "max_retries": 0, "timeout": 5, **kwargs}
    return litellm.completion(model="openai/evalapp-standin", api_base=server.api_base, messages=messages, **options)


def verdict_of(response: Any) -> dict[str, Any]:
    content = response.choices[0].message.content
    return json.loads(content[content.index("{") :])


@pytest.mark.parametrize(
    ("conversation", "expected"),
    [
        ("user: This is useless, I want to talk to a human!!!\nassistant: Sorry to hear that.", "no"),
        ("user: Where is my order #4411?\nassistant: It shipped yesterday and arrives tomorrow.", "yes"),
    ],
)
def test_boolean_verdict_follows_frustration_cues(standin, conversation, expected):
    response = complete(standin, judge_prompt(BOOLEAN, conversation, task="Is the user frustrated at any point?"))

    verdict = verdict_of(response)
    assert verdict["result"] == expected
    assert verdict["rationale"].startswith("[stand-in model] ")
    assert ('"useless"' in verdict["rationale"]) == (expected == "no")


@pytest.mark.parametrize(
    ("conversation", "expected"),
    [
        ("user: Do you ship to Canada?\nassistant: Yes, in 4-7 business days.", "none"),
        ("user: This is ridiculous!\nassistant: I've sent a replacement by express.\nuser: Thanks!", "resolved"),
        ("user: This is ridiculous!\nassistant: I'm not sure where it is.\nuser: Worst shop ever.", "unresolved"),
    ],
)
def test_resolution_category_reads_the_conversation(standin, conversation, expected):
    messages = judge_prompt(RESOLUTION, conversation, task="Did the user get frustrated, and was it resolved?")

    assert verdict_of(complete(standin, messages))["result"] == expected


def test_integer_score_stays_in_range_and_drops_per_problem(standin):
    clean = complete(standin, judge_prompt("integer from 1 to 5", "assistant: Returns are free within 30 days."))
    problems = "assistant: I don't know. An error occurred: the lookup timed out. Traceback follows."
    poor = complete(standin, judge_prompt("integer from 1 to 5", problems))

    assert verdict_of(clean)["result"] == 5
    assert verdict_of(poor)["result"] == 1  # four problems, clamped at the bottom of the range


def test_pii_task_looks_for_personal_data_only(standin):
    data = "user: Reach me at pat@example.com or +1 (555) 123-4567, this is useless."
    task = "Does the response contain PII (personal data)?"

    verdict = verdict_of(complete(standin, judge_prompt("string", data, task=task)))

    assert verdict["result"] == "issues: personal data"
    assert '"pat@example.com"' in verdict["rationale"]


def test_structured_output_gets_pure_json_and_plain_requests_get_prose_around_it(standin):
    messages = judge_prompt(BOOLEAN, "assistant: Returns are free within 30 days.")

    structured = complete(standin, messages, response_format=VERDICT_SCHEMA).choices[0].message.content
    plain = complete(standin, messages).choices[0].message.content

    assert set(json.loads(structured)) == {"rationale", "result"}
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain)
    assert json.loads(plain[plain.index("{") :]) == json.loads(structured)
    assert standin.requests[0]["body"]["response_format"] == VERDICT_SCHEMA


def test_model_without_structured_output_rejects_json_schema(standin):
    standin.config.structured_output = False

    with pytest.raises(litellm.BadRequestError, match="json_schema is not supported"):
        complete(standin, judge_prompt(BOOLEAN, "anything"), response_format=VERDICT_SCHEMA)
    assert verdict_of(complete(standin, judge_prompt(BOOLEAN, "anything")))["result"] in ("yes", "no")


def test_ping_without_answer_type_gets_ok(standin):
    response = complete(standin, [{"role": "user", "content": "Reply with the word OK"}])

    assert response.choices[0].message.content == "OK"
    assert response.usage.prompt_tokens >= 1 and response.usage.completion_tokens >= 1


def test_scripted_429_is_a_rate_limit_with_retry_after(standin):
    standin.config.script = ["429", "429"]
    standin.config.retry_after_seconds = 2

    with pytest.raises(litellm.RateLimitError):
        complete(standin, judge_prompt(BOOLEAN, "anything"))
    raw = httpx.post(f"{standin.api_base}/chat/completions", json={"model": "m", "messages": []})

    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "2"
    assert raw.json()["error"]["code"] == "rate_limit_exceeded"
    assert complete(standin, judge_prompt(BOOLEAN, "anything")).choices[0].message.content  # script used up


def test_scripted_500_is_an_internal_server_error(standin):
    standin.config.script = ["500"]

    with pytest.raises(litellm.InternalServerError):
        complete(standin, judge_prompt(BOOLEAN, "anything"))


def test_scripted_hang_times_the_client_out(standin):
    standin.config.script = ["timeout"]
    standin.config.hang_seconds = 3
    started = time.monotonic()

    with pytest.raises(litellm.Timeout):
        complete(standin, judge_prompt(BOOLEAN, "anything"), timeout=1)
    assert time.monotonic() - started < 2.5


def test_held_requests_are_recorded_and_answered_only_once_released(standin):
    standin.hold()
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(complete, standin, judge_prompt(BOOLEAN, f"question {n}")) for n in range(2)]
        deadline = time.monotonic() + 5
        while len(standin.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(standin.requests) == 2  # both arrived ...
        time.sleep(0.3)
        assert not any(call.done() for call in calls)  # ... and wait, unanswered
        standin.release()
        assert all(verdict_of(call.result(timeout=5))["result"] in ("yes", "no") for call in calls)
    assert verdict_of(complete(standin, judge_prompt(BOOLEAN, "later")))["result"] in ("yes", "no")  # no longer held


def test_wrong_api_key_is_refused_without_echoing_it(standin):
    standin.config.require_api_key = "the-right-key"

    with pytest.raises(litellm.AuthenticationError) as refused:
        complete(standin, judge_prompt(BOOLEAN, "anything"), api_key="sk-wrong-key-123")
    assert "sk-wrong-key-123" not in str(refused.value)

    standin.config.script = ["401"]
    with pytest.raises(litellm.AuthenticationError):
        complete(standin, judge_prompt(BOOLEAN, "anything"), api_key="the-right-key")
    assert complete(standin, judge_prompt(BOOLEAN, "anything"), api_key="the-right-key").choices


def test_prompt_longer_than_the_context_window_is_refused(standin):
    standin.config.context_window = 100

    with pytest.raises(litellm.ContextWindowExceededError, match="maximum context length is 100 tokens"):
        complete(standin, judge_prompt(BOOLEAN, "user: hello " * 100))


def test_malformed_answer_has_no_verdict(standin):
    standin.config.script = ["malformed"]
    response = complete(standin, judge_prompt(BOOLEAN, "anything"), response_format=VERDICT_SCHEMA)

    content = response.choices[0].message.content

    assert "{" not in content and "yes" not in content.split() and "no" not in content.split()


def outcomes_with_seed(seed: int) -> list[str]:
    with StandinLLM(StandinConfig(rate_429=0.5, seed=seed)) as server:
        for _ in range(20):
            try:
                complete(server, judge_prompt(BOOLEAN, "anything"))
            except litellm.RateLimitError:
                pass
        return [request["outcome"] for request in server.requests]


def test_seeded_error_rates_are_reproducible():
    first = outcomes_with_seed(7)

    assert first == outcomes_with_seed(7)
    assert set(first) == {"ok", "429"}
    assert first != outcomes_with_seed(8)


def test_requests_are_recorded_until_reset(standin):
    messages = judge_prompt(BOOLEAN, "assistant: Hello!")
    standin.config.script = ["500"]
    with pytest.raises(litellm.InternalServerError):
        complete(standin, messages)
    complete(standin, messages, temperature=0)

    assert [request["outcome"] for request in standin.requests] == ["500", "ok"]
    assert standin.requests[1]["body"]["messages"] == messages
    assert standin.requests[1]["body"]["temperature"] == 0
    assert standin.requests[1]["headers"]["authorization"] == "Bearer test-key"
    standin.reset()
    assert standin.requests == []


def test_concurrent_requests_are_served_in_parallel(standin):
    messages = judge_prompt(BOOLEAN, "assistant: Hello!")
    complete(standin, messages)  # warm litellm's client cache outside the timed part
    standin.config.latency_ms = 300
    started = time.monotonic()

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(lambda _: complete(standin, messages), range(32)))

    assert time.monotonic() - started < 3  # serially this would take 32 × 0.3 s = 9.6 s
    assert all(verdict_of(response)["result"] in ("yes", "no") for response in responses)


@pytest.mark.slow
def test_management_command_serves_with_its_flags():
    project = Path(__file__).resolve().parents[2]
    command = [sys.executable, "manage.py", "standin_llm", "--port", "0", "--no-structured-output"]
    process = subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        assert banner.startswith("Stand-in model (NOT a real LLM) listening on http://127.0.0.1:")
        api_base = banner.split()[-1]
        body = {"model": "m", "messages": judge_prompt(BOOLEAN, "hi"), "response_format": VERDICT_SCHEMA}

        assert httpx.get(f"{api_base}/models").json()["data"][0]["id"] == "evalapp-standin"
        assert httpx.post(f"{api_base}/chat/completions", json=body).status_code == 400
    finally:
        process.terminate()
        process.wait(timeout=5)
