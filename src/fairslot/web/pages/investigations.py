"""The investigator's pages: upload an export (a zip of the records folder), follow the
background investigation's progress, read its report and download its tables."""

from __future__ import annotations

import pathlib
import threading
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response
from markupsafe import Markup

from fairslot.domain.accounts import Role
from fairslot.domain.errors import FairslotError
from fairslot.services.investigations import Jobs
from fairslot.web import i18n
from fairslot.web.deps import DepsDep, get_deps
from fairslot.web.i18n import N_
from fairslot.web.pages.common import Viewer, check_csrf, page_router, redirect, render

__all__ = ["router"]

router = page_router()
_create = threading.Lock()

# The report is the investigation's own HTML (inline styles, no scripts): served in a
# sandbox, so nothing in it can act as this site.
_REPORT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; sandbox",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def investigation_jobs(request: Request) -> Jobs:
    """The investigation jobs of this application (made on first use)."""
    with _create:
        jobs: Jobs | None = getattr(request.app.state, "investigations", None)
        if jobs is None:
            deps = get_deps(request)
            jobs = Jobs(deps, pathlib.Path(deps.settings.investigations_dir))
            request.app.state.investigations = jobs
    return jobs


@router.get("/investigations")
def investigations(request: Request, who: Viewer) -> Response:
    account = who.logged_in(Role.INVESTIGATOR)
    return render(request, "investigations.html", jobs=investigation_jobs(request).all(account))


@router.post("/investigations")
def start(request: Request, who: Viewer, deps: DepsDep,
          csrf: Annotated[str, Form()] = "",
          export: Annotated[UploadFile | None, File()] = None) -> Response:
    account = who.logged_in(Role.INVESTIGATOR)
    check_csrf(request, csrf)
    jobs = investigation_jobs(request)
    try:
        if export is None or not export.filename:
            raise FairslotError("choose the export's .zip file", code="export_missing")
        job = jobs.start(account, export.file, export.filename)
    except FairslotError as exc:
        return render(request, "investigations.html", status=exc.status, error=exc,
                      jobs=jobs.all(account))
    return redirect(f"/investigations/{job.id}")


@router.get("/investigations/{job_id}")
def job_page(job_id: str, request: Request, who: Viewer) -> Response:
    account = who.logged_in(Role.INVESTIGATOR)
    job = investigation_jobs(request).get(account, job_id)
    return render(request, "investigation.html", job=job)


@router.get("/investigations/{job_id}/{name}")
def output(job_id: str, name: str, request: Request, who: Viewer) -> Response:
    account = who.logged_in(Role.INVESTIGATOR)
    # The report in the language the investigator reads the pages in.
    lang = "en" if i18n.of_request(request).code == "en" else "zh-CN"
    path = investigation_jobs(request).get(account, job_id).output(name, lang)
    if name == "report.html":
        return HTMLResponse(_with_navigation(path.read_text(encoding="utf-8"), job_id,
                                             i18n.of_request(request)),
                            headers=_REPORT_HEADERS)
    return FileResponse(path, media_type="text/csv", filename=name,
                        headers={"Cache-Control": "no-store"})


def _with_navigation(report: str, job_id: str, lang: i18n.Language) -> str:
    """The report with the site's way back at its top: the file itself stands alone (it is
    also read offline), so the links are added only where the site serves it. Plain links
    and inline styles, as the report's sandbox allows."""
    links = [(f"/investigations/{job_id}", i18n.translate(lang, N_("Back to the investigation"))),
             ("/investigations", i18n.translate(lang, N_("Investigations"))),
             ("/", i18n.translate(lang, N_("Home")))]
    nav = Markup('<nav aria-label="%s" style="display:flex;flex-wrap:wrap;gap:.4em 1.2em;'
                 'padding:.5em 0;margin-bottom:.5em;border-bottom:1px solid #ccc">%s</nav>') % (
        i18n.translate(lang, N_("Main")),
        Markup("").join(Markup('<a href="%s">%s</a>') % (href, text) for href, text in links))
    head, found, rest = report.partition("<body>")
    if not found:
        return str(nav) + report
    return head + found + "\n" + str(nav) + rest
