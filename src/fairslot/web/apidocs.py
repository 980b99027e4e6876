"""The API's documentation pages, Swagger UI at ``/api/v1/docs`` and ReDoc at
``/api/v1/redoc``, with their scripts and styles served by fairslot itself from the
``fastapi-offline`` package: the docs work on a hospital network with no Internet."""

from __future__ import annotations

import pathlib

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install_api_docs"]

ASSETS = "/api/v1/docs-assets"
_STATIC = pathlib.Path(fastapi_offline.__file__).parent / "static"


def install_api_docs(app: FastAPI) -> None:
    """Call with ``docs_url=None, redoc_url=None`` on the app."""
    app.mount(ASSETS, StaticFiles(directory=_STATIC), name="api-docs-assets")
    openapi_url = app.openapi_url or "/api/v1/openapi.json"

    @app.get("/api/v1/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title="fairslot API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png")

    @app.get("/api/v1/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title="fairslot API",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)
