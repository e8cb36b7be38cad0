"""What the Traces tab's "Add to dataset" panel offers: the experiment's datasets to choose from (one query)."""

from __future__ import annotations

from typing import Any

from datasets.models import Dataset
from traces.models import Experiment


def dataset_panel_context(experiment: Experiment, filters: Any, **extra: Any) -> dict[str, Any]:
    choices = list(Dataset.objects.filter(experiment=experiment).order_by("name").values_list("pk", "name"))
    return {"choices": choices, "filters": filters, **extra}
