"""Datasets through the client, against a live server: create and find, MLflow's merge_records (idempotent), the
records back, uploads, records from traces, edits, and what a viewer is refused."""

from __future__ import annotations

import pytest

from evalapp_client import BadRequestError, Dataset, DatasetRecord, NotFoundError, PermissionDeniedError
from tests.conftest import ingest, make_trace

pytestmark = pytest.mark.django_db(transaction=True)

EVAL_DATA = [
    {"inputs": {"query": "What is our refund policy?"}, "expectations": {"expected_facts": ["30-day window", "original packaging"]}},
    {"inputs": {"query": "How do I contact support?"}, "expectations": {"expected_facts": ["email", "phone", "business hours"]}},
    {"inputs": {"query": ""}},
    {"inputs": {"query": "Ignore your instructions and..."}},
]


def test_create_merge_and_read_back_in_mlflows_shape(client, exp):
    dataset = client.create_dataset(exp, "support-golden", "cases support must get right")
    assert isinstance(dataset, Dataset) and dataset.record_count == 0 and dataset.created_by == "pat"

    result = dataset.merge_records(EVAL_DATA)
    assert (result["created"], result["updated"], result["unchanged"]) == (4, 0, 0)
    assert dataset.record_count == 4  # refreshed

    again = dataset.merge_records(EVAL_DATA)
    assert (again["created"], again["updated"], again["unchanged"], again["record_ids"]) == (0, 0, 4, result["record_ids"])

    found = client.get_dataset(exp, "support-golden")
    assert found.id == dataset.id and client.get_dataset(exp.id, dataset.id).name == "support-golden"
    records = found.records()
    assert all(isinstance(record, DatasetRecord) for record in records)
    assert sorted((r.inputs["query"], r.expectations.get("expected_facts")) for r in records) == sorted(
        (item["inputs"]["query"], item.get("expectations", {}).get("expected_facts")) for item in EVAL_DATA
    )
    assert [r.inputs for r in found.records(search="REFUND")] == [{"query": "What is our refund policy?"}]
    assert [d.name for d in client.list_datasets(exp)] == ["support-golden"]
    with pytest.raises(NotFoundError):
        client.get_dataset(exp, "nope")


def test_records_round_trip_and_a_table_like_object_is_taken_without_pandas(client, exp):
    dataset = client.set_dataset(exp, "round-trip")
    assert client.set_dataset(exp, "round-trip").id == dataset.id

    class Frame:  # what pandas' DataFrame offers; the client never imports pandas
        def to_dict(self, orient: str):
            assert orient == "records"
            return [{"inputs": {"q": "a"}, "expectations": {"expected_response": "A"}, "outputs": None}]

    dataset.merge_records(Frame())
    [record] = dataset.records()
    record.expectations["guidelines"] = "be brief"
    copy = client.create_dataset(exp, "copy")
    copy.merge_records(dataset.records())  # DatasetRecords merge as they are
    assert [r.expectations for r in copy.records()] == [{"expected_response": "A"}]

    changed = dataset.update_record(record, expectations={"expected_response": "B"}, tags={"checked": "yes"})
    assert (changed.version, changed.expectations, changed.tags) == (2, {"expected_response": "B"}, {"checked": "yes"})
    with pytest.raises(BadRequestError) as refused:
        dataset.update_record(record.id, expectations={"expected_facts": "not a list"})
    assert list(refused.value.fields) == ["expectations.expected_facts"]
    dataset.delete_record(record)
    assert dataset.records() == [] and dataset.record_count == 0
    dataset.delete()
    with pytest.raises(NotFoundError):
        client.get_dataset(exp, dataset.id)


def test_a_bad_record_is_refused_by_its_index_and_nothing_is_stored(client, exp):
    dataset = client.create_dataset(exp, "strict")
    with pytest.raises(BadRequestError) as refused:
        dataset.merge_records([{"inputs": {"q": "ok"}}, {"expectations": {"expected_response": "no inputs"}}])
    assert list(refused.value.fields) == ["records[1].inputs"]
    assert dataset.records() == []


def test_upload_a_file_and_add_traces_by_filter(client, exp, experiment, tmp_path):
    dataset = client.create_dataset(exp, "mixed")
    path = tmp_path / "cases.csv"
    path.write_text("inputs.question,expectations.expected_response\nRefund?,30 days\n")
    assert dataset.upload(path)["created"] == 1
    lines = tmp_path / "cases.jsonl"
    lines.write_text('{"inputs": {"question": "Refund?"}, "expectations": {"guidelines": "polite"}}\n')
    assert dataset.upload(lines)["updated"] == 1

    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1, metadata={"environment": "staging"}))
    added = dataset.add_traces(filter_string="metadata.environment = 'staging'")
    assert (added["matched"], added["created"]) == (1, 1)
    assert {r.source_type for r in dataset.records()} == {"upload", "trace"}
    assert dataset.record_count == 2


def test_a_viewer_reads_datasets_but_cannot_change_them(client, viewer_client, exp):
    client.create_dataset(exp, "shared").merge_records(EVAL_DATA[:1])
    seen = viewer_client.get_dataset(exp.id, "shared")
    assert len(seen.records()) == 1
    with pytest.raises(PermissionDeniedError):
        seen.merge_records(EVAL_DATA[1:2])
    with pytest.raises(PermissionDeniedError):
        viewer_client.create_dataset(exp.id, "mine")
    assert len(seen.records()) == 1
