"""The web page for asking: `GET /` (index.html), `GET /documents/{id}?s=N` (the same page,
opening a cited sentence) and `GET /static/*` (its script and style).

Plain files, no build step, nothing fetched from elsewhere (the Content-Security-Policy says
so to the browser). They need no API key (auth.py exempts them): the page itself asks for the
key when the API answers 401. Not part of the API, so not in the OpenAPI schema.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from service.api.links import PAGE_PREFIX

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Everything from this origin only; no inline script or style.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get(PAGE_PREFIX + "{document_id:path}", include_in_schema=False)
async def sentence_page(document_id: str) -> FileResponse:
    """The page, opening that document with sentence `?s=N` highlighted (links.py builds these
    links for chat frontends). The page loads the document itself, with the API key if needed,
    so this answers the same for any id and tells nothing about what is indexed."""
    return await page()


class _StaticFiles(StaticFiles):
    """Revalidated on every load (ETag), so an upgraded server never runs a stale script."""

    def file_response(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


router.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
