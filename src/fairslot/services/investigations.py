"""Investigations run from the pages: an uploaded export (a zip of the records folder,
docs/records-format.md) is unpacked and investigated in a background thread, with its
progress by stage, and the same outputs as ``fairslot investigate`` (suspects.csv,
rings.csv, report.html) kept under ``investigations_dir/<job>/out``.

The jobs of this process are in memory; their outputs stay on disk (a restart forgets a
running job, whose folder then has no report)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import shutil
import threading
import zipfile
from collections.abc import Callable
from typing import BinaryIO

from fairslot.csvsafe import private_file
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import InvalidInput, NotFound
from fairslot.services.accounts import require_role
from fairslot.services.deps import Deps

__all__ = ["MAX_UNPACKED_BYTES", "Job", "Jobs"]

MAX_UNPACKED_BYTES = 2 * 1024**3
STAGES = {"queued": 0, "unpacking": 5, "reading": 15, "investigating": 45, "writing": 90,
          "done": 100, "failed": 100}


@dataclasses.dataclass
class Job:
    id: str
    by: str
    started: dt.datetime
    stage: str = "queued"
    finished: dt.datetime | None = None
    error: str | None = None
    suspects: int = 0
    rings: int = 0
    folder: pathlib.Path = pathlib.Path()

    @property
    def progress(self) -> int:
        return STAGES[self.stage]

    @property
    def done(self) -> bool:
        return self.stage in ("done", "failed")

    def output(self, name: str, lang: str = "zh-CN") -> pathlib.Path:
        """An output file; the report in ``lang`` (Chinese, or ``en``: the report in English
        is written beside it as ``report.en.html``; a job run before it was has only the
        Chinese one)."""
        if name not in ("report.html", "suspects.csv", "rings.csv"):
            raise NotFound("no such output", code="output_not_found")
        path = self.folder / "out" / name
        english = self.folder / "out" / "report.en.html"
        if name == "report.html" and lang == "en" and english.is_file():
            path = english
        if self.stage != "done" or not path.is_file():
            raise NotFound("the investigation has no report yet", code="output_not_found")
        return path


def _unpack(archive: pathlib.Path, into: pathlib.Path) -> pathlib.Path:
    """Extract the records, refusing paths outside ``into`` and zip bombs; return the
    folder that holds the records (the archive's single top folder, if it has one)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
                raise InvalidInput("the export unpacks to more than 2 GB",
                                   code="export_too_large")
            for member in members:
                target = (into / member.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise InvalidInput("the export has a file outside its folder",
                                       code="export_bad_path")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile:
        raise InvalidInput("the export is not a zip file", code="export_not_zip") from None
    entries = [p for p in into.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return into


class Jobs:
    """The investigations of this process. ``start`` returns at once; a thread does the
    work and moves the job through its stages."""

    def __init__(self, deps: Deps, root: pathlib.Path,
                 runner: Callable[[Callable[[], None]], None] | None = None) -> None:
        self.deps = deps
        self.root = root
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._runner = runner or (lambda fn: threading.Thread(target=fn, daemon=True,
                                                             name="investigation").start())

    def start(self, account: Account, upload: BinaryIO, filename: str) -> Job:
        require_role(account, Role.INVESTIGATOR)
        if not filename.lower().endswith(".zip"):
            raise InvalidInput("upload the export as a .zip of its folder",
                               code="export_not_zip")
        now = self.deps.clock.now()
        job_id = now.strftime("%Y%m%d-%H%M%S-") + self.deps.random.token_hex(4)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        archive = folder / "export.zip"
        with archive.open("wb") as fh:
            shutil.copyfileobj(upload, fh)
        job = Job(job_id, account.username, now, folder=folder)
        with self._lock:
            self._jobs[job_id] = job
        self._runner(lambda: self._run(job, archive))
        return job

    def get(self, account: Account, job_id: str) -> Job:
        require_role(account, Role.INVESTIGATOR)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound("no such investigation", code="investigation_not_found")
        return job

    def all(self, account: Account) -> list[Job]:
        require_role(account, Role.INVESTIGATOR)
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def _run(self, job: Job, archive: pathlib.Path) -> None:
        # Heavy imports here: the pages load without dataframes.
        from fairslot.investigation.records import RecordsError, read_records
        from fairslot.investigation.report import RunInfo, render_report, write_outputs
        from fairslot.investigation.rules import Thresholds
        from fairslot.investigation.scoring import investigate

        zone = self.deps.settings.zone
        began = self.deps.clock.now().astimezone(zone)  # the report says when, in the zone
        try:
            job.stage = "unpacking"
            records_folder = _unpack(archive, job.folder / "in")
            job.stage = "reading"
            records = read_records(records_folder, zone=zone,
                                   access_min_clicks=Thresholds().clicks_per_minute,
                                   workdir=job.folder)
            job.stage = "investigating"
            result = investigate(records)
            job.stage = "writing"
            seconds = (self.deps.clock.now() - began).total_seconds()
            run = RunInfo(archive.name, began, seconds, zone.key)
            write_outputs(job.folder / "out", result, records, run)
            # The same report in English, for an investigator who reads the pages in it.
            english = job.folder / "out" / "report.en.html"
            private_file(english)
            english.write_text(render_report(result, records, run, lang="en"),
                               encoding="utf-8")
            job.suspects, job.rings = result.suspects.height, result.rings.height
            job.stage = "done"
        except (InvalidInput, RecordsError, ValueError, OSError) as exc:
            job.error = str(getattr(exc, "detail", None) or exc)
            job.stage = "failed"
        finally:
            job.finished = self.deps.clock.now()
