"""Settings → Model endpoints: the list, add, edit, test connection; the API key is write-only on every page."""

from __future__ import annotations

import html as html_lib

import pytest
from django.urls import reverse

from judges.endpoint_actions import create_endpoint
from judges.models import ModelEndpoint
from tests.conftest import STANDIN_KEY

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
HX_FORM = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "endpoint-form"}
LIST_URL = "/settings/endpoints"
NEW_URL = "/settings/endpoints/new"


def edit_url(endpoint) -> str:
    return reverse("endpoint-edit", args=[endpoint.pk])


def connection_test_url(endpoint) -> str:
    return reverse("endpoint-test", args=[endpoint.pk])


def field_block(page: str, field_id: str) -> str:
    matches = [chunk for chunk in page.split('class="field') if f'id="{field_id}"' in chunk]
    assert matches, f"no field {field_id}"
    return html_lib.unescape(matches[-1])


def endpoint_data(**overrides) -> dict[str, str]:
    data = {
        "name": "gpt mini",
        "model": "openai/gpt-4.1-mini",
        "api_base": "",
        "api_key": "",
        "inference_params": "",
        "max_concurrency": "8",
        "requests_per_minute": "",
        "timeout_seconds": "60",
        "max_retries": "4",
        "input_cost_per_million": "",
        "output_cost_per_million": "",
        "context_window": "",
        "output_mode": "auto",
    }
    data.update(overrides)
    return data


def no_secret_in(response, *secrets: str) -> None:
    endpoint = ModelEndpoint.objects.first()
    content = response.content.decode()
    for secret in (*secrets, endpoint.api_key_encrypted if endpoint and endpoint.api_key_encrypted else None):
        if secret:
            assert secret not in content


def test_the_list_shows_each_endpoint_without_its_key(editor_client, endpoint):
    plain = create_endpoint(name="local llama", model="ollama/llama3", api_base="http://127.0.0.1:11434", requests_per_minute=30, max_concurrency=100)
    for headers in ({}, HX):
        response = editor_client.get(LIST_URL, **headers)
        assert response.status_code == 200
        page = response.content.decode()
        assert "<html" in page and "Model endpoints" in page
        rows = {name: page[page.index(f'id="endpoint-{pk}"') :].split("</tr>")[0] for name, pk in (("standin", endpoint.pk), ("plain", plain.pk))}
        assert "Stand-in (test)" in rows["standin"] and "stand-in, not a real LLM" in rows["standin"]
        assert endpoint.api_base in rows["standin"] and "openai/evalapp-standin" in rows["standin"]
        assert 'chip-ok">set<' in rows["standin"] and 'chip-none">not set<' in rows["plain"]
        assert "30/min" in rows["plain"] and "64 at a time" in rows["plain"] and "(up to 100)" in rows["plain"] and "stand-in" not in rows["plain"]
        assert "Test connection" in rows["standin"] and edit_url(endpoint) in rows["standin"]
        no_secret_in(response, STANDIN_KEY)


def test_empty_list_says_what_to_do(editor_client, db):
    page = editor_client.get(LIST_URL).content.decode()
    assert "No model endpoints yet" in page and f'<a href="{NEW_URL}">Add an endpoint</a>' in page


def test_viewers_see_the_list_but_no_buttons(viewer_client, endpoint):
    page = viewer_client.get(LIST_URL).content.decode()
    assert "Stand-in (test)" in page
    assert "Test connection" not in page and NEW_URL not in page and edit_url(endpoint) not in page


def test_adding_an_endpoint_goes_through_the_action(editor_client, db):
    form = editor_client.get(NEW_URL)
    assert form.status_code == 200 and 'name="api_key" value=""' in form.content.decode()
    data = endpoint_data(api_key="sk-brand-new-key-123456", inference_params='{"temperature": 0}', requests_per_minute="120", input_cost_per_million="0.4")
    response = editor_client.post(NEW_URL, {**data, "is_standin": "on"}, **HX_FORM)
    assert response.status_code == 200 and response["HX-Redirect"] == LIST_URL
    endpoint = ModelEndpoint.objects.get()
    assert (endpoint.name, endpoint.model, endpoint.requests_per_minute, endpoint.is_standin) == ("gpt mini", "openai/gpt-4.1-mini", 120, True)
    assert endpoint.inference_params == {"temperature": 0} and str(endpoint.input_cost_per_million) == "0.400000"
    assert endpoint.get_api_key() == "sk-brand-new-key-123456"
    listing = editor_client.get(LIST_URL)
    assert "Added the model endpoint gpt mini" in listing.content.decode()
    no_secret_in(listing, "sk-brand-new-key-123456")


def test_adding_without_htmx_redirects(editor_client, db):
    response = editor_client.post(NEW_URL, endpoint_data())
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert not ModelEndpoint.objects.get().has_api_key


