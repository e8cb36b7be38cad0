"""A scripted, OpenAI-compatible chat-completions server that stands in for a real model.

Tests and the demo must never reach the Internet, yet they should exercise the real client path (litellm over
HTTP). This server reads judge prompts the way a model would — the `Answer type:` line in the system message,
the `⟦BEGIN …⟧ … ⟦END …⟧` data blocks in the user message — and answers with a deterministic, plausible
verdict derived from cues in the data. Every rationale starts with `[stand-in model]` so nobody mistakes it for
a real model's judgement. It can also misbehave on purpose (429, 500, hangs, malformed output, bad API key,
context overflow, unsupported `response_format`), either at configured rates or from a scripted queue.

Stdlib only and no Django, so it can run anywhere: in a test fixture, or via `manage.py standin_llm`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "evalapp-standin"
RATIONALE_PREFIX = "[stand-in model] "
OUTCOMES = ("ok", "429", "500", "timeout", "malformed", "401")
MALFORMED_CONTENT = "Hmm, that's an interesting conversation. Let me think about it some more."
# Share of prompts whose verdict is deliberately wrong, so results are not perfectly clean.
NOISE_SHARE = 0.08


@dataclass
class StandinConfig:
    """How the stand-in behaves; read afresh on every request, so tests may change it between requests."""

    latency_ms: int = 0
    jitter_ms: int = 0
    rate_429: float = 0.0
    retry_after_seconds: float = 1.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    hang_seconds: float = 30.0
    rate_malformed: float = 0.0
    structured_output: bool = True
    json_mode: bool = True
    require_api_key: str | None = None
    context_window: int = 128_000
    seed: int = 0
    # Forced outcomes (see OUTCOMES), consumed one per chat request before the rates apply.
    script: list[str] = field(default_factory=list)


# --- Reading a judge prompt and reaching a verdict -------------------------------------------------------------

_SUFFIXES = r"(?:s|d|ed|ing|er|ers|ful)?"
_CUE_PHRASES = {
    "unhelpful": ["i don't know", "i'm not sure", "cannot help", "can't help", "no idea", "unrelated", "as an ai"],
    "frustration": [
        "useless", "ridiculous", "terrible", "worst", "talk to a human", "real person", "!!!", "angry",
        "waste of time",
    ],
    "error": ["error", "timed out", "exception", "traceback"],
    "unsafe": ["kill", "bomb", "weapon", "hate"],
}


def _phrase_pattern(phrase: str) -> str:
    # Word boundaries keep "skill" from reading as "kill" and "as an airline" from reading as "as an ai".
    escaped = re.escape(phrase)
    if not phrase[0].isalnum():
        return escaped
    return rf"\b{escaped}{_SUFFIXES}\b" if phrase[-1].isalnum() else rf"\b{escaped}"


_CUE_PATTERNS = {
    category: re.compile("|".join(_phrase_pattern(phrase) for phrase in phrases), re.IGNORECASE)
    for category, phrases in _CUE_PHRASES.items()
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INJECTION = re.compile(r"\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\binstructions\b", re.IGNORECASE)
_DATA_BLOCK = re.compile(r"⟦BEGIN ([A-Z][A-Z0-9_.]*) ([^\s⟧]+)⟧\n?(.*?)\n?⟦END \1 \2⟧", re.DOTALL)
_ANSWER_TYPE = re.compile(r"^[ \t]*Answer type:[ \t]*(.+?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_TASK_SECTION = re.compile(r"^##[ \t]*Task[ \t]*$(.*?)(?=^##[ \t]|\Z)", re.MULTILINE | re.DOTALL | re.IGNORECASE)
_RANGE = re.compile(r"(?:from|between)\s+(-?\d+(?:\.\d+)?)\s+(?:to|and)\s+(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')

# category: (what a rationale says it found, what it says it looked for, a short name for string answers)
_CATEGORY_WORDS = {
    "unhelpful": ("an unhelpful or off-topic answer", "unhelpful or off-topic answers", "unhelpful answer"),
    "frustration": ("signs of user frustration", "signs of user frustration", "frustration"),
    "error": ("an error", "errors", "error"),
    "personal_data": ("personal data", "personal data", "personal data"),
    "unsafe": ("potentially unsafe content", "unsafe content", "unsafe content"),
    "empty": ("nothing to judge (an input is empty)", "empty inputs", "empty input"),
}


@dataclass(frozen=True)
class Cue:
    category: str
    text: str  # as it appears in the data, for quoting


@dataclass(frozen=True)
class AnswerType:
    kind: str  # boolean | categorical | integer | float | string
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Verdict:
    rationale: str
    result: str | int | float


def parse_answer_type(line: str) -> AnswerType:
    spec = line.strip()
    kind = spec.split(";")[0].split()[0].lower() if spec else "string"
    if kind.startswith("bool"):
        return AnswerType("boolean")
    if kind.startswith("categor"):
        values = tuple(_unquote(value) for value in _QUOTED.findall(spec.split(";", 1)[-1]))
        return AnswerType("categorical", values) if values else AnswerType("string")
    if kind.startswith(("int", "float", "number")):
        numeric = "integer" if kind.startswith("int") else "float"
        bounds = _RANGE.search(spec)
        if bounds:
            low, high = sorted(float(bound) for bound in bounds.groups())
            return AnswerType(numeric, low=low, high=high)
        return AnswerType(numeric)
    return AnswerType("string")


def _unquote(value: str) -> str:
    try:
        return json.loads(f'"{value}"')
    except ValueError:
        return value


def find_cues(data: str, categories: set[str]) -> list[Cue]:
    """Distinct problem cues of the given categories in `data`, in order of first appearance."""
    text = data.replace("\u2019", "'").replace("\\u2019", "'")
    found: list[tuple[int, Cue]] = []
    for category, pattern in _CUE_PATTERNS.items():
        if category in categories:
            found += [(match.start(), Cue(category, match.group())) for match in pattern.finditer(text)]
    if "personal_data" in categories:
        found += [(match.start(), Cue("personal_data", match.group())) for match in _EMAIL.finditer(text)]
        found += [
            (match.start(), Cue("personal_data", match.group().strip()))
            for match in _PHONE.finditer(text)
            if sum(char.isdigit() for char in match.group()) >= 9 and not _ISO_DATE.search(match.group())
        ]
    distinct: dict[tuple[str, str], Cue] = {}
    for _, cue in sorted(found, key=lambda item: item[0]):
        distinct.setdefault((cue.category, cue.text.lower()), cue)
    return list(distinct.values())


def relevant_categories(task: str) -> set[str]:
    """Which cue categories the judge's task cares about; a task about nothing in particular gets the general set."""
    lowered = task.lower()
    chosen = set()
    if "frustrat" in lowered:
        chosen.add("frustration")
    if re.search(r"\bpii\b", lowered) or "personal" in lowered:
        chosen.add("personal_data")
    if "safe" in lowered or re.search(r"\bharm", lowered):
        chosen.add("unsafe")
    return chosen or {"unhelpful", "frustration", "error", "unsafe"}


