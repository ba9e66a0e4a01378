"""The explorer's server-side guards: Host allow-list, Origin check, body and depth caps."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from ipfl.explorer.app import DEFAULT_MARKET, MAX_BODY, create_app

URL = "http://127.0.0.1:8765"


@pytest.fixture
def client():
    return TestClient(create_app(port=8765), base_url=URL)


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1:8765", "[::1]:8765"])
def test_loopback_hosts_with_the_port_are_served(client, host):
    """The page and the API answer the three loopback names with the explorer's port."""
    assert client.get("/api/market", headers={"Host": host}).status_code == 200
    ok = client.post("/api/compute", json={"market": DEFAULT_MARKET},
                     headers={"Host": host, "Origin": f"http://{host}"})
    assert ok.status_code == 200 and ok.json()["ok"]


@pytest.mark.parametrize("host", ["evil.example:8765", "127.0.0.1:9999", "localhost",
                                  "127.0.0.1.evil.example:8765", ""])
def test_other_host_headers_are_refused(client, host):
    """DNS rebinding: a page on another name reaching this port gets 403, no content."""
    r = client.get("/api/market", headers={"Host": host})
    assert r.status_code == 403 and "lam" not in r.text


@pytest.mark.parametrize(("headers", "body"), [
    ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, b"{}"),
    ({"Origin": "http://evil.example", "Content-Type": "application/json"}, b"{}"),
    ({"Origin": "http://127.0.0.1:9999"}, b"{}"),
    ({"Origin": "null"}, b"{}"),
    ({"Sec-Fetch-Site": "cross-site"}, b"{}"),
])
def test_cross_origin_posts_are_refused_before_reading(client, headers, body):
    """A cross-origin POST (a text/plain "simple" request too) gets 403."""
    r = client.post("/api/compute", content=body, headers=headers)
    assert r.status_code == 403
    assert r.text.startswith("403 Forbidden:")


def test_body_over_the_cap_is_413_from_content_length_or_while_streaming(client):
    """A body over MAX_BODY is refused: by its Content-Length, or once a chunked one passes it."""
    big = client.post("/api/compute", content=b" " * (MAX_BODY + 1))

    def chunks():
        for _ in range(MAX_BODY // 1000 + 2):
            yield b" " * 1000

    streamed = client.post("/api/compute", content=chunks())
    assert big.status_code == streamed.status_code == 413
    assert f"exceeds {MAX_BODY:,} bytes" in big.json()["errors"][0]["message"]


def test_deep_json_and_too_many_clients_are_one_message(client):
    """Nesting past the depth cap and 9 clients come back as the page's error, status 200."""
    deep = client.post("/api/compute", content=b"[" * 20_000 + b"]" * 20_000)
    nine = client.post("/api/compute", json={"market": {
        **DEFAULT_MARKET, "clients": DEFAULT_MARKET["clients"] * 2, "points": None}})
    assert deep.status_code == 200
    assert "nests 20000 levels deep, more than the limit of 16" in \
        deep.json()["errors"][0]["message"]
    assert "the explorer takes 2-8 clients, got 10" in nine.json()["errors"][0]["message"]


def test_non_utf8_body_is_one_message(client):
    """Bytes that are not UTF-8 are refused as not JSON, without a 500."""
    r = client.post("/api/compute", content=b"\xff\xfe{}")
    assert r.status_code == 200 and "not UTF-8" in r.json()["errors"][0]["message"]
