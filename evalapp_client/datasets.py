"""Evaluation datasets from the client: `Client.create_dataset`, `get_dataset`, `list_datasets`, and the `Dataset`
they return, with MLflow's `merge_records` and the records as `DatasetRecord`s. Reference: docs/client.md."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Union

from evalapp_client.errors import NotFoundError
from evalapp_client.transport import Http
from evalapp_client.types import Experiment, from_json

API = "/api/v1"
MAX_RECORDS_PER_REQUEST = 10_000  # the server's limit per merge
UPLOAD_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson"}


class DatasetClient(Protocol):
    _http: Http

    def _experiment_id(self, experiment: Any) -> int: ...


@dataclass
class DatasetRecord:
    """One record: `inputs`, `expectations`, `outputs`, `tags`, where it came from (`source_type`: trace, upload,
    api or ui; `source_trace_id`), and `version`/`content_hash`, which change when its content does."""

    id: int
    dataset_id: int
    inputs: dict[str, Any]
    expectations: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None
    tags: dict[str, str] = field(default_factory=dict)
    source_type: str = "api"
    source_trace_id: str = ""
    version: int = 1
    content_hash: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The record in MLflow's shape: `{"inputs", "expectations", "outputs", "tags"}` (what `merge_records` takes)."""
        return {"inputs": self.inputs, "expectations": self.expectations, "outputs": self.outputs, "tags": self.tags}


def _as_records(records: Any) -> list[dict[str, Any]]:
    """A list of record dicts from a list (or any iterable) of dicts or `DatasetRecord`s, or from anything with
    `to_dict(orient="records")` (a pandas DataFrame with `inputs`/`expectations` columns), without importing pandas."""
    if hasattr(records, "to_dict") and not isinstance(records, dict):
        records = records.to_dict(orient="records")
    if isinstance(records, (dict, str, bytes)) or not isinstance(records, Iterable):
        raise TypeError("records must be a list of dicts such as {'inputs': {...}, 'expectations': {...}}")
    out = []
    for record in records:
        if isinstance(record, DatasetRecord):
            record = record.to_dict()
        out.append(
            {key: value for key, value in record.items() if not (key == "outputs" and value is None)}
            if isinstance(record, dict)
            else record
        )
    return out


