"""The API's documentation pages work without internet: every script and stylesheet of /docs and
/redoc is served by the app itself, none from a CDN."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from media_pipeline.settings import load_settings


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"] or "")


def page_assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(load_settings({"MEDIA_PIPELINE_HOME": str(tmp_path)})))


@pytest.mark.parametrize(("page", "expected"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")])
def test_docs_pages_load_everything_from_the_app(client: TestClient, page: str, expected: str) -> None:
    response = client.get(page)
    assert response.status_code == 200, response.text
    assert "cdn." not in response.text and "unpkg" not in response.text, "a CDN URL is in the page"
    assets = page_assets(response.text)
    assert any(url.endswith(expected) for url in assets), assets
    for url in assets:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        asset = client.get(urljoin(f"http://testserver{page}", url))
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    # The pages' data: the OpenAPI document they read.
    assert client.get("/openapi.json").json()["info"]["title"] == "media_pipeline API"


def test_swagger_ui_script_is_the_real_bundle(client: TestClient) -> None:
    (script,) = [url for url in page_assets(client.get("/docs").text) if url.endswith(".js")]
    body = client.get(script)
    assert body.headers["content-type"].startswith(("application/javascript", "text/javascript"))
    assert b"SwaggerUIBundle" in body.content
