"""The Datasets tab, a dataset's page (records, search, upload, inline edit) and the Traces tab's "Add to dataset"."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.actions import create_dataset, merge_records
from datasets.models import Dataset, DatasetRecord
from datasets.records import parse_records
from tests.conftest import ingest, make_trace

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def dataset(experiment, user):
    return create_dataset(experiment, "refunds", "what support must get right", user=user)


def detail_url(dataset) -> str:
    return reverse("dataset-detail", args=[dataset.experiment_id, dataset.pk])


def fill(dataset, count: int) -> list[int]:
    records = [{"inputs": {"question": f"Question {n}"}, "expectations": {"expected_response": f"Answer {n}"}} for n in range(count)]
    return merge_records(dataset, parse_records(records)).record_ids


def test_the_tab_says_what_a_dataset_is_when_there_is_none_and_creates_one(editor_client, experiment):
    url = reverse("experiment-datasets", args=[experiment.pk])
    html = editor_client.get(url).content.decode()
    assert "No datasets in this experiment yet" in html and 'action="/experiments/%d/datasets/new"' % experiment.pk in html
    assert ">Datasets</a>" in html  # the tab bar has the tab
    response = editor_client.post(reverse("dataset-create", args=[experiment.pk]), {"name": "refunds", "description": "d"})
    dataset = Dataset.objects.get()
    assert response.status_code == 302 and response["Location"] == detail_url(dataset)
    taken = editor_client.post(reverse("dataset-create", args=[experiment.pk]), {"name": "refunds"})
    assert taken.status_code == 400 and "already has a dataset named" in taken.content.decode()
    assert Dataset.objects.count() == 1


def test_the_list_shows_record_counts_and_no_runs_in_a_fixed_number_of_queries(
    editor_client, experiment, user, django_assert_max_num_queries
):
    for n in range(6):
        created = create_dataset(experiment, f"set-{n}", user=user)
        if n:
            fill(created, n)
    url = reverse("experiment-datasets", args=[experiment.pk])
    with django_assert_max_num_queries(8):
        html = editor_client.get(url).content.decode()
    rows = re.findall(r'<tr id="dataset-\d+">.*?</tr>', html, re.S)
    assert len(rows) == 6
    assert re.search(r"set-5</a>.*?<td class=\"num\">5</td>\s*<td class=\"muted\">no runs yet</td>\s*<td>pat</td>", rows[5], re.S)


def test_the_dataset_page_pages_and_searches_records_in_a_fixed_number_of_queries(editor_client, dataset, django_assert_max_num_queries):
    fill(dataset, 30)
    with django_assert_max_num_queries(10):
        html = editor_client.get(detail_url(dataset)).content.decode()
    assert html.count('<tr id="record-') == 25 and 'id="more-records"' in html
    more = re.search(r'id="more-records".*?href="([^"]+)"', html, re.S).group(1).replace("&amp;", "&")
    rest = editor_client.get(more, headers={**HX, "HX-Target": "more-records"}).content.decode()
    assert rest.count('<tr id="record-') == 5 and "<html" not in rest
    found = editor_client.get(detail_url(dataset), {"q": "answer 17"}, headers={**HX, "HX-Target": "record-results"}).content.decode()
    assert found.count('<tr id="record-') == 1 and "Question 17" in found
    assert "No records hold" in editor_client.get(detail_url(dataset), {"q": "zebra"}).content.decode()


def test_an_empty_dataset_says_how_to_add_records(editor_client, dataset):
    html = editor_client.get(detail_url(dataset)).content.decode()
    assert "No records yet" in html and "merge_records" in html and 'name="file"' in html


def upload(client, dataset, name: str, content: bytes):
    return client.post(reverse("dataset-upload", args=[dataset.experiment_id, dataset.pk]), {"file": SimpleUploadedFile(name, content)})


def test_a_csv_upload_with_bad_rows_lists_them_and_stores_nothing(editor_client, dataset):
    content = b'inputs.question,expectations.expected_facts\nFine,a fact\n,b\nAlso fine,"[""broken"", n"\n'
    response = upload(editor_client, dataset, "cases.csv", content)
    html = response.content.decode()
    assert response.status_code == 400 and "Nothing was stored: 2 problems" in html
    assert "row 3, inputs" in html and "row 4, column expectations.expected_facts" in html
    assert not DatasetRecord.objects.exists()

    good = upload(
        editor_client, dataset, "cases.jsonl", b'{"inputs": {"question": "Fine"}, "expectations": {"expected_facts": ["a fact"]}}\n'
    )
    assert good.status_code == 302
    page = editor_client.get(detail_url(dataset)).content.decode()
    assert "Uploaded cases.jsonl: 1 new record," in page and "a fact" in page


def test_an_upload_over_the_limit_is_a_413(editor_client, dataset, settings):
    settings.EVALAPP_DATASET_MAX_UPLOAD_BYTES = 1024
    response = upload(editor_client, dataset, "big.csv", b"inputs.q\n" + b"x" * 2000 + b"\n")
    assert response.status_code == 413 and "larger than the upload limit of 1.0\xa0KB" in response.content.decode()
    assert not DatasetRecord.objects.exists()
    unnamed = upload(editor_client, dataset, "cases.txt", b"inputs.q\nx\n")
    assert unnamed.status_code == 400 and "neither .csv nor .jsonl" in unnamed.content.decode()


def test_editing_expectations_refuses_bad_json_and_saves_good(editor_client, dataset):
    [record_id] = fill(dataset, 1)
    url = reverse("dataset-record-edit", args=[dataset.experiment_id, dataset.pk, record_id])
    form = editor_client.get(url, headers=HX).content.decode()
    assert "<textarea" in form and "expected_response" in form

    bad = editor_client.post(url, {"expectations": '{"expected_response": "x",'}, headers=HX)
    html = bad.content.decode()
    assert bad.status_code == 200 and "Not valid JSON" in html and "Nothing was saved" in html
    assert "{&quot;expected_response&quot;: &quot;x&quot;," in html  # the text is kept to fix
    wrong = editor_client.post(url, {"expectations": '{"expected_facts": "one"}'}, headers=HX).content.decode()
    assert "expected_facts: must be a list of non-empty texts" in wrong
    record = DatasetRecord.objects.get()
    assert (record.expectations, record.version) == ({"expected_response": "Answer 0"}, 1)

    saved = editor_client.post(url, {"expectations": '{"expected_facts": ["one", "two"]}'}, headers=HX).content.decode()
    assert 'class="record-saved"' in saved and "two" in saved and "v2" in saved
    assert DatasetRecord.objects.get().expectations == {"expected_facts": ["one", "two"]}


def test_viewers_see_datasets_but_no_forms_and_cannot_post(viewer_client, dataset):
    [record_id] = fill(dataset, 1)
    html = viewer_client.get(detail_url(dataset)).content.decode()
    assert "Question 0" in html and 'name="file"' not in html and "Edit expectations" not in html
    tab = viewer_client.get(reverse("experiment-datasets", args=[dataset.experiment_id])).content.decode()
    assert "refunds" in tab and "Create dataset" not in tab
    posts = [
        viewer_client.post(reverse("dataset-create", args=[dataset.experiment_id]), {"name": "mine"}),
        upload(viewer_client, dataset, "c.csv", b"inputs.q\nx\n"),
        viewer_client.post(reverse("dataset-record-edit", args=[dataset.experiment_id, dataset.pk, record_id]), {"expectations": "{}"}),
        viewer_client.post(reverse("dataset-record-delete", args=[dataset.experiment_id, dataset.pk, record_id])),
        viewer_client.post(reverse("dataset-delete", args=[dataset.experiment_id, dataset.pk])),
        viewer_client.post(reverse("traces-add-to-dataset", args=[dataset.experiment_id]), {"action": "count", "dataset": dataset.pk}),
    ]
    assert [response.status_code for response in posts] == [403] * 6
    assert DatasetRecord.objects.count() == 1 and Dataset.objects.count() == 1


# --- the Traces tab -------------------------------------------------------------------------------------------


def add(client, experiment, **data):
    return client.post(reverse("traces-add-to-dataset", args=[experiment.pk]), data, headers=HX).content.decode()


def test_traces_matching_the_filter_are_counted_then_exactly_those_are_added(editor_client, experiment, dataset):
    ingest(experiment, make_trace("p1"), make_trace("p2", minutes=1), make_trace("s1", minutes=2, metadata={"environment": "staging"}))
    tab = editor_client.get(
        reverse("experiment-traces", args=[experiment.pk]), {"q": "metadata.environment = 'production'"}
    ).content.decode()
    assert 'id="add-to-dataset"' in tab and 'value="metadata.environment = &#x27;production&#x27;"' in tab
    assert tab.count('name="trace_ids"') == 2

    counted = add(editor_client, experiment, action="count", dataset=dataset.pk, q="metadata.environment = 'production'")
    assert (
        "<strong>2 traces</strong> matching the filter metadata.environment = &#x27;production&#x27; will be added to <strong>refunds</strong>"
        in counted
    )
    assert not DatasetRecord.objects.exists()
    since = re.search(r'name="since" value="([^"]*)"', counted).group(1)
    counted_at = re.search(r'name="counted_at" value="([^"]+)"', counted).group(1)

    ingest(experiment, make_trace("p3", minutes=3))  # logged after the count: not added
    done = add(
        editor_client,
        experiment,
        action="confirm",
        dataset=dataset.pk,
        q="metadata.environment = 'production'",
        since=since,
        counted_at=counted_at,
    )
    assert "Added 2 traces to refunds: 2 new records, 0 updated, 0 already there." in done
    assert sorted(DatasetRecord.objects.values_list("source_trace_id", flat=True)) == ["p1", "p2"]


def test_selected_traces_go_to_a_new_dataset(editor_client, experiment):
    ingest(experiment, make_trace("t1"), make_trace("t2", minutes=1), make_trace("t3", minutes=2))
    done = add(editor_client, experiment, action="selected", dataset="new", new_name="picked", trace_ids=["t1", "t3"])
    assert "Added 2 traces to picked" in done
    assert sorted(Dataset.objects.get(name="picked").records.values_list("source_trace_id", flat=True)) == ["t1", "t3"]
    nothing = add(editor_client, experiment, action="selected", dataset="new", new_name="empty")
    assert "Tick the traces to add first" in nothing and not Dataset.objects.filter(name="empty").exists()
    bad = add(editor_client, experiment, action="count", dataset="new", new_name="x", q="trace.sttus = 'OK'")
    assert "did you mean" in bad and not Dataset.objects.filter(name="x").exists()


def test_viewers_get_no_checkboxes_on_the_traces_tab(viewer_client, experiment):
    ingest(experiment, make_trace("t1"))
    html = viewer_client.get(reverse("experiment-traces", args=[experiment.pk])).content.decode()
    assert 'name="trace_ids"' not in html and 'id="add-to-dataset"' not in html


def test_deleting_a_dataset_and_a_record(editor_client, dataset):
    first, second = fill(dataset, 2)
    gone = editor_client.post(reverse("dataset-record-delete", args=[dataset.experiment_id, dataset.pk, first]), headers=HX)
    assert gone.status_code == 200 and gone.content == b""
    assert list(DatasetRecord.objects.values_list("pk", flat=True)) == [second]
    response = editor_client.post(reverse("dataset-delete", args=[dataset.experiment_id, dataset.pk]), headers=HX)
    assert response["HX-Redirect"] == reverse("experiment-datasets", args=[dataset.experiment_id])
    assert not Dataset.objects.exists() and not DatasetRecord.objects.exists()
    assert "Deleted the dataset refunds and its 1 record." in editor_client.get(response["HX-Redirect"]).content.decode()
