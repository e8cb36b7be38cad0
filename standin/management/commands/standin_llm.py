"""`manage.py standin_llm`: serve the scripted stand-in model (standin/server.py) until interrupted.

Point a model endpoint at the printed URL (litellm model `openai/evalapp-standin`) to run judges with no API key
and no Internet — the demo does exactly that.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from standin.server import StandinConfig, StandinLLM


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a rate; give a share between 0 and 1, e.g. 0.05")
    return rate


class Command(BaseCommand):
    help = "Serve a scripted OpenAI-compatible stand-in model (NOT a real LLM) for the demo and local testing."
    requires_system_checks: list[str] = []  # a stdlib server: Django's checks would only load the URL configuration

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8910, help="0 picks a free port")
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument("--jitter-ms", type=int, default=0)
        parser.add_argument("--rate-429", type=_rate, default=0.0, help="share of requests answered 429")
        parser.add_argument("--retry-after-seconds", type=float, default=1.0)
        parser.add_argument("--rate-500", type=_rate, default=0.0)
        parser.add_argument("--rate-timeout", type=_rate, default=0.0, help="share of requests that hang")
        parser.add_argument("--hang-seconds", type=float, default=30.0)
        parser.add_argument("--rate-malformed", type=_rate, default=0.0, help="share of answers without a verdict")
        parser.add_argument("--no-structured-output", action="store_true", help="reject json_schema response_format")
        parser.add_argument("--no-json-mode", action="store_true", help="reject json_object response_format")
        parser.add_argument("--require-api-key", default=None, help="answer 401 unless this bearer key is sent")
        parser.add_argument("--context-window", type=int, default=128_000)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        rates = ("rate_429", "rate_500", "rate_timeout", "rate_malformed")
        if sum(options[name] for name in rates) > 1:
            raise CommandError("--rate-429, --rate-500, --rate-timeout and --rate-malformed add up to more than 1")
        config = StandinConfig(
            latency_ms=options["latency_ms"],
            jitter_ms=options["jitter_ms"],
            rate_429=options["rate_429"],
            retry_after_seconds=options["retry_after_seconds"],
            rate_500=options["rate_500"],
            rate_timeout=options["rate_timeout"],
            hang_seconds=options["hang_seconds"],
            rate_malformed=options["rate_malformed"],
            structured_output=not options["no_structured_output"],
            json_mode=not options["no_json_mode"],
            require_api_key=options["require_api_key"],
            context_window=options["context_window"],
            seed=options["seed"],
        )
        try:
            standin = StandinLLM(config, host=options["host"], port=options["port"]).start()
        except OSError as error:
            raise CommandError(f"cannot listen on {options['host']}:{options['port']}: {error}") from error
        self.stdout.write(f"Stand-in model (NOT a real LLM) listening on {standin.api_base}")
        self.stdout.flush()  # whoever started us (the demo launcher) may be waiting for that line on a pipe
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            standin.stop()
