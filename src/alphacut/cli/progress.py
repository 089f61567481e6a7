"""Batch progress on the terminal: two rich bars, or plain log lines, and the closing summary.

``run_batch`` (``jobs.batch``) reports through a ``BatchProgress``; these are the command
line's. The job engine and the batch runner never print.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ..jobs.batch import BatchProgress, BatchSummary
from ..jobs.state import JobEvent


class Reporter(BatchProgress):
    """Plain log lines (not a terminal, or ``--json``): each file as it finishes, with the
    batch's rate, ETA and failures so far — the rich one draws bars instead."""

    def __init__(self, total: int, stream: Any = None, *, json_lines: bool = False) -> None:
        super().__init__(total)
        self.stream = stream or sys.stderr
        self.json_lines = json_lines
        self.t0 = time.monotonic()
        self.failures = 0

    def start(self) -> None:
        self.t0 = time.monotonic()

    def finished(self, rec: dict[str, Any]) -> None:
        self.count += 1
        if self.json_lines:
            print(json.dumps(rec, ensure_ascii=False), file=sys.stdout, flush=True)
            return
        if rec["status"] == "done":
            line = f"[{self.count}/{self.total}] done   {rec['input']} → {rec['output']} ({rec.get('seconds', 0):.1f} s)"
        else:
            self.failures += 1
            line = f"[{self.count}/{self.total}] {rec['status']:<6} {rec.get('reason') or rec['input']}"
        print(f"{line}{self._pace()}", file=self.stream, flush=True)

    def _pace(self) -> str:
        """`` · 12.0/min, ETA 1:05, 1 failed``: the rate over the batch so far and what it leaves."""
        elapsed = time.monotonic() - self.t0
        if self.count < 2 or elapsed <= 0:
            return ""
        rate = self.count / elapsed
        left = max(0, self.total - self.count) / rate
        eta = f"{int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}" if left >= 3600 else \
            f"{int(left // 60)}:{int(left % 60):02d}"
        failed = f", {self.failures} failed" if self.failures else ""
        return f" · {rate * 60:.1f}/min, ETA {eta}{failed}"


class RichReporter(Reporter):
    """Two bars on a terminal: the whole batch (files, rate, ETA) and the file being worked on."""

    def __init__(self, total: int, stream: Any = None) -> None:
        super().__init__(total, stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(file=self.stream)
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False, refresh_per_second=8,
        )
        self.overall = self.progress.add_task("batch", total=total, rate="")
        self.current = self.progress.add_task("", total=1.0, rate="")
        self.t0 = time.monotonic()
        self._stages = {s: i for i, s in enumerate(("decoding", "inferring", "refining", "encoding", "verifying"))}

    def start(self) -> None:
        super().start()
        self.progress.update(self.overall, total=self.total)  # known only once the batch is planned
        self.progress.start()

    def event(self, ev: JobEvent) -> None:
        idx = self._stages.get(ev.stage.value)
        if idx is None:
            return
        frac = (idx + ev.progress) / len(self._stages)
        name = ev.job.get("name", "")
        short = name if len(name) <= 40 else "…" + name[-39:]
        self.progress.update(self.current, completed=frac, description=f"{short} [{ev.stage.value}]")

    def finished(self, rec: dict[str, Any]) -> None:
        self.count += 1
        mins = max(1e-6, (time.monotonic() - self.t0) / 60)
        self.progress.update(self.overall, advance=1, rate=f"{self.count / mins:.1f}/min")
        if rec["status"] != "done":
            self.progress.console.print(f"[red]{rec['status']}[/red] {rec.get('reason') or rec['input']}", markup=True, highlight=False)

    def stop(self) -> None:
        self.progress.stop()


def print_summary(summary: BatchSummary, stream: Any = None) -> None:
    """The closing lines of ``alphacut remove ... -o OUT``: counts, time, manifest, every failure."""
    out = stream or sys.stderr
    parts = [f"{summary.done} of {summary.total} done"]
    if summary.skipped_done:
        parts.append(f"{summary.skipped_done} already done before")
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    if summary.interrupted:
        parts.append(f"stopped with {summary.not_run} not processed (run again with --resume)")
    print(f"alphacut: {', '.join(parts)} in {summary.seconds:.1f} s; manifest: {summary.manifest}", file=out)
    if summary.manifest_error:
        print(f"  {summary.manifest_missing} record(s) could not be written to the manifest "
              f"({summary.manifest_error}); --resume redoes those files", file=out)
    for rec in summary.failed:
        print(f"  failed: {rec.get('reason') or rec['input']} [{rec.get('code')}]", file=out)
