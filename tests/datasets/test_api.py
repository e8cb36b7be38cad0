"""The datasets API: create and list datasets, merge, upload (CSV, JSON Lines), add traces, edit and delete records;
viewers read, editors write; every refusal names what was wrong and leaves nothing half-written."""

from __future__ import annotations

import gzip
import json

import pytest

from datasets.actions import create_dataset
from datasets.models import Dataset, DatasetRecord
from tests.conftest import ingest, make_trace

pytestmark = pytest.mark.django_db


def base(experiment) -> str:
    return f"/api/v1/experiments/{experiment.pk}/datasets"


@pytest.fixture
def dataset(experiment, user):
    return create_dataset(experiment, "refunds", user=user)


def records_url(dataset) -> str:
    return f"/api/v1/experiments/{dataset.experiment_id}/datasets/{dataset.pk}/records"


def post_json(api, url, body, method="post"):
    return getattr(api, method)(url, data=json.dumps(body), content_type="application/json")


def test_create_list_and_get_a_dataset(api, experiment):
    created = api.post(base(experiment), {"name": " refunds ", "description": "what support must get right"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["record_count"], body["created_by"], body["experiment_id"]) == ("refunds", 0, "pat", experiment.pk)
    again = api.post(base(experiment), {"name": "refunds"}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "name"
    listed = api.get(base(experiment)).json()["datasets"]
    assert [d["name"] for d in listed] == ["refunds"]
    assert api.get(base(experiment), {"name": "nope"}).json() == {"datasets": []}
    assert api.get(f"{base(experiment)}/{body['id']}").json()["description"] == "what support must get right"
    assert api.get(f"{base(experiment)}/999999").status_code == 404


def test_merge_is_idempotent_and_answers_what_it_did(api, dataset):
    records = [{"inputs": {"question": "Refund?"}, "expectations": {"expected_response": "30 days"}}, {"inputs": {"question": "Contact?"}}]
    first = post_json(api, records_url(dataset), {"records": records})
    assert first.status_code == 200, first.content
    assert {k: first.json()[k] for k in ("created", "updated", "unchanged")} == {"created": 2, "updated": 0, "unchanged": 0}
    again = post_json(api, records_url(dataset), records)  # a bare list too
    assert {k: again.json()[k] for k in ("created", "updated", "unchanged")} == {"created": 0, "updated": 0, "unchanged": 2}
    assert again.json()["record_ids"] == first.json()["record_ids"]
    assert api.get(f"/api/v1/experiments/{dataset.experiment_id}/datasets/{dataset.pk}").json()["record_count"] == 2


def test_a_gzipped_merge_is_read(api, dataset):
    body = gzip.compress(json.dumps([{"inputs": {"q": "zipped"}}]).encode())
    response = api.post(records_url(dataset), data=body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200 and response.json()["created"] == 1


def test_a_record_without_inputs_is_refused_naming_it_and_nothing_is_stored(api, dataset):
    response = post_json(api, records_url(dataset), {"records": [{"inputs": {"q": "fine"}}, {"expectations": {"expected_response": "x"}}]})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "records[1].inputs", "message": 'is required: a JSON object of the inputs, e.g. {"question": "..."}'}
    ]
    assert not DatasetRecord.objects.exists()


def test_records_are_paged_and_searchable_in_inputs_and_expectations(api, dataset):
    post_json(
        api,
        records_url(dataset),
        [{"inputs": {"question": f"Question {n}"}, "expectations": {"expected_response": "ÉCHANGE" if n == 3 else "no"}} for n in range(5)],
    )
    page1 = api.get(records_url(dataset), {"page_size": 2}).json()
    page2 = api.get(records_url(dataset), {"page_size": 2, "cursor": page1["next_cursor"]}).json()
    page3 = api.get(records_url(dataset), {"page_size": 2, "cursor": page2["next_cursor"]}).json()
    seen = [r["inputs"]["question"] for r in page1["records"] + page2["records"] + page3["records"]]
    assert sorted(seen) == [f"Question {n}" for n in range(5)] and page3["next_cursor"] is None
    assert [r["inputs"]["question"] for r in api.get(records_url(dataset), {"search": "échange"}).json()["records"]] == ["Question 3"]
    assert [r["inputs"]["question"] for r in api.get(records_url(dataset), {"search": "QUESTION 4"}).json()["records"]] == ["Question 4"]
    assert api.get(records_url(dataset), {"cursor": "nonsense"}).status_code == 400


def test_patch_replaces_expectations_and_bumps_the_version_bad_input_changes_nothing(api, dataset):
    [record_id] = post_json(
        api, records_url(dataset), [{"inputs": {"q": "x"}, "expectations": {"expected_response": "a", "guidelines": "be brief"}}]
    ).json()["record_ids"]
    url = f"{records_url(dataset)}/{record_id}"
    changed = post_json(api, url, {"expectations": {"expected_facts": ["one", "two"]}}, method="patch")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["expectations"], changed.json()["version"]) == ({"expected_facts": ["one", "two"]}, 2)
    bad = post_json(api, url, {"expectations": ["not", "an", "object"], "colour": "red"}, method="patch")
    assert bad.status_code == 400 and [e["field"] for e in bad.json()["errors"]] == ["colour"]
    bad = post_json(api, url, {"expectations": ["not", "an", "object"]}, method="patch")
    assert bad.status_code == 400 and [e["field"] for e in bad.json()["errors"]] == ["expectations"]
    broken = api.patch(url, data='{"expectations": {"a": ', content_type="application/json")
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]
    assert api.get(url).json()["version"] == 2
    assert api.delete(url).status_code == 204 and api.get(url).status_code == 404


