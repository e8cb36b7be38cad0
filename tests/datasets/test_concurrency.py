"""Merges into one dataset from several requests at once: the same new inputs from each, at the same moment, make
one record (the dataset's row lock makes them take turns), and every merge succeeds."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from datasets.actions import create_dataset, merge_records
from datasets.models import DatasetRecord
from datasets.records import parse_records

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_merges_of_the_same_new_inputs_make_one_record_each(experiment):
    dataset = create_dataset(experiment, "shared")
    workers = 4
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def merge(worker: int) -> None:
        try:
            records = parse_records([{"inputs": {"question": f"Q{n}"}, "tags": {f"worker{worker}": "yes"}} for n in range(50)])
            barrier.wait(timeout=10)
            results.append(merge_records(dataset, records))
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=merge, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(result.created for result in results) == [0, 0, 0, 50]  # one merge created them, the others updated
    assert sum(result.updated for result in results) == 150
    assert DatasetRecord.objects.filter(dataset=dataset).count() == 50
    # Every merge's tags were kept: none overwrote another's with what it read before the other committed.
    assert all(set(record.tags) == {f"worker{w}" for w in range(workers)} for record in DatasetRecord.objects.all())
    assert sorted(DatasetRecord.objects.values_list("version", flat=True).distinct()) == [4]
