"""Compressed bodies are read whole and strictly: one complete gzip (or deflate) stream and nothing after it.
Otherwise a 400 and nothing stored — never a 200 for part of the body."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest

from tests.conftest import make_trace
from tests.hostile.conftest import deadline, otlp_body, trace_ids
from traces.models import Trace

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]


def post_otlp(api, experiment, body: bytes, encoding: str):
    return api.generic(
        "POST", "/v1/traces", body, content_type="application/x-protobuf",
        HTTP_CONTENT_ENCODING=encoding, HTTP_X_EVALAPP_EXPERIMENT_ID=str(experiment.pk),
    )


def post_json(api, experiment, body: bytes, encoding: str):
    return api.generic("POST", f"/api/v1/experiments/{experiment.pk}/traces", body, content_type="application/json", HTTP_CONTENT_ENCODING=encoding)


def json_batch(*ids: str) -> bytes:
    return json.dumps({"traces": [make_trace(trace_id) for trace_id in ids]}).encode()


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip"])
@pytest.mark.parametrize("junk", [b"junk", b"\x00" * 8, b"\x1f\x8b"], ids=["text", "zeros", "half-a-header"])
def test_junk_after_a_gzip_stream_is_refused_and_nothing_stored(api, experiment, encoding, junk):
    first, second = trace_ids(2)
    response = post_otlp(api, experiment, gzip.compress(otlp_body(first)) + junk, encoding)
    assert response.status_code == 400
    response = post_json(api, experiment, gzip.compress(json_batch("t1")) + junk, encoding)
    assert response.status_code == 400 and "nothing was stored" in response.json()["detail"]
    assert not Trace.objects.exists()


def test_a_second_gzip_member_is_refused_and_nothing_stored(api, experiment):
    first, second = trace_ids(2)
    response = post_otlp(api, experiment, gzip.compress(otlp_body(first)) + gzip.compress(otlp_body(second)), "gzip")
    assert response.status_code == 400
    body = json_batch("t1", "t2")
    response = post_json(api, experiment, gzip.compress(body[:100]) + gzip.compress(body[100:]), "gzip")
    assert response.status_code == 400 and "send one gzip stream" in response.json()["detail"]
    assert not Trace.objects.exists()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_truncated_stream_is_refused_and_nothing_stored(api, experiment, encoding):
    compress = gzip.compress if encoding == "gzip" else deflate
    whole = compress(json_batch("t1"))
    for cut in (len(whole) - 1, len(whole) - 8, len(whole) // 2, 0):
        response = post_json(api, experiment, whole[:cut], encoding)
        assert response.status_code == 400, cut
    assert post_otlp(api, experiment, compress(otlp_body(*trace_ids(1)))[:-1], encoding).status_code == 400
    assert not Trace.objects.exists()


def test_junk_or_a_second_stream_after_deflate_is_refused_and_nothing_stored(api, experiment):
    first, second = trace_ids(2)
    for extra in (b"junk", deflate(otlp_body(second))):
        assert post_otlp(api, experiment, deflate(otlp_body(first)) + extra, "deflate").status_code == 400
        response = post_json(api, experiment, deflate(json_batch("t1")) + extra, "deflate")
        assert response.status_code == 400 and "after the end" in response.json()["detail"]
    assert not Trace.objects.exists()


def test_whole_streams_are_still_read(api, experiment):
    assert post_json(api, experiment, deflate(json_batch("t1")), "deflate").status_code == 200
    assert post_json(api, experiment, gzip.compress(json_batch("t2")), "gzip").status_code == 200
    assert post_otlp(api, experiment, gzip.compress(otlp_body(*trace_ids(3))), "gzip").status_code == 200
    assert Trace.objects.count() == 5


def test_many_empty_gzip_members_are_refused_at_once(api, experiment):
    empty = gzip.compress(b"", mtime=0)
    with deadline(2):
        response = post_json(api, experiment, gzip.compress(json_batch("t1")) + empty * 400_000, "gzip")  # 8 MB
    assert response.status_code == 400
    assert not Trace.objects.exists()
