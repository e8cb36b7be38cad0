"""JSON API that starts and feeds evaluation runs (token or session auth): list an experiment's runs, start one,
log its predictions, cancel it — editors only for the writes. Every change goes through evaluations.actions. A run
and its rows are read at /api/v1/evaluation-runs/<id> (evaluations.api_read, whose `run_json` these answer with)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.roles import EditorOrReadOnly
from evaluations import api_schema
from evaluations.actions import RunData, RunNotPredicting, cancel_run, create_run, finish_if_judged, log_predictions
from evaluations.api_read import run_json
from evaluations.models import EvaluationRun, RunRow, RunStatus
from evaluations.results import summarize, summarize_many
from judges.errors import ConfigError
from traces import strict_json
from traces.http import BodyError, read_body
from traces.models import Experiment
from traces.payload import PayloadError

CREATE_FIELDS = ("name", "dataset", "records", "trace_ids", "filter_string", "judges", "gates", "params", "predict", "judge_model")
MAX_RUNS_LISTED = 100


class RunEditorOrReadOnly(EditorOrReadOnly):
    message = "Your account is a viewer: it can read evaluation runs but not start or change them. Ask an admin to add you to the editors group."


class RunAPIView(APIView):
    permission_classes = [IsAuthenticated, RunEditorOrReadOnly]


def _bad(error: PayloadError, status: int = 400) -> JsonResponse:
    return JsonResponse(error.as_json(), status=status)


def _body(request: Request) -> Any:
    """The JSON body, read like every write of the API (size limit → 413, gzip allowed, strict JSON)."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise BodyError(415, f"Content-Type {content_type!r} is not supported; send application/json.")
    try:
        return strict_json.loads(read_body(request._request, settings.EVALAPP_MAX_BODY_BYTES))
    except ValueError as error:
        raise BodyError(400, strict_json.body_error(error)) from None


def _run(experiment_id: int, run_id) -> EvaluationRun:
    experiment = get_object_or_404(Experiment, pk=experiment_id)
    run = get_object_or_404(EvaluationRun.objects.select_related("created_by"), experiment=experiment, pk=run_id)
    if run.status == RunStatus.JUDGING and finish_if_judged(run.pk):  # what a lost signal would have said
        run.refresh_from_db()
    return run


@api_schema.run_list
class RunListView(RunAPIView):
    def get(self, request: Request, experiment_id: int) -> JsonResponse:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        runs = EvaluationRun.objects.filter(experiment=experiment).select_related("created_by").order_by("-created_at")
        if request.query_params.get("name"):
            runs = runs.filter(name=request.query_params["name"])
        runs = list(runs[:MAX_RUNS_LISTED])
        summaries = summarize_many(runs)
        return JsonResponse({"runs": [run_json(run, summaries[run.pk]) for run in runs]})

    def post(self, request: Request, experiment_id: int) -> JsonResponse:
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        try:
            data = _body(request)
            if not isinstance(data, dict):
                raise PayloadError([("", "send a JSON object")])
            unknown = sorted(set(data) - set(CREATE_FIELDS))
            if unknown:
                raise PayloadError([(key, f"is not a field here; use {', '.join(CREATE_FIELDS)}") for key in unknown])
            run = create_run(
                experiment,
                user=request.user,
                name=data.get("name"),
                data=RunData(
                    dataset=data.get("dataset"), records=data.get("records"), trace_ids=data.get("trace_ids"), filter_string=data.get("filter_string")
                ),
                judges=data.get("judges"),
                gates=data.get("gates"),
                params=data.get("params"),
                predict=data.get("predict", False),
                judge_model=data.get("judge_model"),
            )
        except BodyError as error:
            return JsonResponse({"detail": error.message}, status=error.status)
        except PayloadError as error:
            return _bad(error)
        except ConfigError as error:
            return _bad(PayloadError(list(error.errors.items())))
        run = _run(experiment.pk, run.pk)
        rows = []
        if run.status == RunStatus.PREDICTING:
            rows = [{"position": position, "inputs": inputs} for position, inputs in RunRow.objects.filter(run=run).order_by("position").values_list("position", "inputs")]
        return JsonResponse({**run_json(run, summarize(run)), "rows": rows}, status=201)


@api_schema.run_predictions
class RunPredictionsView(RunAPIView):
    def post(self, request: Request, experiment_id: int, run_id) -> JsonResponse:
        run = _run(experiment_id, run_id)
        try:
            data = _body(request)
            waiting = log_predictions(run, data)
        except BodyError as error:
            return JsonResponse({"detail": error.message}, status=error.status)
        except PayloadError as error:
            return _bad(error)
        except RunNotPredicting as error:
            return JsonResponse({"detail": str(error)}, status=409)
        logged = len(data["predictions"] if isinstance(data, dict) else data)
        status = EvaluationRun.objects.filter(pk=run.pk).values_list("status", flat=True).get()
        return JsonResponse({"logged": logged, "waiting": waiting, "status": status})


@api_schema.run_cancel
class RunCancelView(RunAPIView):
    def post(self, request: Request, experiment_id: int, run_id) -> JsonResponse:
        run = _run(experiment_id, run_id)
        if not cancel_run(run):
            return JsonResponse({"detail": f"run {run.name!r} is {run.status} already; only a run predicting or judging can be cancelled"}, status=409)
        run.refresh_from_db()
        return JsonResponse(run_json(run, summarize(run)))
