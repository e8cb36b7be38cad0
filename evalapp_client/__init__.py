"""Python client for evalapp's REST API (needs httpx, not Django). Reference: docs/client.md.

    from evalapp_client import Client, SamplingConfig

    with Client("http://127.0.0.1:8000", token="...") as c:
        exp = c.set_experiment("my-agent")
        judge = c.register_judge(exp, builtin="UserFrustration", model="Stand-in model (not a real LLM)")
        judge.start(SamplingConfig(sample_rate=1.0, filter_string="metadata.environment = 'production'"))
"""

from __future__ import annotations

from evalapp_client.client import Client, evaluate
from evalapp_client.datasets import Dataset, DatasetRecord
from evalapp_client.errors import (
    AuthenticationError,
    BadRequestError,
    EvalappConnectionError,
    EvalappError,
    FieldError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
)
from evalapp_client.evaluation import EvaluationResult, GateOutcome, JudgeMetric, RowResult, RowVerdict
from evalapp_client.transport import __version__
from evalapp_client.types import (
    ConnectionCheck,
    Experiment,
    Job,
    JobResult,
    Judge,
    JudgeState,
    JudgeVersion,
    ModelEndpoint,
    SamplingConfig,
)

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConnectionCheck",
    "Dataset",
    "DatasetRecord",
    "EvalappConnectionError",
    "EvalappError",
    "EvaluationResult",
    "Experiment",
    "FieldError",
    "GateOutcome",
    "Job",
    "JobResult",
    "JobTimeoutError",
    "Judge",
    "JudgeMetric",
    "JudgeState",
    "JudgeVersion",
    "ModelEndpoint",
    "NotFoundError",
    "PermissionDeniedError",
    "RowResult",
    "RowVerdict",
    "SamplingConfig",
    "ServerError",
    "__version__",
    "evaluate",
]
