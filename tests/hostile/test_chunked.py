"""A body sent with Transfer-Encoding: chunked (no Content-Length) is read whole, up to the same limit, or refused
with 411 where the server can't read it — never acknowledged with nothing stored."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.handlers.wsgi import WSGIRequest

from tests.conftest import make_trace
from tests.hostile.conftest import otlp_body, trace_ids
from traces.http import BodyError, read_body
from traces.models import Trace

pytestmark = pytest.mark.hostile


def in_pieces(body: bytes, size: int = 1000):
    return (body[start : start + size] for start in range(0, len(body), size))


def wsgi_request(body: bytes, **environ) -> WSGIRequest:
    """What a WSGI server hands Django for a chunked request: no CONTENT_LENGTH, the body (already de-chunked) in
    wsgi.input."""
    return WSGIRequest(
        {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/v1/traces", "SERVER_NAME": "testserver", "SERVER_PORT": "80",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "HTTP_TRANSFER_ENCODING": "chunked", **environ,
        }
    )


def test_a_chunked_body_is_read_where_the_server_ends_the_input():
    assert read_body(wsgi_request(b"x" * 5000, **{"wsgi.input_terminated": True}), limit=5000) == b"x" * 5000


def test_a_chunked_body_over_the_limit_is_a_413():
    with pytest.raises(BodyError) as refused:
        read_body(wsgi_request(b"x" * 5001, **{"wsgi.input_terminated": True}), limit=5000)
    assert refused.value.status == 413


def test_a_chunked_body_the_server_cannot_delimit_is_a_411():
    with pytest.raises(BodyError) as refused:
        read_body(wsgi_request(b"x" * 10), limit=5000)
    assert refused.value.status == 411 and "Content-Length" in refused.value.message


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_otlp_sent_chunked_to_gunicorn_is_stored_whole(gunicorn, token, experiment):
    ids = trace_ids(50)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf", "x-evalapp-experiment-id": str(experiment.pk)}
    status, _ = gunicorn.post("/v1/traces", in_pieces(otlp_body(*ids), 100), headers)
    assert status == 200
    assert set(Trace.objects.values_list("trace_id", flat=True)) == set(ids)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_json_gzipped_and_sent_chunked_to_gunicorn_is_stored_whole(gunicorn, token, experiment):
    body = gzip.compress(json.dumps({"traces": [make_trace(f"t{n}") for n in range(20)]}).encode())
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, answer = gunicorn.post(f"/api/v1/experiments/{experiment.pk}/traces", in_pieces(body), headers)
    assert status == 200, answer
    assert Trace.objects.count() == 20


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_over_the_limit_is_refused_by_gunicorn_and_nothing_is_stored(gunicorn, token, experiment):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf", "x-evalapp-experiment-id": str(experiment.pk)}
    body = otlp_body(*trace_ids(2000))  # over the server's 64 KiB
    assert len(body) > 64 * 1024
    status, answer = gunicorn.post("/v1/traces", in_pieces(body, 8192), headers)
    assert status == 413, answer
    assert not Trace.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_server_that_cannot_read_chunked_bodies_answers_411_and_stores_nothing(live_server, token, experiment):
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf", "x-evalapp-experiment-id": str(experiment.pk)}
    connection.request("POST", "/v1/traces", body=in_pieces(otlp_body(*trace_ids(3))), headers=headers, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 411
    connection.close()
    assert not Trace.objects.exists()
