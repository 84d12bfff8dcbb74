"""The dashboard (SPEC 6.2): a static page at `/` and `/dashboard` that polls the analytics API.

The page is plain HTML, CSS and ES modules drawn with hand-made SVG: no CDN, no build step. The
router only serves files; every number on the page comes from the API with the user's token.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).parent / "static" / "dashboard"

_MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

# The token lives in localStorage, so the page allows scripts and connections to itself only.
_CSP = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: dict[str, str] = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def static_files() -> dict[str, Path]:
    """The files the dashboard serves, by name; nothing outside this directory is reachable."""
    return {
        p.name: p
        for p in STATIC_DIR.iterdir()
        if p.is_file() and p.suffix in _MEDIA_TYPES
    }


def dashboard_router() -> APIRouter:
    """Routes for the page (`/`, `/dashboard`) and its assets (`/static/dashboard/<file>`)."""
    router = APIRouter(tags=["dashboard"])
    files = static_files()
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(index, headers=_HEADERS)

    @router.get("/static/dashboard/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        path = files.get(name)
        if path is None:
            raise HTTPException(status_code=404, detail=f"no dashboard file {name!r}")
        return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=_HEADERS)

    return router
