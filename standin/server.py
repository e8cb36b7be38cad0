"""A scripted, OpenAI-compatible chat-completions server that stands in for a real model.

Tests and the demo must never reach the Internet, yet they should exercise the real client path (litellm over
HTTP). This server reads judge prompts the way a model would and answers with a deterministic, plausible verdict
derived from cues in the data (standin.verdicts). Every rationale starts with `[stand-in model]` so nobody
mistakes it for a real model's judgement. It can also misbehave on purpose (429, 500, hangs, malformed output, bad API key,
context overflow, unsupported `response_format`), either at configured rates or from a scripted queue.

Stdlib only and no Django, so it can run anywhere: in a test fixture, or via `manage.py standin_llm`.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standin.verdicts import content_text, judge, reply_content, rewrite_instructions

MODEL_ID = "evalapp-standin"
OUTCOMES = ("ok", "429", "500", "timeout", "malformed", "401")
MALFORMED_CONTENT = "Hmm, that's an interesting conversation. Let me think about it some more."


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


def _openai_error(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _format_type(body: dict[str, Any]) -> str | None:
    response_format = body.get("response_format")
    return response_format.get("type") if isinstance(response_format, dict) else None


def _prompt_characters(messages: list[Any]) -> int:
    return sum(len(content_text(message.get("content"))) for message in messages if isinstance(message, dict))


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
        self._answering = threading.Event()  # cleared by hold(): requests wait, unanswered
        self._answering.set()
        self._rng_seed = self.config.seed
        self._rng = random.Random(self._rng_seed)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandinLLM:
        if self._server is not None:
            raise RuntimeError("the stand-in model server is already running")
        self._stopping.clear()
        self._answering.set()
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
        self._answering.set()  # and those held
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def hold(self) -> None:
        """From now on, chat requests are recorded but not answered until release() (or stop()): a test can look
        at judging in flight for as long as it needs to, instead of racing a latency."""
        self._answering.clear()

    def release(self) -> None:
        """Answer the held requests (each after its latency) and stop holding new ones."""
        self._answering.set()

    def __enter__(self) -> StandinLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def connections_accepted(self) -> int:
        """TCP connections clients opened to this server since it started."""
        return self._server.accepted if self._server is not None else 0

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
        self._answering.wait()
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
            rewritten = rewrite_instructions(messages)
            content = rewritten if rewritten is not None else reply_content(judge(messages), structured=format_type in ("json_schema", "json_object"))
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
        self.accepted = 0  # connections, over the server's life (keep-alive reuse shows as fewer than requests)
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
            self.accepted += 1
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