@dataclass
class Dataset:
    """A dataset of an experiment. `merge_records`, `records`, `upload`, `add_traces`, `update_record`,
    `delete_record`, `refresh` and `delete` act on the server; those that change records refresh `record_count`."""

    id: int
    experiment_id: int
    name: str
    description: str = ""
    record_count: int = 0
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _client: DatasetClient | None = field(default=None, repr=False, compare=False)

    @property
    def _path(self) -> str:
        return f"{API}/experiments/{self.experiment_id}/datasets/{self.id}"

    def _http(self) -> Http:
        if self._client is None:
            raise RuntimeError("this Dataset was built without a client; get it from Client.get_dataset or create_dataset")
        return self._client._http

    def merge_records(self, records: Any, *, batch_size: int = MAX_RECORDS_PER_REQUEST) -> dict[str, Any]:
        """Add records, or update the ones with the same `inputs` (MLflow's `merge_records`): each is a dict
        `{"inputs": {...}, "expectations": {...}, "outputs": ..., "tags": {...}}` (only `inputs` required). Existing
        records get the given expectation and tag keys (others kept) and the outputs, if given; re-merging the same
        records changes nothing. Returns `{"created", "updated", "unchanged", "record_ids"}`. Each request (up to
        `batch_size` records) is all or nothing; a refused one raises `BadRequestError` naming `records[i]`."""
        rows = _as_records(records)
        if not 1 <= batch_size <= MAX_RECORDS_PER_REQUEST:
            raise ValueError(f"batch_size must be from 1 to {MAX_RECORDS_PER_REQUEST}")
        total: dict[str, Any] = {"created": 0, "updated": 0, "unchanged": 0, "record_ids": []}
        for start in range(0, len(rows), batch_size):
            result = self._http().request(
                "POST", f"{self._path}/records", body={"records": rows[start : start + batch_size]}, compress=True
            )
            for key in ("created", "updated", "unchanged"):
                total[key] += result[key]
            total["record_ids"].extend(result["record_ids"])
        self.refresh()
        return total

    def iter_records(self, *, search: str | None = None, max_results: int | None = None, page_size: int = 200) -> Iterator[DatasetRecord]:
        """Records, newest first, fetched page by page as you iterate; `search` finds text in inputs or expectations."""
        for item in self._http().pages(f"{self._path}/records", "records", {"search": search}, max_results, page_size):
            yield from_json(DatasetRecord, item)

    def records(self, *, search: str | None = None, max_results: int | None = None, page_size: int = 200) -> list[DatasetRecord]:
        """All records (or up to `max_results`), newest first, as a list."""
        return list(self.iter_records(search=search, max_results=max_results, page_size=page_size))

    def upload(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Merge the records of a `.csv` or `.jsonl` file (the README's column convention); all or nothing."""
        suffix = os.path.splitext(str(path))[1].lower()
        if suffix not in UPLOAD_TYPES:
            raise ValueError(f"upload a .csv or .jsonl file, not {suffix or 'a file without an extension'}")
        with open(path, "rb") as file:
            content = file.read()
        result = self._http().request("POST", f"{self._path}/records/upload", raw=content, content_type=UPLOAD_TYPES[suffix])
        self.refresh()
        return result

    def add_traces(self, trace_ids: list[str] | None = None, *, filter_string: str | None = None) -> dict[str, Any]:
        """Make records of traces of the dataset's experiment — by id, or every trace `filter_string` selects ("" for
        all): the request as the inputs, the response as the outputs. Returns `{"matched", "skipped", "created",
        "updated", "unchanged", "record_ids"}`."""
        if trace_ids is None and filter_string is None:
            raise ValueError("pass trace_ids=[...] or filter_string=... ('' for every trace)")
        body: dict[str, Any] = {}
        if trace_ids is not None:
            body["trace_ids"] = list(trace_ids)
        if filter_string is not None:
            body["filter_string"] = filter_string
        result = self._http().request("POST", f"{self._path}/records/from-traces", body=body)
        self.refresh()
        return result

    def update_record(self, record: DatasetRecord | int, **fields: Any) -> DatasetRecord:
        """Replace parts of one record: `inputs=`, `expectations=` (the whole new object), `outputs=`, `tags=`."""
        if not fields:
            raise ValueError("nothing to update: pass expectations={...}, outputs=..., tags={...} or inputs={...}")
        record_id = record.id if isinstance(record, DatasetRecord) else record
        return from_json(DatasetRecord, self._http().request("PATCH", f"{self._path}/records/{record_id}", body=fields))

    def delete_record(self, record: DatasetRecord | int) -> None:
        record_id = record.id if isinstance(record, DatasetRecord) else record
        self._http().request("DELETE", f"{self._path}/records/{record_id}")
        self.refresh()

    def refresh(self) -> Dataset:
        fresh = from_json(Dataset, self._http().request("GET", self._path))
        for spec in dataclasses.fields(self):
            if spec.name != "_client":
                setattr(self, spec.name, getattr(fresh, spec.name))
        return self

    def delete(self) -> None:
        """Delete the dataset and its records."""
        self._http().request("DELETE", self._path)


DatasetRef = Union[Dataset, int, str]


class DatasetsMixin:
    """The dataset methods of `Client`."""

    def create_dataset(self: DatasetClient, experiment: Experiment | int | str, name: str, description: str = "") -> Dataset:
        """A new, empty dataset (MLflow's `create_dataset`); 400 on `name` if the experiment has one by that name."""
        data = self._http.request(
            "POST", f"{API}/experiments/{self._experiment_id(experiment)}/datasets", body={"name": name, "description": description}
        )
        return from_json(Dataset, data, _client=self)

    def list_datasets(self: DatasetClient, experiment: Experiment | int | str) -> list[Dataset]:
        data = self._http.request("GET", f"{API}/experiments/{self._experiment_id(experiment)}/datasets")
        return [from_json(Dataset, item, _client=self) for item in data["datasets"]]

    def get_dataset(self: DatasetClient, experiment: Experiment | int | str, dataset: DatasetRef) -> Dataset:
        """By name or id; `NotFoundError` if the experiment has none."""
        experiment_id = self._experiment_id(experiment)
        if isinstance(dataset, Dataset):
            dataset = dataset.id
        if isinstance(dataset, int) and not isinstance(dataset, bool):
            return from_json(Dataset, self._http.request("GET", f"{API}/experiments/{experiment_id}/datasets/{dataset}"), _client=self)
        if not isinstance(dataset, str):
            raise TypeError(f"dataset must be a Dataset, an id or a name, not {type(dataset).__name__}")
        found = self._http.request("GET", f"{API}/experiments/{experiment_id}/datasets", params={"name": dataset})["datasets"]
        if not found:
            raise NotFoundError(f"no dataset named {dataset!r} in experiment {experiment_id}; create it with create_dataset")
        return from_json(Dataset, found[0], _client=self)

    def set_dataset(self: DatasetClient, experiment: Experiment | int | str, name: str, description: str = "") -> Dataset:
        """The dataset named `name`, created if the experiment has none yet."""
        try:
            return DatasetsMixin.get_dataset(self, experiment, name)
        except NotFoundError:
            return DatasetsMixin.create_dataset(self, experiment, name, description)