def test_viewers_read_but_cannot_write(viewer_api, api, dataset):
    post_json(api, records_url(dataset), [{"inputs": {"q": "x"}}])
    record = DatasetRecord.objects.get()
    experiment_url = base(dataset.experiment)
    assert viewer_api.get(experiment_url).status_code == 200
    assert viewer_api.get(records_url(dataset)).status_code == 200
    refusals = [
        viewer_api.post(experiment_url, {"name": "mine"}, format="json"),
        post_json(viewer_api, records_url(dataset), [{"inputs": {"q": "y"}}]),
        viewer_api.post(f"{records_url(dataset)}/upload", data=b"inputs.q\nz\n", content_type="text/csv"),
        post_json(viewer_api, f"{records_url(dataset)}/from-traces", {"filter_string": ""}),
        post_json(viewer_api, f"{records_url(dataset)}/{record.pk}", {"expectations": {}}, method="patch"),
        viewer_api.delete(f"{records_url(dataset)}/{record.pk}"),
        viewer_api.delete(f"{experiment_url}/{dataset.pk}"),
    ]
    assert [r.status_code for r in refusals] == [403] * 7
    assert "can read datasets but not create or change them" in refusals[0].json()["detail"]
    assert list(DatasetRecord.objects.values_list("inputs", flat=True)) == [{"q": "x"}]
    assert Dataset.objects.count() == 1


def test_upload_csv_with_dotted_and_json_columns(api, dataset):
    csv_text = (
        "inputs.question,expectations.expected_facts,expectations.expected_response,outputs,tags.topic\n"
        'What is the refund policy?,"30-day window\noriginal packaging",Within 30 days.,We refund in 30 days.,refunds\n'
        "How do I contact support?,,,,\n"
    )
    response = api.post(f"{records_url(dataset)}/upload", data=csv_text.encode(), content_type="text/csv")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    record = DatasetRecord.objects.get(inputs={"question": "What is the refund policy?"})
    assert record.expectations == {"expected_facts": ["30-day window", "original packaging"], "expected_response": "Within 30 days."}
    assert (record.outputs, record.tags, record.source_type) == ("We refund in 30 days.", {"topic": "refunds"}, "upload")
    assert DatasetRecord.objects.get(inputs={"question": "How do I contact support?"}).expectations == {}

    json_columns = 'inputs,expectations\n"{""question"": ""Ship abroad?"", ""country"": ""FR""}","{""expected_facts"": [""EU only""]}"\n'
    response = api.post(
        f"{records_url(dataset)}/upload?file_format=csv", data=json_columns.encode(), content_type="application/octet-stream"
    )
    assert response.status_code == 200, response.content
    assert DatasetRecord.objects.get(inputs={"question": "Ship abroad?", "country": "FR"}).expectations == {"expected_facts": ["EU only"]}


