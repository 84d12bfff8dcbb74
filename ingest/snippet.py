"""The website snippet (SPEC 1.1): serves `journey.js` and renders the copy-paste loader tag."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request, Response

# Revalidated with the ETag after five minutes, so a new release reaches every site quickly.
CACHE_CONTROL = "public, max-age=300, stale-while-revalidate=86400"

# ES5 on purpose: the tag runs inline on every page, in whatever browser the visitor has.
_TAG = """<script>
!function(w,d,k,o){{var j=w.journey=w.journey||[];if(j.initialized||j.invoked)return;j.invoked=!0;
["init","page","track","identify","alias","group","reset"].forEach(function(m){{j[m]=function(){{
j.push([m,Array.prototype.slice.call(arguments),Date.now()]);return j}}}});
var s=d.createElement("script");s.async=!0;s.src=o.host+"/journey.js";
var f=d.getElementsByTagName("script")[0];f.parentNode.insertBefore(s,f);
j.init(k,o);j.page()}}(window,document,{write_key},{options});
</script>"""


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file held in memory with its validator and a gzipped copy."""

    body: bytes
    gzipped: bytes
    etag: str


def load_script() -> Asset:
    """journey.js as shipped in the package, with its ETag and gzipped form."""
    body = resources.files("ingest").joinpath("static/journey.js").read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Asset(body=body, gzipped=gzip.compress(body, mtime=0), etag=f'W/"{digest}"')


def snippet_tag(host: str, write_key: str, **options: int) -> str:
    """The loader tag for a page's <head>; host "" = the page's own origin; options go to init."""
    settings = {"host": host.rstrip("/"), **options}
    return _TAG.format(write_key=_js(write_key), options=_js(settings))


def _js(value: object) -> str:
    # "<" escaped so that no value can close the <script> element it is pasted into.
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def _etag_matches(header: str, etag: str) -> bool:
    # Weak comparison (RFC 9110 13.1.2): the gzipped and plain bodies share one validator.
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag.removeprefix("W/") in candidates


def snippet_router() -> APIRouter:
    """GET /journey.js with caching headers, ETag revalidation and gzip when accepted."""
    asset = load_script()
    router = APIRouter()

    @router.api_route("/journey.js", methods=["GET", "HEAD"], include_in_schema=False)
    def journey_js(request: Request) -> Response:
        headers = {"ETag": asset.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        if _etag_matches(request.headers.get("if-none-match", ""), asset.etag):
            return Response(status_code=304, headers=headers)
        body = asset.body
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type="application/javascript", headers=headers)

    return router
