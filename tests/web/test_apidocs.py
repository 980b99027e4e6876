"""The API docs load nothing from another site: Swagger UI and ReDoc with local assets."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from fairslot.web.app import create_app
from tests.conftest import World


def test_swagger_ui_and_redoc_are_served_with_local_assets(world: World) -> None:
    with TestClient(create_app(world.platform)) as client:
        for path in ("/api/v1/docs", "/api/v1/redoc"):
            page = client.get(path)
            assert page.status_code == 200
            urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            urls += re.findall(r"(?:url|openapi_url): *'([^']+)'", page.text)
            assert urls and all(u.startswith("/api/v1/") for u in urls), urls
            assert "cdn" not in page.text and "fonts.googleapis" not in page.text
            for url in urls:
                asset = client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 1000, url