def test_errors_show_next_to_their_field_keep_what_was_typed_but_not_the_key(editor_client, db):
    create_endpoint(name="taken", model="openai/x")
    typed = endpoint_data(
        name="taken", model="a b", api_base="ftp://example.com", max_concurrency="many", inference_params="{temperature: 0}", api_key="sk-typed-secret-999999"
    )
    response = editor_client.post(NEW_URL, typed, **HX_FORM)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<form id="endpoint-form"') and "<html" not in page
    assert "an endpoint named 'taken' already exists" in field_block(page, "id_name")
    assert "without spaces" in field_block(page, "id_model")
    assert "must be an http:// or https:// URL" in field_block(page, "id_api_base")
    assert "must be a whole number" in field_block(page, "id_max_concurrency")
    assert "must be a JSON object" in field_block(page, "id_inference_params")
    unescaped = html_lib.unescape(page)
    assert 'value="a b"' in unescaped and 'value="ftp://example.com"' in unescaped and 'value="many"' in unescaped
    assert "{temperature: 0}" in unescaped
    assert "sk-typed-secret-999999" not in page and "type it again before saving" in page
    assert ModelEndpoint.objects.count() == 1


@pytest.mark.parametrize("params", ['{"temperature": NaN}', '{"stop": "\\u0000"}', '{"max_tokens": 1e400}'])
def test_inference_params_no_database_stores_are_a_form_error(editor_client, db, params):
    response = editor_client.post(NEW_URL, endpoint_data(name="fresh", inference_params=params), **HX_FORM)
    assert response.status_code == 200
    assert "must be a JSON object" in field_block(response.content.decode(), "id_inference_params")
    assert not ModelEndpoint.objects.exists()


def test_the_edit_page_never_shows_the_key(editor_client, endpoint):
    for headers in ({}, HX):
        response = editor_client.get(edit_url(endpoint), **headers)
        assert response.status_code == 200
        page = response.content.decode()
        assert "a key is set" in page and "leave blank to keep it" in page and 'name="clear_api_key"' in page
        assert 'name="api_key" value=""' in page and f'value="{endpoint.name}"' in page
        no_secret_in(response, STANDIN_KEY)


def test_a_blank_key_keeps_it_a_new_one_replaces_it_and_ticking_clears_it(editor_client, endpoint):
    kept = editor_client.post(edit_url(endpoint), endpoint_data(name=endpoint.name, model=endpoint.model, api_base=endpoint.api_base, timeout_seconds="9"), **HX_FORM)
    assert kept["HX-Redirect"] == LIST_URL
    endpoint.refresh_from_db()
    assert endpoint.timeout_seconds == 9 and endpoint.get_api_key() == STANDIN_KEY

    editor_client.post(edit_url(endpoint), endpoint_data(name=endpoint.name, model=endpoint.model, api_key="sk-replaced-key-000000"))
    endpoint.refresh_from_db()
    assert endpoint.get_api_key() == "sk-replaced-key-000000"

    editor_client.post(edit_url(endpoint), {**endpoint_data(name=endpoint.name, model=endpoint.model), "clear_api_key": "on"})
    endpoint.refresh_from_db()
    assert not endpoint.has_api_key
    page = editor_client.get(edit_url(endpoint)).content.decode()
    assert "no key set" in page and 'name="clear_api_key"' not in page


def test_edit_errors_keep_the_saved_key(editor_client, endpoint):
    response = editor_client.post(edit_url(endpoint), endpoint_data(name="", model=endpoint.model, api_key="sk-not-saved-111111"), **HX_FORM)
    assert response.status_code == 200
    assert "is required" in field_block(response.content.decode(), "id_name")
    no_secret_in(response, STANDIN_KEY, "sk-not-saved-111111")
    endpoint.refresh_from_db()
    assert endpoint.name == "Stand-in (test)" and endpoint.get_api_key() == STANDIN_KEY


def test_test_connection_shows_the_answer_inline(editor_client, endpoint, standin):
    response = editor_client.post(connection_test_url(endpoint), **HX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page and "Connected to openai/evalapp-standin" in page
    assert len(standin.requests) == 1
    no_secret_in(response, STANDIN_KEY)


def test_test_connection_with_a_wrong_key_says_so_without_the_key(editor_client, endpoint):
    editor_client.post(edit_url(endpoint), endpoint_data(name=endpoint.name, model=endpoint.model, api_base=endpoint.api_base, api_key="sk-wrong-wrong-wrong"))
    response = editor_client.post(connection_test_url(endpoint), **HX)
    page = response.content.decode()
    assert "Authentication failed" in page and 'class="error"' in page
    no_secret_in(response, STANDIN_KEY, "sk-wrong-wrong-wrong")


def test_test_connection_without_htmx_reports_on_the_list(editor_client, endpoint):
    response = editor_client.post(connection_test_url(endpoint), follow=True)
    assert "Stand-in (test): Connected to openai/evalapp-standin" in response.content.decode()


def test_viewers_cannot_add_edit_or_test(viewer_client, endpoint, standin):
    for method, url, data in [
        ("get", NEW_URL, {}),
        ("post", NEW_URL, endpoint_data(name="sneaky")),
        ("get", edit_url(endpoint), {}),
        ("post", edit_url(endpoint), endpoint_data(name="renamed", model="openai/x")),
        ("post", connection_test_url(endpoint), {}),
    ]:
        response = getattr(viewer_client, method)(url, data, **HX)
        assert response.status_code == 403, (method, url)
        assert STANDIN_KEY not in response.content.decode()
    assert list(ModelEndpoint.objects.values_list("name", flat=True)) == ["Stand-in (test)"]
    assert standin.requests == []


def test_pages_need_a_login(client, endpoint):
    assert "/login/" in client.get(LIST_URL)["Location"]
    assert "/login/" in client.post(connection_test_url(endpoint))["Location"]
