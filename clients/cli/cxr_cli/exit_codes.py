"""Exit codes that scripts can rely on; the help text and clients/README.md list the same table."""
from __future__ import annotations

OK = 0            # every job asked about completed (or the command did what it says)
JOB_FAILED = 1    # a job ended FAILED (the input was rejected by the model, or it hit the DLQ)
USAGE = 2         # bad arguments, or a local file that is missing, unreadable or not PNG/JPEG/DICOM
API_ERROR = 3     # the API answered with an error (4xx/5xx other than below) or could not be reached
TIMEOUT = 4       # --wait gave up after --timeout seconds; the job may still complete later
NOT_FOUND = 5     # no job with that id (404)
NOT_READY = 6     # `cxr result` on a job that is still QUEUED or IN_PROGRESS (409)

HELP = """exit codes:
  0  ok: every job completed (status: the job exists and has not failed)
  1  a job FAILED
  2  usage error, or a local file missing/unreadable/not PNG, JPEG or DICOM
  3  API error (an HTTP error answer, or the endpoint could not be reached)
  4  timed out waiting (--timeout); the job may still finish later
  5  no such job (404)
  6  result not ready yet: the job is still QUEUED or IN_PROGRESS
  With several files the largest code wins."""