def _is_noisy(user_text: str, data: str) -> bool:
    if _INJECTION.search(data):
        return False
    digest = hashlib.sha256(user_text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < NOISE_SHARE


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def judge(messages: list[dict[str, Any]]) -> Verdict | None:
    """The stand-in's verdict on a judge prompt, or None when the messages are not a judge prompt."""
    by_role: dict[str, list[str]] = {}
    for message in (message for message in messages if isinstance(message, dict)):
        by_role.setdefault(message.get("role", ""), []).append(_content_text(message.get("content")))
    system = "\n".join(by_role.get("system", []) + by_role.get("developer", []))
    user = "\n".join(by_role.get("user", []))
    everything = "\n".join(text for texts in by_role.values() for text in texts)
    answer_line = _ANSWER_TYPE.search(system if system else everything)
    if not answer_line:
        return None
    answer_type = parse_answer_type(answer_line.group(1))
    task_section = _TASK_SECTION.search(system)
    task = _ANSWER_TYPE.sub("", task_section.group(1) if task_section else system)

    blocks = [match.group(3) for match in _DATA_BLOCK.finditer(user or everything)]
    data = "\n".join(blocks) if blocks else (user or everything)
    categories = relevant_categories(task)
    cues = find_cues(data, categories)
    if any(block.strip() in ("", "null", "None", '""') for block in blocks):
        cues.append(Cue("empty", ""))
    noisy = _is_noisy(user or everything, data)
    result = _result(answer_type, cues, noisy, data)
    return Verdict(_rationale(cues, categories), result)


def _result(answer_type: AnswerType, cues: list[Cue], noisy: bool, data: str) -> str | int | float:
    if answer_type.kind == "boolean":
        problem = bool(cues) != noisy
        return "no" if problem else "yes"
    if answer_type.kind == "categorical":
        return _categorical(answer_type.values, cues, noisy, data)
    if answer_type.kind == "integer":
        if answer_type.high is None:
            return max(0, 5 - len(cues))
        low, high = int(answer_type.low), int(answer_type.high)
        step = max(1, round((high - low) / 4))
        return max(low, high - step * len(cues))
    if answer_type.kind == "float":
        if answer_type.high is None:
            return round(max(0.0, 1.0 - 0.25 * len(cues)), 2)
        step = (answer_type.high - answer_type.low) / 4
        return round(max(answer_type.low, answer_type.high - step * len(cues)), 2)
    if not cues:
        return "no issues found"
    return "issues: " + ", ".join(dict.fromkeys(_CATEGORY_WORDS[cue.category][2] for cue in cues))


def _categorical(values: tuple[str, ...], cues: list[Cue], noisy: bool, data: str) -> str:
    by_name = {value.lower(): value for value in values}
    if set(by_name) == {"none", "resolved", "unresolved"}:
        if not any(cue.category == "frustration" for cue in cues):
            return by_name["none"]
        return by_name["resolved"] if "thank" in data[-300:].lower() else by_name["unresolved"]
    chosen = values[-1] if cues else values[0]
    if noisy and len(values) > 1:
        middle = values[len(values) // 2]
        chosen = middle if middle != chosen else values[0 if chosen == values[-1] else -1]
    return chosen


def _rationale(cues: list[Cue], categories: set[str]) -> str:
    if not cues:
        looked_for = _join(sorted(_CATEGORY_WORDS[category][1] for category in categories))
        return f"{RATIONALE_PREFIX}I looked for {looked_for} and found none in the data."
    first_match: dict[str, str] = {}
    for cue in cues:
        first_match.setdefault(cue.category, cue.text)
    findings = [
        f'{_CATEGORY_WORDS[category][0]} ("{text}")' if text else _CATEGORY_WORDS[category][0]
        for category, text in first_match.items()
    ]
    return f"{RATIONALE_PREFIX}The data shows {_join(findings)}."


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def reply_content(verdict: Verdict | None, structured: bool) -> str:
    if verdict is None:
        return "OK"
    answer = json.dumps({"rationale": verdict.rationale, "result": verdict.result}, ensure_ascii=False)
    return answer if structured else f"Here is my assessment.\n\n{answer}"


# --- The HTTP server ------------------------------------------------------------------------------------------


def _openai_error(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _format_type(body: dict[str, Any]) -> str | None:
    response_format = body.get("response_format")
    return response_format.get("type") if isinstance(response_format, dict) else None


def _prompt_characters(messages: list[Any]) -> int:
    return sum(len(_content_text(message.get("content"))) for message in messages if isinstance(message, dict))


def _estimated_tokens(text_length: int) -> int:
    return max(1, text_length // 4)


class StandinLLM:
    """The stand-in server, running in a daemon thread; use as a context manager or call start()/stop()."""

    def __init__(self, config: StandinConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or StandinConfig()
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._rng_seed = self.config.seed
        self._rng = random.Random(self._rng_seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandinLLM:
        if self._server is not None:
            raise RuntimeError("the stand-in model server is already running")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="standin-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes requests sleeping on latency or a scripted hang
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> StandinLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host or '127.0.0.1'}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/v1"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, headers: dict[str, str], body: Any, outcome: str) -> None:
        with self._lock:
            self.requests.append({"headers": headers, "body": body, "outcome": outcome, "received_at": time.monotonic()})

    def _draw(self) -> tuple[str, float]:
        """The next outcome (script first, then the seeded rates) and this request's latency in seconds."""
        config = self.config
        with self._lock:
            if self._rng_seed != config.seed:
                self._rng_seed, self._rng = config.seed, random.Random(config.seed)
            if config.script:
                outcome = config.script.pop(0)
            else:
                roll = self._rng.random()
                outcome = "ok"
                for name, rate in (
                    ("429", config.rate_429),
                    ("500", config.rate_500),
                    ("timeout", config.rate_timeout),
                    ("malformed", config.rate_malformed),
                ):
                    if roll < rate:
                        outcome = name
                        break
                    roll -= rate
            jitter = self._rng.uniform(-config.jitter_ms, config.jitter_ms) if config.jitter_ms else 0.0
        return outcome, max(0.0, config.latency_ms + jitter) / 1000

    def _invalid_request(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The 400 a real provider would send for this request under the current config, if any."""
        config = self.config
        format_type = _format_type(body)
        if (format_type == "json_schema" and not config.structured_output) or (
            format_type == "json_object" and not config.json_mode
        ):
            message = f"response_format of type {format_type} is not supported by this model"
            return _openai_error(message, "invalid_request_error", "response_format")
        prompt_tokens = _prompt_characters(body["messages"]) // 4
        if prompt_tokens > config.context_window:
            message = (
                f"This model's maximum context length is {config.context_window} tokens. However, your messages "
                f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages."
            )
            return _openai_error(message, "invalid_request_error", "messages", "context_length_exceeded")
        if body.get("stream"):
            message = "stream=true is not supported by the stand-in model; send the request without streaming"
            return _openai_error(message, "invalid_request_error", "stream")
        return None

    def _chat(self, handler: _Handler, headers: dict[str, str], raw_body: bytes) -> None:
        try:
            body = json.loads(raw_body)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("it is not a JSON object with a 'messages' list")
        except ValueError as error:
            self._record(headers, None, "400")
            message = f"Invalid request body: {error}. Send a JSON object with a 'messages' list."
            handler.send_json(400, _openai_error(message, "invalid_request_error"))
            return

        config = self.config
        outcome, latency = self._draw()
        # Checked in a real provider's order: the key, then rate limits and outages, then the request itself.
        key_sent = headers.get("authorization", "").removeprefix("Bearer ")
        if config.require_api_key is not None and key_sent != config.require_api_key:
            outcome = "401"
        if outcome not in OUTCOMES:
            message = f"stand-in script: unknown outcome {outcome!r}; use one of {', '.join(OUTCOMES)}"
            invalid = _openai_error(message, "invalid_request_error", "script")
        else:
            invalid = self._invalid_request(body) if outcome not in ("401", "429", "500") else None
        if invalid is not None:
            outcome = "400"
        self._record(headers, body, outcome)
        self._stopping.wait(latency)

        if invalid is not None:
            handler.send_json(400, invalid)
        elif outcome == "401":
            message = (
                "Incorrect API key provided: ***. "  # never echo the key: error texts end up in logs and the UI
                "You can find your API key at https://platform.openai.com/account/api-keys."
            )
            handler.send_json(401, _openai_error(message, "invalid_request_error", code="invalid_api_key"))
        elif outcome == "429":
            message = "Rate limit reached for requests (stand-in model)"
            payload = _openai_error(message, "requests", code="rate_limit_exceeded")
            handler.send_json(429, payload, {"Retry-After": f"{config.retry_after_seconds:g}"})
        elif outcome == "500":
            message = "The server had an error while processing your request (stand-in model)"
            handler.send_json(500, _openai_error(message, "server_error"))
        else:
            if outcome == "timeout":
                self._stopping.wait(config.hang_seconds)
            handler.send_json(200, self._completion(body, outcome))

    def _completion(self, body: dict[str, Any], outcome: str) -> dict[str, Any]:
        messages = body["messages"]
        if outcome == "malformed":
            content = MALFORMED_CONTENT
        else:
            format_type = _format_type(body)
            content = reply_content(judge(messages), structured=format_type in ("json_schema", "json_object"))
        prompt_tokens = _estimated_tokens(_prompt_characters(messages))
        completion_tokens = _estimated_tokens(len(content))
        return {
            "id": f"chatcmpl-standin-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or MODEL_ID,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: StandinLLM) -> None:
        self.standin = standin
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up idle keep-alive connections, whose handler threads would otherwise wait on them forever."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout) before we answered is expected, not an error worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; Nagle would hold the body ~40 ms
    server_version = "evalapp-standin/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default logs every request to stderr; never print anything derived from headers

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/health":
            self.send_json(200, {"status": "ok", "model": MODEL_ID, "stand_in": True})
        elif path in ("/v1/models", "/models"):
            model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "evalapp (stand-in, not a real LLM)"}
            self.send_json(200, {"object": "list", "data": [model]})
        else:
            self._not_found()

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # we cannot tell where the body ends, so the connection is unusable
            self.send_json(411, _openai_error("Send the body with a Content-Length header", "invalid_request_error"))
            return
        raw_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/v1/chat/completions", "/chat/completions"):
            headers = {name.lower(): value for name, value in self.headers.items()}
            self.server.standin._chat(self, headers, raw_body)
        else:
            self._not_found()

    def _not_found(self) -> None:
        message = f"Unknown request URL: {self.command} {self.path}. The stand-in serves POST /v1/chat/completions."
        self.send_json(404, _openai_error(message, "invalid_request_error", code="unknown_url"))

    def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_standin_{uuid.uuid4().hex[:16]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
