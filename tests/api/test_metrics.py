"""GET /metrics: the Prometheus text, HTTP requests counted by route template, the optional token."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest

from sipline.api.access_log import access_logged
from sipline.api.app import create_app
from sipline.runtime import Runtime
from tests.conftest import Project
from tests.scrape import Samples, moved, off_vocabulary, parse, value

ENDPOINT_ROUTE = "/api/relay/rest/endpoints/sip/{id}"


@pytest.fixture(scope="module")
def routes(runtime: Runtime) -> set[str]:
    return {route.path_format for route in create_app(runtime).routes}


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app as `sipline serve` runs it: inside the access-log wrapper, which counts requests."""
    transport = httpx.ASGITransport(app=access_logged(create_app(runtime)))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def _scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


async def test_metrics_are_prometheus_text_with_every_family_documented(served) -> None:
    await served.get("/healthz")
    response = await served.get("/metrics")
    assert response.status_code == 200
    samples = parse(response.text)  # prometheus_client's parser accepts it
    names = {name for name, _ in samples}
    for family in (
        "sipline_http_requests_total",
        "sipline_sip_bindings",
        "sipline_calls_active",
        "sipline_sip_requests_shed_total",
        "sipline_sip_auth_throttled_requests_total",
    ):
        assert family in names, family
    for line in response.text.splitlines():
        if line.startswith("# HELP sipline_"):
            assert len(line.split(" ", 3)[3]) > 20, line  # every metric says what it counts


async def test_each_request_is_counted_once_by_route_template_and_status(served, project: Project) -> None:
    endpoint = await project.create()
    before = await _scrape(served)
    sip = "/api/relay/rest/endpoints/sip"
    assert (await served.get(f"{sip}/{endpoint['id']}", headers=project.auth)).status_code == 200
    assert (await served.get(f"{sip}/nope", headers=project.auth)).status_code == 404
    assert (await served.get("/healthz")).status_code == 200
    after = await _scrape(served)
    name = "sipline_http_requests_total"
    assert moved(before, after, name, method="GET", route=ENDPOINT_ROUTE, status="200") == 1
    assert moved(before, after, name, method="GET", route=ENDPOINT_ROUTE, status="404") == 1
    assert moved(before, after, name, method="GET", route="/healthz", status="200") == 1
    # The scrape before this one is counted too, under its own route.
    assert moved(before, after, name, method="GET", route="/metrics", status="200") == 1
    histogram = "sipline_http_request_duration_seconds_count"
    assert moved(before, after, histogram, method="GET", route=ENDPOINT_ROUTE) == 2
    assert value(after, "sipline_http_request_duration_seconds_bucket", method="GET", route="/healthz", le="+Inf") >= 1
    # The endpoint read went through the database, whose latency is measured.
    assert moved(before, after, "sipline_db_operation_duration_seconds_count", operation="read") >= 2


async def test_paths_and_methods_a_client_makes_up_never_become_label_values(served, project: Project, routes) -> None:
    odd = [
        "/wp-login.php",
        "/api/relay/rest/endpoints/sip/../../../etc/passwd",
        "/api/relay/rest/endpoints/sip/%00%ff",
        "/" + "a" * 2000,
        "/metrics/x",
        "/api/relay/rest/endpoints/sip/alice@example.com/registrations/extra",
    ]
    for path in odd:
        await served.get(path, headers=project.auth)
    for method in ("BREW", "PROPFIND"):
        await served.request(method, "/healthz")
    await served.post("/healthz")  # a route, not for this method: Litestar has matched no route
    samples = await _scrape(served)
    assert off_vocabulary(samples, routes) == []
    assert value(samples, "sipline_http_requests_total", method="other", route="/healthz", status="405") == 0
    assert value(samples, "sipline_http_requests_total", method="other", route="unmatched", status="405") >= 2
    assert value(samples, "sipline_http_requests_total", method="GET", route="unmatched", status="404") >= 4


def _with_token(runtime: Runtime, token: str) -> Runtime:
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update={"metrics_token": token}))


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", "Bearer ", "Basic c2NyYXBlcjp0b2tlbi1mb3ItbWV0cmljcw==", "token-for-metrics"],
)
async def test_with_a_token_set_only_its_bearer_gets_the_metrics(runtime: Runtime, header: str | None) -> None:
    app = create_app(_with_token(runtime, "token-for-metrics"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        refused = await c.get("/metrics", headers={"Authorization": header} if header else {})
        assert refused.status_code == 401
        assert refused.json() == {"error": "Unauthorized"}
        assert refused.headers["www-authenticate"] == "Bearer"
        allowed = await c.get("/metrics", headers={"Authorization": "Bearer token-for-metrics"})
        assert allowed.status_code == 200
        assert "sipline_http_requests_total" in allowed.text or "sipline_sip_bindings" in allowed.text


async def test_without_a_token_metrics_are_open_like_healthz(client) -> None:
    assert (await client.get("/metrics")).status_code == 200


async def test_metrics_are_documented_as_an_extension(client) -> None:
    operation = (await client.get("/schema/openapi.json")).json()["paths"]["/metrics"]["get"]
    assert operation["tags"] == ["sipline extensions"]
