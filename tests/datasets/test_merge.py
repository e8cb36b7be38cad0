"""Merging records (datasets.actions.merge_records): idempotent by inputs, all or nothing, versions that say what
changed."""

from __future__ import annotations

import pytest

from datasets.actions import DatasetNameTaken, create_dataset, merge_records, update_record
from datasets.models import DatasetRecord
from datasets.records import parse_records, record_key
from traces.actions import create_experiment
from traces.payload import PayloadError

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(experiment, user):
    return create_dataset(experiment, "refunds", "what support must get right", user=user)


def merge(dataset, *records):
    return merge_records(dataset, parse_records(list(records)))


def test_re_merging_the_same_inputs_updates_and_never_duplicates(dataset):
    first = merge(
        dataset,
        {"inputs": {"question": "Refund policy?"}, "expectations": {"expected_facts": ["30 days"]}},
        {"inputs": {"question": "Contact?"}},
    )
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)

    again = merge(
        dataset,
        {"inputs": {"question": "Refund policy?"}, "expectations": {"expected_facts": ["30 days"]}},
        {"inputs": {"question": "Contact?"}},
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert again.record_ids == first.record_ids

    # The same inputs with their keys in another order are the same record; new expectation keys are added,
    # given ones replaced, others kept.
    more = merge(
        dataset,
        {
            "inputs": {"question": "Refund policy?"},
            "expectations": {"expected_response": "Within 30 days."},
            "outputs": "Yes",
            "tags": {"topic": "refunds"},
        },
    )
    assert (more.created, more.updated) == (0, 1)
    record = DatasetRecord.objects.get(pk=first.record_ids[0])
    assert record.expectations == {"expected_facts": ["30 days"], "expected_response": "Within 30 days."}
    assert (record.outputs, record.tags, record.version) == ("Yes", {"topic": "refunds"}, 2)
    assert DatasetRecord.objects.filter(dataset=dataset).count() == 2


def test_key_order_in_the_inputs_does_not_make_a_new_record(dataset):
    merge(dataset, {"inputs": {"a": 1, "b": {"x": [1, 2], "y": "é"}}})
    result = merge(dataset, {"inputs": {"b": {"y": "é", "x": [1, 2]}, "a": 1}})
    assert (result.created, result.unchanged) == (0, 1)
    assert record_key({"a": 1}) != record_key({"a": 1.0}) != record_key({"a": "1"})


def test_the_same_inputs_twice_in_one_batch_make_one_record(dataset):
    result = merge(dataset, {"inputs": {"q": "x"}, "expectations": {"a": 1}}, {"inputs": {"q": "x"}, "expectations": {"b": 2}})
    assert result.created == 1 and len(result.record_ids) == 1
    assert DatasetRecord.objects.get().expectations == {"a": 1, "b": 2}


def test_one_bad_record_refuses_the_batch_naming_every_problem(dataset):
    merge(dataset, {"inputs": {"q": "kept"}})
    with pytest.raises(PayloadError) as refused:
        merge(
            dataset,
            {"inputs": {"q": "new"}},
            {"expectations": {"expected_response": "no inputs"}},
            {"inputs": {}, "expectations": {"expected_facts": "not a list"}},
            {"inputs": {"q": "x"}, "tags": {"n": 3}, "extra": 1},
        )
    assert refused.value.errors == [
        ("records[1].inputs", 'is required: a JSON object of the inputs, e.g. {"question": "..."}'),
        ("records[2].inputs", "must not be empty: a record is known by its inputs"),
        ("records[2].expectations.expected_facts", 'must be a list of non-empty texts, e.g. ["30-day window", "original packaging"]'),
        ("records[3].extra", "is not a record field; use inputs, expectations, outputs, tags"),
        ("records[3].tags.n", 'must be a text (tags are text; send "3")'),
    ]
    assert list(DatasetRecord.objects.values_list("inputs", flat=True)) == [{"q": "kept"}]


def test_a_version_and_content_hash_let_a_run_tell_a_record_changed(dataset):
    [record_id] = merge(dataset, {"inputs": {"q": "x"}, "expectations": {"expected_response": "a"}}).record_ids
    record = DatasetRecord.objects.get(pk=record_id)
    pinned = (record.version, record.content_hash)
    updated = update_record(record, expectations={"expected_response": "b"})
    assert updated.version == 2 and updated.content_hash != pinned[1]
    # Changing it back gives back the same fingerprint (the content, not the history), at a new version.
    again = update_record(updated, expectations={"expected_response": "a"})
    assert (again.version, again.content_hash) == (3, pinned[1])


def test_update_refuses_inputs_of_another_record_and_writes_nothing(dataset):
    first, second = merge(dataset, {"inputs": {"q": "one"}}, {"inputs": {"q": "two"}}).record_ids
    record = DatasetRecord.objects.get(pk=second)
    with pytest.raises(PayloadError) as refused:
        update_record(record, inputs={"q": "one"}, expectations={"expected_response": "x"})
    assert refused.value.errors == [("inputs", f"are record {first}'s inputs already; edit that record instead")]
    record.refresh_from_db()
    assert (record.inputs, record.expectations, record.version) == ({"q": "two"}, {}, 1)


def test_dataset_names_are_unique_per_experiment_only(experiment, dataset):
    with pytest.raises(DatasetNameTaken):
        create_dataset(experiment, " refunds ")
    other = create_experiment("other-agent")
    assert create_dataset(other, "refunds").name == "refunds"
