"""/docs: Swagger UI from the pinned swagger-ui-bundle-v2 package, served by journey itself.

FastAPI's default page loads Swagger UI from a CDN (a blank page offline, and a third party
learns who reads the docs); here every asset comes from this process.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# The package's own files only: its index.html and initializer would point elsewhere.
_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def assets_dir() -> Path:
    """Where the installed package keeps Swagger UI's built files."""
    return Path(swagger_ui_bundle.swagger_ui_path)


def install_docs(app: FastAPI) -> None:
    """GET /docs (the page) and /docs/assets/* (its script, style and icon)."""
    folder = assets_dir()
    missing = [name for name in _FILES if not (folder / name).is_file()]
    if missing:  # a broken install must fail at start, not show an empty page later
        raise RuntimeError(f"Swagger UI assets missing from {folder}: {', '.join(missing)}")
    app.mount(ASSETS, StaticFiles(directory=folder), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            # Swagger UI would otherwise send the document to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )
