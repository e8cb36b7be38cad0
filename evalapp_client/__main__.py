"""`python -m evalapp_client evaluate ...`: an evaluation run from a shell or a CI job.

    python -m evalapp_client evaluate --experiment checkout-agent --dataset refund-questions \\
        --predict my_agent.app:answer --judge correctness --judge safety --gate 'correctness>=0.9'

Prints each judge's figure (with its 95% interval and n) and each gate; exits 0 when every gate passed, 1 when a
gate failed, 2 for a usage error or a refused request (the server's message is printed), 3 when the run did not
finish within --wait-timeout. The server and token come from --url/--token or $EVALAPP_URL/$EVALAPP_TOKEN."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from evalapp_client.client import Client
from evalapp_client.errors import EvalappError, JobTimeoutError

EXIT_PASSED, EXIT_GATE_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 0, 1, 2, 3


def load_target(target: str) -> Callable[..., Any]:
    """`package.module:function` (or `module:object.method`) → the callable. The current directory is importable."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"--predict {target!r}: write it as module:function, e.g. my_agent.app:answer")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"--predict {target!r} is not callable")
    return found


def _records(path: str) -> list[dict[str, Any]]:
    """Records from a JSON Lines file (one {"inputs": ..., "expectations": ...} per line) or a JSON list."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evalapp_client", description="evalapp from the command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("evaluate", help="run an evaluation; exit 1 when a quality gate fails")
    run.add_argument("--url", help="the server (default $EVALAPP_URL)")
    run.add_argument("--token", help="an API token (default $EVALAPP_TOKEN)")
    run.add_argument("--experiment", default=os.environ.get("EVALAPP_EXPERIMENT"), help="experiment name or id (default $EVALAPP_EXPERIMENT)")
    data = run.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset", help="a dataset of the experiment, by name")
    data.add_argument("--records", metavar="FILE", help="records in a .jsonl (or .json list) file")
    data.add_argument("--traces", metavar="FILTER", help="existing traces, by the trace filter language ('' for all)")
    run.add_argument("--predict", metavar="MODULE:FUNCTION", help="called as function(**inputs) per record; without it the records' outputs are judged")
    run.add_argument("--judge", dest="judges", action="append", required=True, metavar="NAME", help="a judge of the experiment or a built-in (repeat)")
    run.add_argument("--gate", dest="gates", action="append", default=[], metavar="GATE", help="e.g. 'correctness>=0.9' or 'score.mean>=4' (repeat)")
    run.add_argument("--name", help="the run's name")
    run.add_argument("--max-workers", type=int, default=10, help="predict calls at once (default 10)")
    run.add_argument("--timeout", type=float, default=60.0, help="seconds per predict call (default 60)")
    run.add_argument("--wait-timeout", type=float, default=3600.0, help="seconds to wait for the judging (default 3600)")
    run.add_argument("--judge-model", help="endpoint for built-ins the run makes (name)")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="what was evaluated, e.g. commit=4f2a9c1 (repeat)")
    run.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    run.add_argument("--json", action="store_true", help="print the run as JSON instead of the summary")
    return parser


def evaluate_command(args: argparse.Namespace) -> int:
    if args.experiment is None:
        print("error: --experiment is required (or set EVALAPP_EXPERIMENT)", file=sys.stderr)
        return EXIT_ERROR
    try:
        predict_fn = load_target(args.predict) if args.predict else None
        data: Any = args.dataset
        if args.records:
            data = _records(args.records)
        elif args.traces is not None:
            data = {"filter_string": args.traces}
        params = dict(item.split("=", 1) for item in args.param if "=" in item)
    except (ValueError, OSError, ImportError, AttributeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    experiment: Any = int(args.experiment) if str(args.experiment).isdigit() else args.experiment
    try:
        with Client(args.url, args.token) as client:
            result = client.evaluate(
                data,
                predict_fn,
                args.judges,
                experiment=experiment,
                run_name=args.name,
                gates=args.gates,
                max_workers=args.max_workers,
                timeout=args.timeout,
                wait_timeout=args.wait_timeout,
                progress=not args.no_progress,
                params=params or None,
                judge_model=args.judge_model,
            )
    except JobTimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_TIMEOUT
    except (EvalappError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result.raw, indent=2) if args.json else result.summary())
    return EXIT_PASSED if result.passed else EXIT_GATE_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "evaluate":
        return evaluate_command(args)
    return EXIT_ERROR  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
