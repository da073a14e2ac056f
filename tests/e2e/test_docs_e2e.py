"""Swagger UI at /docs on the gateway: the page and its two assets are answered by Envoy itself, to
anyone (like /openapi.json, they hold no data), and the page reads the gateway's own OpenAPI document."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SWAGGER_UI = ROOT / "web" / "node_modules" / "swagger-ui-dist"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stylesheets: list[str] = []
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.stylesheets.append(attrs["href"])
        if tag == "script":
            self._in_script = True
            if attrs.get("src"):
                self.scripts.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline.append(data)


def test_docs_serve_swagger_ui_over_the_openapi_document_without_a_token(stack):
    page = httpx.get(f"{stack.gateway_url}/docs", timeout=20)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    parsed = _Page()
    parsed.feed(page.text)
    # The page starts Swagger UI on the document the gateway serves.
    assert any(re.search(r'SwaggerUIBundle\(\{[^}]*url:\s*"/openapi\.json"', code) for code in parsed.inline)
    assert httpx.get(f"{stack.gateway_url}/openapi.json", timeout=20).json()["openapi"].startswith("3.")

    (css,), (bundle,) = parsed.stylesheets, parsed.scripts
    for url, name, content_type in ((css, "swagger-ui.css", "text/css"),
                                    (bundle, "swagger-ui-bundle.js", "text/javascript")):
        assert url.startswith(f"/docs/{name}?v=")
        asset = httpx.get(f"{stack.gateway_url}{url}", timeout=20)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] == content_type
        assert asset.headers["x-content-type-options"] == "nosniff"
        # The installed release itself (web/package-lock.json), whole.
        assert asset.content == (SWAGGER_UI / name).read_bytes()
    assert b"SwaggerUIBundle" in httpx.get(f"{stack.gateway_url}{bundle}", timeout=20).content


def test_docs_are_reads_and_nothing_else_under_docs_is_open(stack):
    assert httpx.post(f"{stack.gateway_url}/docs", timeout=20).status_code in (401, 404, 405)
    # Only the page and its assets are open: any other path still needs a token.
    assert httpx.get(f"{stack.gateway_url}/docs/index.html", timeout=20).status_code == 401