def test_a_csv_with_bad_rows_lists_each_row_and_column_and_stores_nothing(api, dataset):
    csv_text = "inputs.question,expectations.expected_facts,expectations\n"  # both expectations columns: a header error
    response = api.post(f"{records_url(dataset)}/upload", data=csv_text.encode(), content_type="text/csv")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "row 1", "message": "has both a 'expectations' column and expectations.<key> columns; use one or the other"}
    ]

    csv_text = (
        "inputs.question,expectations.expected_facts,tags.topic\n"
        "Fine question,a fact,refunds\n"
        ',"[""unclosed",x\n'
        "Another,,\n"
        "Too,many,cells,here\n"
    )
    response = api.post(f"{records_url(dataset)}/upload", data=csv_text.encode(), content_type="text/csv")
    assert response.status_code == 400
    errors = [(e["field"], e["message"].split(" (")[0]) for e in response.json()["errors"]]
    assert errors == [
        ("row 3, column expectations.expected_facts", "is not valid JSON"),
        ("row 3, inputs", "must not be empty: a record is known by its inputs"),
        ("row 5", "has 4 cells but the header names 3 columns"),
    ]
    assert not DatasetRecord.objects.exists()


def test_an_unknown_csv_column_is_named(api, dataset):
    response = api.post(f"{records_url(dataset)}/upload", data=b"question,answer\nx,y\n", content_type="text/csv")
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["row 1, column 1 ('question')", "row 1, column 2 ('answer')", "row 1"]


def test_upload_json_lines(api, dataset):
    lines = "\n".join(
        [
            json.dumps(
                {
                    "inputs": {"messages": [{"role": "user", "content": "Hi"}]},
                    "expectations": {"guidelines": ["be polite"]},
                    "outputs": {"content": "Hello"},
                }
            ),
            "",
            json.dumps({"inputs": {"q": 2}, "tags": {"split": "test"}}),
        ]
    )
    response = api.post(f"{records_url(dataset)}/upload", data=lines.encode(), content_type="application/x-ndjson")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2
    assert DatasetRecord.objects.get(inputs={"q": 2}).tags == {"split": "test"}

    bad = "\n".join([json.dumps({"inputs": {"q": 3}}), "{not json", json.dumps({"inputs": "text"})])
    response = api.post(f"{records_url(dataset)}/upload?file_format=jsonl", data=bad.encode(), content_type="text/plain")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["line 2", "line 3.inputs"]
    assert DatasetRecord.objects.count() == 2


def test_an_upload_over_the_limit_is_a_413_and_stores_nothing(api, dataset, settings):
    settings.EVALAPP_DATASET_MAX_UPLOAD_BYTES = 2048
    content = ("inputs.question\n" + "".join(f"question number {n}\n" for n in range(200))).encode()
    response = api.post(f"{records_url(dataset)}/upload", data=content, content_type="text/csv")
    assert response.status_code == 413
    assert "EVALAPP_DATASET_MAX_UPLOAD_BYTES" in response.json()["detail"]
    assert not DatasetRecord.objects.exists()
    assert api.post(f"{records_url(dataset)}/upload", data=b"x", content_type="application/pdf").status_code == 415


def test_add_traces_by_filter_and_by_id(api, dataset, experiment):
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("s1", minutes=2, metadata={"environment": "staging"}))
    url = f"{records_url(dataset)}/from-traces"
    added = post_json(api, url, {"filter_string": "metadata.environment = 'production'"})
    assert added.status_code == 200, added.content
    assert {k: added.json()[k] for k in ("matched", "skipped", "created")} == {"matched": 2, "skipped": 0, "created": 2}
    record = DatasetRecord.objects.get(source_trace_id="t1")
    assert record.inputs == {"messages": [{"role": "user", "content": "question t1"}]}
    assert (record.outputs, record.source_type) == ({"content": "answer t1"}, "trace")
    # Again, and by id: the same inputs update, never duplicate.
    again = post_json(api, url, {"trace_ids": ["t1", "s1"]})
    assert {k: again.json()[k] for k in ("matched", "created", "unchanged")} == {"matched": 2, "created": 1, "unchanged": 1}
    assert DatasetRecord.objects.count() == 3

    unknown = post_json(api, url, {"trace_ids": ["t1", "nope"]})
    assert unknown.status_code == 400 and unknown.json()["errors"] == [
        {"field": "trace_ids", "message": "no trace 'nope' in this experiment"}
    ]
    typo = post_json(api, url, {"filter_string": "trace.sttus = 'OK'"})
    assert typo.status_code == 400 and "did you mean 'trace.status'?" in typo.json()["detail"]
    assert post_json(api, url, {}).status_code == 400
    assert DatasetRecord.objects.count() == 3


def test_a_dataset_of_another_experiment_is_a_404(api, dataset):
    from traces.actions import create_experiment

    other = create_experiment("other")
    assert api.get(f"/api/v1/experiments/{other.pk}/datasets/{dataset.pk}").status_code == 404
    assert api.get(f"/api/v1/experiments/{other.pk}/datasets/{dataset.pk}/records").status_code == 404
