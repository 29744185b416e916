"""Text for people: the sorted score table with decisions, the random-init warning, the submit-dir summary."""
from __future__ import annotations

import csv
import io
import sys

THRESHOLD = 0.5  # op_norm calibrates every label so that its operating point is 0.5
BAR_WIDTH = 20
RANDOM_INIT_WARNING = "random-init weights: NOT FOR CLINICAL USE - these scores are meaningless"


def decision(score: float) -> str:
    return "positive" if score >= THRESHOLD else "negative"


def ranked(output: dict[str, float]) -> list[tuple[str, float]]:
    """Highest score first; ties in alphabetical label order, the API's own top_label rule (cxr_model.predictor),
    so the first row is always the top label."""
    return sorted(output.items(), key=lambda item: (-item[1], item[0]))


def is_random_init(result: dict) -> bool:
    return (result.get("model") or {}).get("weights") == "random-init"


def _bar_chars(stream) -> tuple[str, str]:
    encoding = (getattr(stream, "encoding", None) or "ascii").lower()
    return ("\u2588", "\u00b7") if encoding.startswith("utf") else ("#", ".")


def score_table(result: dict, stream=None) -> str:
    full, empty = _bar_chars(stream or sys.stdout)
    rows = ranked(result["output"])
    width = max(len(label) for label, _ in rows)
    lines = []
    if is_random_init(result):
        lines.append(f"WARNING: {RANDOM_INIT_WARNING}")
    model = result.get("model") or {}
    lines.append("model: " + ", ".join(f"{key}={model[key]}" for key in ("name", "weights", "engine") if key in model))
    scale = f"0{' ' * (BAR_WIDTH // 2 - 1)}|0.5".ljust(BAR_WIDTH - 1) + "1"
    lines.append(f"{'#':>2}  {'label':<{width}}  {'score':>5}  {'decision':<8}  {scale}")
    for rank, (label, score) in enumerate(rows, 1):
        filled = round(score * BAR_WIDTH)
        cells = [full] * filled + [empty] * (BAR_WIDTH - filled)
        if filled <= BAR_WIDTH // 2:
            cells[BAR_WIDTH // 2] = "|"  # the calibrated threshold, where the bar has not covered it
        bar = "".join(cells)
        lines.append(f"{rank:>2}  {label:<{width}}  {score:5.3f}  {decision(score):<8}  {bar}")
    positives = sum(score >= THRESHOLD for _, score in rows)
    lines.append(f"top label: {result.get('top_label', rows[0][0])}; {positives} of {len(rows)} positive "
                 f"at the calibrated threshold {THRESHOLD}")
    if model.get("intended_use"):
        lines.append(model["intended_use"])  # the service's own wording, never the client's
    return "\n".join(lines)


def models_table(listing: dict) -> str:
    """GET /v1/models for people: one block per model, the default marked, its findings listed."""
    lines = []
    for model in listing.get("models", []):
        mark = " (default)" if model.get("default") else ""
        lines.append(f"{model['name']}{mark}: weights {model.get('weights')}, "
                     f"{len(model.get('findings', []))} findings, input {model.get('input_size')} px")
        lines.append("  " + ", ".join(model.get("findings", [])))
        if model.get("warning"):
            lines.append(f"  WARNING: {model['warning']}")
    return "\n".join(lines)


def job_line(name: str, job: dict) -> str:
    status = job.get("status", "?")
    extra = " (cached)" if job.get("cached") else ""
    error = f" - {job['error']}" if job.get("error") else ""
    return f"{name}: job {job.get('id', '?')} {status}{extra}{error}"


def status_block(job: dict) -> str:
    lines = [f"id:         {job.get('id')}", f"status:     {job.get('status')}",
             f"created_at: {job.get('created_at')}", f"updated_at: {job.get('updated_at')}"]
    if job.get("error"):
        lines.append(f"error:      {job['error']}")
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> str:
    """One line per file: status, top label and score, how many labels are positive, job id."""
    headers = ("file", "status", "top label", "score", "positive", "job id")
    table = []
    for row in rows:
        result = row.get("result") or {}
        output = result.get("output") or {}
        top = ranked(output)[0] if output else None
        status = (row.get("status", "ERROR") + (" (cached)" if row.get("cached") else "")
                  + (" (earlier run)" if row.get("from_manifest") else ""))
        table.append((row["file"], status, top[0] if top else "-", f"{top[1]:.3f}" if top else "-",
                      f"{sum(s >= THRESHOLD for s in output.values())}/{len(output)}" if output else "-",
                      row.get("id") or row.get("error") or row.get("reason", "-")))
    widths = [max(len(str(cells[i])) for cells in [headers, *table]) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()
             for cells in [headers, *table]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    if any(is_random_init(row.get("result") or {}) for row in rows):
        lines.append(f"WARNING: {RANDOM_INIT_WARNING}")
    statements = {((row.get("result") or {}).get("model") or {}).get("intended_use") for row in rows} - {None}
    lines.extend(sorted(statements))
    return "\n".join(lines)


def jobs_table(jobs: list[dict]) -> str:
    """`cxr jobs`: one line per job, newest first as the server lists them."""
    headers = ("job id", "status", "created", "finished", "note")
    table = [(job["id"], job["status"], job.get("created_at", "-"), job.get("finished_at", "-"),
              "cached" if job.get("cached") else job.get("error", "")) for job in jobs]
    widths = [max(len(str(cells[i])) for cells in [headers, *table]) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)).rstrip()
             for cells in [headers, *table]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def counts_table(counts: dict[str, int]) -> str:
    """The submit-dir totals: completed / cached / failed / skipped."""
    names = ("completed", "cached", "failed", "skipped")
    widths = [max(len(name), len(str(counts[name]))) for name in names]
    lines = ["  ".join(name.rjust(w) for name, w in zip(names, widths)),
             "  ".join(str(counts[name]).rjust(w) for name, w in zip(names, widths))]
    if counts.get("from_manifest"):
        lines.append(f"({counts['from_manifest']} answered from the manifest of an earlier run, not uploaded again)")
    return "\n".join(lines)


MODEL_FIELDS = ("name", "weights", "weights_sha256", "engine", "preprocess", "precision")


def csv_text(rows: list[dict]) -> str:
    """One row per file: file, status, job, top label, the 18 scores (one column each), the model identity."""
    labels: list[str] = []
    for row in rows:
        for label in ((row.get("result") or {}).get("output") or {}):
            if label not in labels:
                labels.append(label)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "status", "cached", "job_id", "sha256", "error", "top_label", *labels,
                     *(f"model_{name}" for name in MODEL_FIELDS)])
    for row in rows:
        result = row.get("result") or {}
        output, model = result.get("output") or {}, result.get("model") or {}
        writer.writerow([row.get("file"), row.get("status"), bool(row.get("cached")), row.get("id") or "",
                         row.get("sha256") or "", row.get("error") or row.get("reason") or "",
                         result.get("top_label") or "", *(output.get(label, "") for label in labels),
                         *(model.get(name, "") for name in MODEL_FIELDS)])
    return buffer.getvalue()


def megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


class ProgressBar:
    """Redraws one line on a terminal; elsewhere (a pipe, CI logs) prints a line only when the count changes."""

    def __init__(self, total: int, stream=None, enabled: bool = True, width: int = 30) -> None:
        self.total, self.stream, self.enabled, self.width = total, stream or sys.stderr, enabled, width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last: tuple[int, int] | None = None

    def update(self, done: int, failed: int, elapsed_s: float, sent: int | None = None,
               total_bytes: int | None = None) -> None:
        if not self.enabled or (not self.tty and self._last == (done, failed)):
            return
        self._last = (done, failed)
        filled = self.width * done // max(self.total, 1)
        uploaded = f", {megabytes(sent)}/{megabytes(total_bytes)} uploaded" if total_bytes else ""
        line = (f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total} done"
                f"{f', {failed} failed' if failed else ''}{uploaded} {elapsed_s:5.1f}s")
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


class ByteProgress:
    """The upload of one large file: a redrawn bar on a terminal, a line every quarter elsewhere."""

    def __init__(self, label: str, total: int, stream=None, enabled: bool = True, width: int = 30) -> None:
        self.label, self.total, self.sent, self.width = label, max(total, 1), 0, width
        self.stream, self.enabled = stream or sys.stderr, enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._step = -1

    def __call__(self, count: int) -> None:
        self.sent = min(self.total, self.sent + count)
        if not self.enabled:
            return
        step = 4 * self.sent // self.total
        if not self.tty and step == self._step:
            return
        self._step = step
        filled = self.width * self.sent // self.total
        line = (f"{self.label}: [{'#' * filled}{'-' * (self.width - filled)}] "
                f"{megabytes(self.sent)}/{megabytes(self.total)} uploaded")
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        if self.tty and self.sent >= self.total:
            self.stream.write("\n")
        self.stream.flush()
