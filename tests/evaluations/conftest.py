"""Evaluation runs built directly with the models, as the run's creation and its worker leave them: a dataset's
records, one trace per row, and the run's job of evaluations whose assessments `judges.results.record_result`
writes (tests.conftest.record_verdict)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from datasets.actions import create_dataset, merge_records
from datasets.models import Dataset, DatasetRecord
from datasets.records import RecordIn
from evaluations.models import EvaluationRun, RunGate, RunRow, RunStatus
from judges.actions import create_judge
from judges.models import Evaluation, EvaluationStatus, Judge
from tests.conftest import ingest, make_trace, record_verdict

PENDING = "pending"
RUNNING = "running"


@dataclass
class Row:
    """One row to build: its record (or inline inputs), the answer, and each judge's verdict — a value, PENDING,
    RUNNING, or ("error", code) / ("not_applicable",)."""

    inputs: dict[str, Any]
    outputs: Any = None
    verdicts: dict[str, Any] = field(default_factory=dict)
    record: DatasetRecord | None = None
    error: str = ""
    rationales: dict[str, str] = field(default_factory=dict)


def yes_no_judge(experiment, endpoint, name: str) -> Judge:
    return create_judge(experiment, endpoint=endpoint, name=name, instructions="Is {{ outputs }} right for {{ inputs }}?", active=False)


def score_judge(experiment, endpoint, name: str) -> Judge:
    return create_judge(
        experiment,
        endpoint=endpoint,
        name=name,
        instructions="Rate {{ outputs }} from 1 to 5.",
        output_type="integer",
        min_value=1,
        max_value=5,
        active=False,
    )


def dataset_with(experiment, name: str, questions: list[str]) -> tuple[Dataset, list[DatasetRecord]]:
    dataset = create_dataset(experiment, name)
    merge_records(dataset, [RecordIn(inputs={"question": question}, expectations={"expected_response": f"about {question}"}) for question in questions])
    records = {record.inputs["question"]: record for record in DatasetRecord.objects.filter(dataset=dataset)}
    return dataset, [records[question] for question in questions]


_trace_counter = iter(range(1, 10**9))


def build_run(
    experiment,
    judges: list[Judge],
    rows: list[Row],
    *,
    name: str = "run",
    dataset: Dataset | None = None,
    gates: list[tuple[str, str, str, float]] = (),
    status: str = RunStatus.DONE,
    params: dict[str, Any] | None = None,
    cost: str = "0.001",
) -> EvaluationRun:
    now = timezone.now()
    run = EvaluationRun.objects.create(
        experiment=experiment,
        dataset=dataset,
        dataset_name=dataset.name if dataset else "",
        name=name,
        status=status,
        judges=[{"judge_id": judge.pk, "name": judge.name, "version": judge.version, "output_type": judge.output_type} for judge in judges],
        params=params or {},
        row_count=len(rows),
        judging_started_at=now,
        finished_at=now if status == RunStatus.DONE else None,
    )
    for judge_name, metric, operator, threshold in gates:
        RunGate.objects.create(run=run, judge_name=judge_name, metric=metric, operator=operator, threshold=threshold)
    by_name = {judge.name: judge for judge in judges}
    for position, row in enumerate(rows):
        trace = None
        if not row.error:
            trace_id = f"t{next(_trace_counter):06d}-{re.sub(r'[^A-Za-z0-9._:-]', '-', name)}"
            trace = ingest(experiment, make_trace(trace_id))[0]
        record = row.record
        RunRow.objects.create(
            run=run,
            position=position,
            record=record,
            record_version=record.version if record else None,
            record_hash=record.content_hash if record else "",
            inputs=record.inputs if record else row.inputs,
            expectations=record.expectations if record else {},
            outputs=row.outputs,
            trace=trace,
            error=row.error,
        )
        if trace is None:
            continue
        for judge_name, verdict in row.verdicts.items():
            judge = by_name[judge_name]
            evaluation = Evaluation(judge=judge, judge_version=judge.version, trace=trace, manual=True, job=run.pk)
            if verdict in (PENDING, RUNNING):
                evaluation.status = verdict
            elif isinstance(verdict, tuple):
                code = "not_applicable" if verdict[0] == "not_applicable" else verdict[1]
                evaluation.assessment = record_verdict(judge, trace, error_code=code, cost=None)
                evaluation.status, evaluation.error_code = EvaluationStatus.ERROR, code
            else:
                evaluation.assessment = record_verdict(judge, trace, verdict, rationale=row.rationales.get(judge_name, f"{judge_name} on row {position}"), cost=cost)
                evaluation.status, evaluation.cost_usd = EvaluationStatus.DONE, Decimal(cost)
            evaluation.save()
    return run


@pytest.fixture
def judges(experiment, endpoint) -> dict[str, Judge]:
    return {"correct": yes_no_judge(experiment, endpoint, "correct"), "score": score_judge(experiment, endpoint, "score")}
