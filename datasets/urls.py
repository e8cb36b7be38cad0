from __future__ import annotations

from django.urls import path

from datasets import api

PREFIX = "experiments/<int:experiment_id>/datasets"

api_urlpatterns = [
    path(PREFIX, api.DatasetListView.as_view(), name="api-datasets"),
    path(f"{PREFIX}/<int:dataset_id>", api.DatasetDetailView.as_view(), name="api-dataset"),
    path(f"{PREFIX}/<int:dataset_id>/records", api.RecordListView.as_view(), name="api-dataset-records"),
    path(f"{PREFIX}/<int:dataset_id>/records/upload", api.RecordUploadView.as_view(), name="api-dataset-upload"),
    path(f"{PREFIX}/<int:dataset_id>/records/from-traces", api.RecordFromTracesView.as_view(), name="api-dataset-from-traces"),
    path(f"{PREFIX}/<int:dataset_id>/records/<int:record_id>", api.RecordDetailView.as_view(), name="api-dataset-record"),
]
