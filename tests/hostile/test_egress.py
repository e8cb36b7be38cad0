"""An editor points a model endpoint at an address only the server can reach (the cloud's metadata service, the
database, this machine) and reads what comes back through Test connection: refused when saved, and again on every
connection a call opens (judges.egress). Only loopback ports are used; a name leads elsewhere through a patched
resolver."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from evalapp.envconf import env_hosts
from judges import egress
from judges.actions import create_judge
from judges.egress import EgressPolicy, EgressRefused
from judges.endpoint_actions import check_connection, create_endpoint
from judges.errors import ConfigError
from judges.llm import CONFIGURATION
from judges.models import ModelEndpoint
from tests.conftest import STANDIN_KEY, ingest, judge_now, make_trace
from traces.models import Trace

pytestmark = pytest.mark.hostile


# --- the rule on its own ------------------------------------------------------------------------------------------

REFUSED = {
    "10.0.0.1": egress.PRIVATE,
    "172.16.5.4": egress.PRIVATE,
    "192.168.1.1": egress.PRIVATE,
    "100.64.0.1": egress.PRIVATE,
    "fd00::1": egress.PRIVATE,
    "::ffff:10.0.0.1": egress.PRIVATE,
    "169.254.169.254": egress.LINK_LOCAL,
    "fe80::1": egress.LINK_LOCAL,
    "fe80::1%2": egress.LINK_LOCAL,
    "::ffff:169.254.169.254": egress.LINK_LOCAL,
    "2002:a9fe:a9fe::1": egress.LINK_LOCAL,  # 6to4 around the metadata address
    "64:ff9b::a9fe:a9fe": egress.LINK_LOCAL,  # NAT64 around it
    "127.0.0.1": egress.LOOPBACK,
    "127.3.2.1": egress.LOOPBACK,
    "::1": egress.LOOPBACK,
    "::ffff:127.0.0.1": egress.LOOPBACK,
    "0.0.0.0": egress.NOT_PUBLIC,
    "::": egress.NOT_PUBLIC,
    "224.0.0.1": egress.NOT_PUBLIC,
    "255.255.255.255": egress.NOT_PUBLIC,
    "192.0.2.10": egress.NOT_PUBLIC,
}


@pytest.mark.parametrize("address,kind", REFUSED.items())
def test_addresses_that_are_not_public_are_refused_by_default(address, kind):
    refusal = EgressPolicy().refusal(address, egress.parse_address(address))
    assert refusal is not None and refusal.kind == kind
    assert egress.ALLOWED_HOSTS_SETTING in str(refusal)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert EgressPolicy().refusal(address, egress.parse_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:8910/v1",  # 127.0.0.1 as one decimal number
        "http://0x7f000001:8910/v1",  # in hex
        "http://0177.0.0.1:8910/v1",  # octal
        "http://127.1:8910/v1",  # short form
        "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data",  # 169.254.169.254 in hex parts
        "http://[::1]:8910/v1",
        "http://[::ffff:a00:1]/v1",  # 10.0.0.1 mapped into IPv6
        "http://[0:0:0:0:0:ffff:7f00:1]:8910/v1",
    ],
)
def test_numeric_spellings_are_judged_by_the_address_they_mean(url):
    with pytest.raises(EgressRefused):
        EgressPolicy().check_url(url)


def test_the_allowed_list_takes_names_addresses_and_networks():
    policy = EgressPolicy(("127.0.0.1", "10.20.0.0/16", "llm.internal", ".corp.example", "[fe80::1]"))
    assert policy.check_addresses("127.0.0.1", ["127.0.0.1"]) == ["127.0.0.1"]
    assert policy.check_addresses("x", ["10.20.3.4"]) == ["10.20.3.4"]
    assert policy.check_addresses("llm.internal", ["169.254.169.254"]) == ["169.254.169.254"]  # the operator vouched for the name
    assert policy.check_addresses("gpu.corp.example", ["192.168.0.9"]) == ["192.168.0.9"]
    assert policy.check_addresses("x", ["fe80::1"]) == ["fe80::1"]
    for host, address in (
        ("127.0.0.2", "127.0.0.2"),
        ("x", "10.21.0.1"),
        ("llm.internal.evil.example", "10.0.0.1"),
        ("corp.example.evil", "10.0.0.1"),
    ):
        with pytest.raises(EgressRefused):
            policy.check_addresses(host, [address])


def test_allowing_private_networks_does_not_open_loopback_or_metadata():
    policy = EgressPolicy(allow_private=True)
    assert policy.refusal("x", egress.parse_address("10.0.0.1")) is None
    assert policy.refusal("x", egress.parse_address("fd12::1")) is None
    assert policy.refusal("x", egress.parse_address("169.254.169.254")) is not None
    assert policy.refusal("x", egress.parse_address("127.0.0.1")) is not None


def test_a_name_leading_to_public_and_refused_addresses_connects_only_to_the_public_ones():
    assert EgressPolicy().check_addresses("mixed.example", ["10.0.0.1", "93.184.216.34"]) == ["93.184.216.34"]


def test_a_bad_allowed_host_stops_the_settings():
    assert env_hosts("HOSTS", environ={"HOSTS": "127.0.0.1, 10.0.0.0/8, llm.internal"}) == ["127.0.0.1", "10.0.0.0/8", "llm.internal"]
    with pytest.raises(ImproperlyConfigured, match="HOSTS: 'http://x' is neither"):
        env_hosts("HOSTS", environ={"HOSTS": "127.0.0.1,http://x"})
    with pytest.raises(ImproperlyConfigured, match="10.0.0.0/33"):
        env_hosts("HOSTS", environ={"HOSTS": "10.0.0.0/33"})


# --- saving an endpoint ---------------------------------------------------------------------------------------------


@pytest.fixture
def resolver(monkeypatch) -> dict[str, str]:
    """Names → the address they lead to (change it mid-test: DNS that changed); other names resolve as usual."""
    names: dict[str, str] = {}
    real = egress.system_getaddrinfo

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name in names:
            return real(names[name], port, family, type, proto, flags)
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(egress, "system_getaddrinfo", resolve)
    return names


@pytest.fixture
def no_loopback(settings):
    """The production default: nothing allowed beyond public addresses."""
    settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS = []
    settings.EVALAPP_ENDPOINT_ALLOW_PRIVATE = False


@pytest.mark.django_db
@pytest.mark.parametrize(
    "api_base,words",
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.5:8080/v1", "EVALAPP_ENDPOINT_ALLOW_PRIVATE=true"),
        ("http://127.0.0.1:6379/v1", "loopback"),
        ("http://[fd00::7]/v1", "private"),
        ("http://internal.example:8080/v1", "where internal.example leads"),
    ],
)
def test_saving_an_endpoint_at_a_refused_address_is_an_error_naming_the_rule(no_loopback, resolver, api_base, words):
    resolver["internal.example"] = "10.1.2.3"
    with pytest.raises(ConfigError) as raised:
        create_endpoint(name="sneaky", model="openai/x", api_base=api_base)
    assert words in raised.value.errors["api_base"]
    assert "EVALAPP_ENDPOINT_ALLOWED_HOSTS" in raised.value.errors["api_base"]
    assert not ModelEndpoint.objects.exists()


@pytest.mark.django_db
def test_the_api_answers_400_naming_the_setting(api, no_loopback):
    response = api.post("/api/v1/endpoints", {"name": "meta", "model": "openai/x", "api_base": "http://169.254.169.254/v1"}, format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "api_base" and "EVALAPP_ENDPOINT_ALLOWED_HOSTS" in error["message"]
    assert not ModelEndpoint.objects.exists()


@pytest.mark.django_db
def test_the_form_shows_the_error_beside_the_address(editor_client, no_loopback):
    data = {
        "name": "meta",
        "model": "openai/x",
        "api_base": "http://0xa9fea9fe/",
        "timeout_seconds": "5",
        "max_retries": "0",
        "max_concurrency": "8",
        "output_mode": "auto",
        "inference_params": "",
    }
    page = editor_client.post(reverse("endpoint-new"), data).content.decode()
    assert "169.254.169.254 (where 0xa9fea9fe leads) is a link-local address" in page
    assert not ModelEndpoint.objects.exists()


@pytest.mark.django_db
def test_allowed_hosts_and_private_networks_can_be_allowed(settings, resolver):
    settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1", "gpu.lab"]
    settings.EVALAPP_ENDPOINT_ALLOW_PRIVATE = True
    resolver["gpu.lab"] = "169.254.7.7"
    for name, api_base in (("local", "http://127.0.0.1:8910/v1"), ("lab", "http://gpu.lab/v1"), ("lan", "http://192.168.3.4/v1")):
        assert create_endpoint(name=name, model="openai/x", api_base=api_base).api_base == api_base
    with pytest.raises(ConfigError):
        create_endpoint(name="meta", model="openai/x", api_base="http://169.254.169.254/v1")


# --- every model call ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_endpoint_saved_before_the_rule_is_refused_when_called(endpoint, standin, settings, editor_client):
    settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS = []  # the stand-in on 127.0.0.1 was allowed when the endpoint was saved
    ok, message = check_connection(endpoint)
    assert not ok and message.startswith("Configuration problem: 127.0.0.1 is a loopback address")
    page = editor_client.post(reverse("endpoint-test", args=[endpoint.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "loopback address" in page
    assert standin.requests == []  # the model was never called


@pytest.mark.django_db
def test_a_judge_whose_endpoint_became_refused_records_a_configuration_error(endpoint, standin, settings, experiment):
    ingest(experiment, make_trace("t1"))
    judge = create_judge(experiment, name="helpful", instructions="Is {{ outputs }} helpful?", output_type="boolean", endpoint=endpoint)
    settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS = []
    assessment = judge_now(judge, Trace.objects.get(trace_id="t1"))
    assert assessment.value is None and assessment.error_code == CONFIGURATION
    assert "loopback" in assessment.error_message
    assert standin.requests == []


@pytest.mark.django_db
def test_dns_that_changed_after_saving_is_refused_at_the_call(settings, standin, resolver):
    settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]
    resolver["model.example"] = "127.0.0.1"
    endpoint = create_endpoint(
        name="renamed",
        model="openai/evalapp-standin",
        api_key=STANDIN_KEY,
        api_base=standin.api_base.replace("127.0.0.1", "model.example"),
        max_retries=2,
    )
    assert check_connection(endpoint)[0]
    calls = len(standin.requests)
    resolver["model.example"] = "10.9.8.7"  # the name now leads into the private network
    ok, message = check_connection(endpoint)
    assert not ok and "10.9.8.7 (where model.example leads) is a private-network address" in message
    assert len(standin.requests) == calls


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every POST with what the server was built to say; counts the requests."""

    def do_POST(self):  # noqa: N802 — the stdlib's name
        self.server.hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server() -> Iterator:
    started = []

    def start(status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
        server.hits, server.answer = 0, (status, headers or {}, body)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_a_refused_address_is_not_followed(settings, resolver, http_server, status):
    """The endpoint's own address is allowed (by name); the redirect it answers with leads to loopback, which is
    not: the connection to it is never made."""
    target = http_server(200, b'{"secret": "internal"}', {"Content-Type": "application/json"})
    redirector = http_server(status, headers={"Location": f"http://127.0.0.1:{target.server_port}/v1/chat/completions"})
    settings.EVALAPP_ENDPOINT_ALLOWED_HOSTS = ["model.example"]
    resolver["model.example"] = "127.0.0.1"
    endpoint = create_endpoint(
        name="redirects", model="openai/x", api_key="sk-x", api_base=f"http://model.example:{redirector.server_port}/v1", max_retries=3
    )
    ok, message = check_connection(endpoint)
    assert redirector.hits == 1
    assert target.hits == 0
    assert not ok and "127.0.0.1 is a loopback address" in message and "internal" not in message


@pytest.mark.django_db
@pytest.mark.parametrize("status", [401, 404, 500, 418])
def test_test_connection_shows_the_error_class_never_the_body(settings, http_server, status, editor_client):
    body = b'{"error": {"message": "db-password=hunter2 at 10.0.0.5; SERVER-BODY-MARKER"}}'
    server = http_server(status, body, {"Content-Type": "application/json"})
    endpoint = create_endpoint(
        name="chatty", model="openai/x", api_key="sk-x", api_base=f"http://127.0.0.1:{server.server_port}/v1", max_retries=0
    )
    ok, message = check_connection(endpoint)
    assert not ok and "Error" in message and "from the provider" in message
    assert "SERVER-BODY-MARKER" not in message and "hunter2" not in message
    page = editor_client.post(reverse("endpoint-test", args=[endpoint.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "from the provider" in page and "SERVER-BODY-MARKER" not in page


@pytest.mark.django_db
def test_test_connection_does_not_repeat_a_reply_that_is_not_ok(http_server):
    reply = b'{"id": "x", "object": "chat.completion", "created": 1, "model": "x", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "root:x:0:0:INTERNAL-FILE"}}]}'
    server = http_server(200, reply, {"Content-Type": "application/json"})
    endpoint = create_endpoint(
        name="echo", model="openai/x", api_key="sk-x", api_base=f"http://127.0.0.1:{server.server_port}/v1", max_retries=0
    )
    ok, message = check_connection(endpoint)
    assert ok and "INTERNAL-FILE" not in message and "characters (not shown)" in message


def test_lookups_outside_a_model_call_are_untouched():
    with egress.guarded(EgressPolicy()):
        with pytest.raises(EgressRefused):
            socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)  # the database, Redis and the stand-in itself stay reachable
