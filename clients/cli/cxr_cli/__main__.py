"""`cxr` entry point: argument parsing, the commands, and the mapping of every outcome to an exit code."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import batch, exit_codes, render
from .api import DEFAULT_ENDPOINT, INLINE_LIMIT_BYTES, ApiError, Client
from .files import LocalFileError, read_image, scan_folder
from .jobs import finish_without_waiting, follow, overall_exit_code, upload_all

DESCRIPTION = """Submit chest X-rays (PNG, JPEG, DICOM) to the cxr-serverless API and read the 18 pathology scores.
Scores are calibrated (op_norm) so that 0.5 is each label's operating point: >= 0.5 is reported "positive"."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; this keeps the message format ours
        self.print_usage(sys.stderr)
        self.exit(exit_codes.USAGE, f"cxr: error: {message}\n")


def _connection_options(parser: argparse.ArgumentParser, default) -> None:
    """Before the command (`cxr --endpoint URL submit F`) or after it; after wins. Inside a command the
    defaults are SUPPRESS, so an option given only before the command is not overwritten by them."""
    parser.add_argument("--endpoint", default=default(os.environ.get("CXR_ENDPOINT", DEFAULT_ENDPOINT)),
                        help=f"API base URL; no scheme means http:// (env CXR_ENDPOINT; default {DEFAULT_ENDPOINT})")
    parser.add_argument("--api-key", default=default(os.environ.get("CXR_API_KEY")),
                        help="sent as the x-api-key header (env CXR_API_KEY)")
    parser.add_argument("--inline-limit", type=int, metavar="BYTES",
                        default=default(int(os.environ.get("CXR_INLINE_LIMIT", INLINE_LIMIT_BYTES))),
                        help="larger files go through a presigned S3 upload instead of the request body "
                             f"(env CXR_INLINE_LIMIT; default {INLINE_LIMIT_BYTES}: Lambda's 6 MB event "
                             "limit after base64)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, lambda value: argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--model", default=os.environ.get("CXR_MODEL"), metavar="NAME",
                        help="the served model to read the images with (env CXR_MODEL; `cxr models` lists them; "
                             "default: the deployment's default)")
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                         help="how long to wait for jobs to finish (default %(default)g)")

    parser = _Parser(prog="cxr", description=DESCRIPTION, epilog=exit_codes.HELP,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _connection_options(parser, lambda value: value)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    submit = commands.add_parser("submit", parents=[common, waiting], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 help="upload image files; with --wait, print their scores",
                                 description="Upload images. --json prints one JSON object per file per line.")
    submit.add_argument("files", nargs="+", type=Path, metavar="FILE")
    submit.add_argument("--wait", action="store_true", help="wait for the jobs and print their results")
    submit.add_argument("--no-progress", action="store_true", help="no upload progress bar on stderr")

    submit_dir = commands.add_parser("submit-dir", parents=[common, waiting], epilog=exit_codes.HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     help="upload every image in a folder, wait, print a summary table",
                                     description="Upload every PNG, JPEG and DICOM file in DIR (DICOM recognised "
                                                 "by its bytes, with or without an extension; other files and DICOMs "
                                                 "without pixel data are skipped and listed), show progress on stderr, "
                                                 "then a table per file and the totals. Resumable: files already "
                                                 "COMPLETED in the manifest are not uploaded again.")
    submit_dir.add_argument("directory", type=Path, metavar="DIR")
    submit_dir.add_argument("--recursive", "-r", action="store_true", help="include sub-folders")
    submit_dir.add_argument("--concurrency", type=int, default=4,
                            help="files uploaded and followed at once (default %(default)d)")
    submit_dir.add_argument("--no-progress", action="store_true",
                            help="nothing on stderr but errors (no progress bar, no skipped-file report)")
    submit_dir.add_argument("--manifest", type=Path, metavar="PATH",
                            help=f"resume record, one JSON line per finished file keyed by SHA-256, server and model "
                                 f"(default DIR/{batch.MANIFEST_NAME})")
    submit_dir.add_argument("--format", choices=("table", "jsonl", "csv"), default=None,
                            help="stdout: table (default), jsonl (= --json) or csv (one row per file: the 18 scores "
                                 "and the model identity)")

    status = commands.add_parser("status", parents=[common, waiting], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter, help="show a job's status")
    status.add_argument("job_id", metavar="ID")
    status.add_argument("--wait", action="store_true", help="wait until the job is COMPLETED or FAILED")

    result = commands.add_parser("result", parents=[common, waiting], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 help="show a completed job's scores")
    result.add_argument("job_id", metavar="ID")
    result.add_argument("--wait", action="store_true", help="wait for the job first instead of exiting 6")

    commands.add_parser("models", parents=[common], epilog=exit_codes.HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        help="list the models this deployment serves, with the findings each reports")

    heatmap = commands.add_parser("heatmap", parents=[common], epilog=exit_codes.HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  help="save where the model looked for a finding, as a PNG overlay",
                                  description="Save a completed job's class activation map for one finding (default: "
                                              "the top finding) over the 224 x 224 image the model saw: a map of the "
                                              "finding's logit, before the sigmoid and the calibration. --json "
                                              "prints the raw 7 x 7 grid instead.")
    heatmap.add_argument("job_id", metavar="ID")
    heatmap.add_argument("--label", help="the finding (as the result names it); default: the top finding")
    heatmap.add_argument("-o", "--output", type=Path, metavar="FILE", help="the PNG to write (required without --json)")
    heatmap.add_argument("--opacity", type=float, default=None, metavar="0..1",
                         help="0: the image alone, 1: the map alone (default: the API's, 0.5)")
    jobs = commands.add_parser("jobs", parents=[common], epilog=exit_codes.HELP,
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               help="list your own jobs, newest first",
                               description="List the jobs of your API key's client, newest first (also those "
                                           "submitted from elsewhere: the web page, another machine).")
    jobs.add_argument("--limit", type=int, default=20, help="jobs per page, 1-100 (default %(default)d)")
    jobs.add_argument("--status", choices=("QUEUED", "IN_PROGRESS", "COMPLETED", "FAILED"))
    jobs.add_argument("--since", metavar="TIME", help="created at or after this ISO-8601 time (e.g. 2026-12-01T00:00Z)")
    jobs.add_argument("--until", metavar="TIME", help="created at or before this ISO-8601 time")
    jobs.add_argument("--all", action="store_true", help="follow the pages to the end")
    jobs.add_argument("--cursor", help="start at this page (a next_cursor printed by an earlier --json run)")

    delete = commands.add_parser("delete", parents=[common], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 help="erase jobs: their results, cache entries and (unless another job needs "
                                      "them) their images",
                                 description="DELETE /v1/jobs/{id} for each ID: the job, its result, its cache entry, "
                                             "derived objects and the stored image unless another job still needs "
                                             "it. A job still running is cancelled. An ID already deleted (or not "
                                             "yours) exits 5.")
    delete.add_argument("job_ids", nargs="+", metavar="ID")

    watch = commands.add_parser("watch", epilog=exit_codes.HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                                help="print job events pushed to an SQS queue (instead of polling)",
                                description="Read completion/failure events from an SQS queue the operator subscribed "
                                            "to the service's job-events topic for your client (`python -m "
                                            "cxr_core.admin events subscribe`). One line per event, each event once "
                                            "(deduplicated by event_id). Uses the AWS credentials of the queue's owner.")
    watch.add_argument("--queue-url", required=True, help="the subscribed SQS queue")
    watch.add_argument("--aws-endpoint", default=None,
                       help="AWS endpoint for SQS (env AWS_ENDPOINT_URL; e.g. the local stack's moto)")
    watch.add_argument("--count", type=int, default=None, help="stop after this many events")
    watch.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="stop after this long (exit 4 if --count events did not arrive)")
    watch.add_argument("--json", action="store_true", help="each event as a JSON line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "watch":
        from .watch import watch
        try:
            return watch(args.queue_url, args.aws_endpoint, args.count, args.timeout, args.json)
        except KeyboardInterrupt:
            return 130
    command = {"submit": _submit, "submit-dir": _submit_dir, "status": _status, "result": _result,
               "heatmap": _heatmap, "models": _models, "jobs": _jobs, "delete": _delete}[args.command]
    try:
        client = Client(args.endpoint, args.api_key, inline_limit=args.inline_limit, model=args.model)
        return command(client, args)
    except LocalFileError as error:
        return _fail(str(error), exit_codes.USAGE)
    except ApiError as error:
        return _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _submit(client: Client, args: argparse.Namespace) -> int:
    images = [read_image(path) for path in args.files]  # every file checked before anything is uploaded
    large = sum(len(image.data) for image in images if len(image.data) > client.inline_limit)
    progress = render.ByteProgress("upload", sum(len(image.data) for image in images),
                                   enabled=bool(large) and not args.no_progress)
    records = upload_all(client, images, progress=progress)
    records = follow(client, records, args.timeout) if args.wait else finish_without_waiting(records)
    if args.json:
        _print_json_lines(records)
    else:
        for index, record in enumerate(records):
            if index and (args.wait or record.get("result")):
                print()
            _print_record(record)
    return _report_errors(records)


def _submit_dir(client: Client, args: argparse.Namespace) -> int:
    files, skipped = scan_folder(args.directory, args.recursive)
    if not files and not skipped:
        raise LocalFileError(f"{args.directory}: no files")
    output = args.format or ("jsonl" if args.json else "table")
    try:  # one authenticated call first: a wrong key or a dead server fails the run, whatever the manifest holds
        client.jobs(limit=1)
        scope = batch.manifest_scope(client.endpoint, client.health(), client.models() if client.model else None,
                                     client.model)
    except ApiError as error:
        return _fail(f"{error} (nothing was sent; no earlier answer was used)", error.exit_code)
    manifest = batch.Manifest(args.manifest or args.directory / batch.MANIFEST_NAME, scope)
    if not args.no_progress:
        for path, reason in skipped:
            print(f"cxr: skipped {path.relative_to(args.directory)}: {reason}", file=sys.stderr)
    progress = render.ProgressBar(len(files), enabled=not args.no_progress)
    total_bytes = sum(path.stat().st_size for path in files)
    started = time.monotonic()

    def show(records: list[dict], sent: int) -> None:
        progress.update(len(records), sum(r["exit_code"] != exit_codes.OK for r in records),
                        time.monotonic() - started, sent, total_bytes)

    interrupted = False
    try:
        records = batch.run(client, files, manifest, args.concurrency, args.timeout, show)
    except batch.Interrupted as stop:
        records, interrupted = stop.args[0], True
    progress.close()
    totals = batch.counts(records, len(skipped))
    rows = records + [{"file": str(path), "status": "SKIPPED", "reason": reason} for path, reason in skipped]
    for row in rows:  # names relative to DIR read better in the table
        row["file"] = str(Path(row["file"]).relative_to(args.directory))
    rows.sort(key=lambda row: row["file"])
    if output == "jsonl":
        _print_json_lines(rows)
    elif output == "csv":
        sys.stdout.write(render.csv_text(rows))
    else:
        print(render.summary_table(rows))
        print()
        print(render.counts_table(totals))
    if output != "table" and not args.no_progress:
        print(render.counts_table(totals), file=sys.stderr)
    code = _report_errors(records)
    if interrupted:
        return _fail(f"interrupted after {len(records)} of {len(files)} files; run the same command again to "
                     f"resume ({manifest.path} keeps what finished)", 130)
    return code


def _status(client: Client, args: argparse.Namespace) -> int:
    job = client.wait(args.job_id, args.timeout) if args.wait else client.job(args.job_id)
    print(json.dumps(job) if args.json else render.status_block(job))
    return exit_codes.JOB_FAILED if job.get("status") == "FAILED" else exit_codes.OK


def _result(client: Client, args: argparse.Namespace) -> int:
    if args.wait:
        job = client.wait(args.job_id, args.timeout)
        if job.get("status") == "FAILED":
            return _fail(f"job {args.job_id} FAILED: {job.get('error', 'no reason given')}", exit_codes.JOB_FAILED)
    try:
        result = client.result(args.job_id)
    except ApiError as error:
        if error.exit_code != exit_codes.NOT_READY:
            raise
        job = client.job(args.job_id)
        if job.get("status") == "FAILED":
            return _fail(f"job {args.job_id} FAILED: {job.get('error', 'no reason given')}", exit_codes.JOB_FAILED)
        return _fail(f"job {args.job_id} is {job.get('status')}; no result yet (try --wait)", exit_codes.NOT_READY)
    print(json.dumps(result) if args.json else render.score_table(result))
    return exit_codes.OK


def _models(client: Client, args: argparse.Namespace) -> int:
    listing = client.models()
    print(json.dumps(listing) if args.json else render.models_table(listing))
    return exit_codes.OK


def _heatmap(client: Client, args: argparse.Namespace) -> int:
    if args.json:
        print(client.heatmap(args.job_id, args.label, fmt="json").decode("utf-8"))
        return exit_codes.OK
    if args.output is None:
        return _fail("heatmap: give -o FILE for the PNG (or --json for the raw grid)", exit_codes.USAGE)
    png = client.heatmap(args.job_id, args.label, opacity=args.opacity)
    args.output.write_bytes(png)
    print(f"{args.output}: {args.label or 'top finding'} of job {args.job_id} ({len(png)} bytes)")
    return exit_codes.OK


def _jobs(client: Client, args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 100:
        return _fail("--limit must be from 1 to 100", exit_codes.USAGE)
    listed, cursor = [], args.cursor
    while True:
        page = client.jobs(args.limit, cursor, args.status, args.since, args.until)
        listed += page.get("jobs", [])
        cursor = page.get("next_cursor")
        if not (args.all and cursor):
            break
    if args.json:
        print(json.dumps({"jobs": listed, "next_cursor": cursor}))
    else:
        print(render.jobs_table(listed) if listed else "no jobs")
        if cursor:
            print(f"more: cxr jobs --cursor {cursor} (or --all)")
    return exit_codes.OK


def _delete(client: Client, args: argparse.Namespace) -> int:
    code = exit_codes.OK
    for job_id in args.job_ids:
        try:
            client.delete(job_id)
        except ApiError as error:
            print(f"cxr: {job_id}: {error}", file=sys.stderr)
            code = max(code, error.exit_code)
            continue
        print(json.dumps({"id": job_id, "deleted": True}) if args.json else f"deleted {job_id}")
    return code


def _print_record(record: dict) -> None:
    name = Path(record["file"]).name
    if record.get("status") == "ERROR":
        return  # reported on stderr
    print(render.job_line(name, record))
    if record.get("result"):
        print(render.score_table(record["result"]))


def _print_json_lines(records: list[dict]) -> None:
    for record in records:
        print(json.dumps(record))


def _report_errors(records: list[dict]) -> int:
    for record in records:
        if record["exit_code"] != exit_codes.OK and record.get("error"):
            print(f"cxr: {record['file']}: {record['error']}", file=sys.stderr)
    return overall_exit_code(records)


def _fail(message: str, code: int) -> int:
    print(f"cxr: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
