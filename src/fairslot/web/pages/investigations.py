"""The investigator's pages: upload an export (a zip of the records folder), follow the
background investigation's progress, read its report and download its tables."""

from __future__ import annotations

import pathlib
import threading
from typing import Annotated

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import FileResponse, Response

from fairslot.domain.accounts import Role
from fairslot.domain.errors import FairslotError
from fairslot.services.investigations import Jobs
from fairslot.web import i18n
from fairslot.web.deps import DepsDep, get_deps
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
        return FileResponse(path, media_type="text/html", headers=_REPORT_HEADERS)
    return FileResponse(path, media_type="text/csv", filename=name,
                        headers={"Cache-Control": "no-store"})
