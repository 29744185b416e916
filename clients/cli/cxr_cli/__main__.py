"""`cxr` entry point: argument parsing, the four commands, and the mapping of every outcome to an exit code."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import exit_codes, render
from .api import DEFAULT_ENDPOINT, ApiError, Client
from .files import LocalFileError, find_images, read_image
from .jobs import finish_without_waiting, follow, overall_exit_code, upload_all

DESCRIPTION = """Submit chest X-rays (PNG, JPEG, DICOM) to the cxr-serverless API and read the 18 pathology scores.
Scores are calibrated (op_norm) so that 0.5 is each label's operating point: >= 0.5 is reported "positive"."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; this keeps the message format ours
        self.print_usage(sys.stderr)
        self.exit(exit_codes.USAGE, f"cxr: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", default=os.environ.get("CXR_ENDPOINT", DEFAULT_ENDPOINT),
                        help="API base URL (env CXR_ENDPOINT; default %(default)s)")
    common.add_argument("--api-key", default=os.environ.get("CXR_API_KEY"),
                        help="sent as the x-api-key header (env CXR_API_KEY)")
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                         help="how long to wait for jobs to finish (default %(default)g)")

    parser = _Parser(prog="cxr", description=DESCRIPTION, epilog=exit_codes.HELP,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    submit = commands.add_parser("submit", parents=[common, waiting], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 help="upload image files; with --wait, print their scores",
                                 description="Upload images. --json prints one JSON object per file per line.")
    submit.add_argument("files", nargs="+", type=Path, metavar="FILE")
    submit.add_argument("--wait", action="store_true", help="wait for the jobs and print their results")

    submit_dir = commands.add_parser("submit-dir", parents=[common, waiting], epilog=exit_codes.HELP,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     help="upload every image in a folder, wait, print a summary table",
                                     description="Upload every .png/.jpg/.jpeg/.dcm/.dicom file in DIR, show "
                                                 "progress on stderr, then a summary table (or JSON lines).")
    submit_dir.add_argument("directory", type=Path, metavar="DIR")
    submit_dir.add_argument("--recursive", "-r", action="store_true", help="include sub-folders")
    submit_dir.add_argument("--concurrency", type=int, default=4, help="parallel uploads (default %(default)d)")
    submit_dir.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    status = commands.add_parser("status", parents=[common, waiting], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter, help="show a job's status")
    status.add_argument("job_id", metavar="ID")
    status.add_argument("--wait", action="store_true", help="wait until the job is COMPLETED or FAILED")

    result = commands.add_parser("result", parents=[common, waiting], epilog=exit_codes.HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 help="show a completed job's scores")
    result.add_argument("job_id", metavar="ID")
    result.add_argument("--wait", action="store_true", help="wait for the job first instead of exiting 6")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client = Client(args.endpoint, args.api_key)
    command = {"submit": _submit, "submit-dir": _submit_dir, "status": _status, "result": _result}[args.command]
    try:
        return command(client, args)
    except LocalFileError as error:
        return _fail(str(error), exit_codes.USAGE)
    except ApiError as error:
        return _fail(str(error), error.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _submit(client: Client, args: argparse.Namespace) -> int:
    images = [read_image(path) for path in args.files]  # every file checked before anything is uploaded
    records = upload_all(client, images)
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
    images = [read_image(path) for path in find_images(args.directory, args.recursive)]
    progress = render.ProgressBar(len(images), enabled=not args.no_progress)
    started = time.monotonic()

    def show(records: list[dict]) -> None:
        done = [r for r in records if "exit_code" in r]
        progress.update(len(done), sum(r["exit_code"] != exit_codes.OK for r in done), time.monotonic() - started)

    show([])
    records = upload_all(client, images, args.concurrency)
    records = follow(client, records, args.timeout, on_progress=show)
    progress.close()
    for record in records:  # names relative to DIR read better in the table
        record["file"] = str(Path(record["file"]).relative_to(args.directory))
    if args.json:
        _print_json_lines(records)
    else:
        print(render.summary_table(records))
    return _report_errors(records)


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
