"""The bench harness's pure helpers: the percentile, CSV rows, multipart bodies, worker-log parsing, the sweep plan,
CPU windows, and the study registry."""
from __future__ import annotations

import csv
import json
import os
import time

import numpy as np
import pytest

from bench import harness, worker_log
from bench.__main__ import STUDIES, main as bench_main
from bench.capacity import latest_plateau, mean_task_s, offered_tasks_per_s
from bench.pools import multipart_body
from bench.saturation import plan
from bench.worker_log import CompletionTail
from cxr_core.request_body import parse_upload


@pytest.mark.parametrize("values", [[5.0], [3.0, 1.0, 2.0], list(range(1, 101)), [0.5, 100.0, 7.25, 7.25, 9.0]])
@pytest.mark.parametrize("q", [0, 50, 95, 99, 100])
def test_percentile_matches_numpy_linear(values, q):
    assert harness.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_and_summary_of_nothing():
    assert harness.percentile([], 50) is None
    assert harness.summarize([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "min": None,
                                     "max": None}


def test_summary_of_known_values():
    stats = harness.summarize([10.0, 20.0, 30.0, 40.0])
    assert (stats["n"], stats["p50"], stats["mean"], stats["min"], stats["max"]) == (4, 25.0, 25.0, 10.0, 40.0)
    assert stats["p95"] == pytest.approx(38.5)  # interpolated, as numpy's default: the one definition for every study


def test_write_csv_takes_the_union_of_columns(tmp_path):
    path = harness.write_csv(tmp_path / "out" / "rows.csv", [{"users": 10, "p50": 1.5}, {"users": 20, "p95": 9.0}])
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"users": "10", "p50": "1.5", "p95": ""}, {"users": "20", "p50": "", "p95": "9.0"}]


def test_multipart_body_is_what_the_submit_parser_reads():
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    body, content_type = multipart_body(image)
    upload = parse_upload(content_type, body, 10 * 1024 * 1024)
    assert upload.data == image


WORKER_LOG = """2026-11-28 10:25:40,001 infer-worker-0 cxr.worker WARNING worker 11 ready: model m
2026-11-28 10:25:41,250 infer-worker-1 cxr_core.services.infer INFO job aaa completed
{"_aws":{},"BatchSize":[2.0],"JobsCompleted":[2.0]}
{"_aws":{},"BatchSize":[0.0],"JobsCompleted":[0.0]}
2026-11-28 10:25:41,750 infer-worker-0 cxr_core.services.infer INFO job bbb completed (delivery 2)
2026-11-28 10:25:42,000 infer-worker-0 cxr_core.services.infer ERROR job ccc failed for good after 3 deliveries
"""


def test_worker_log_completions_and_batch_sizes(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(WORKER_LOG)
    done = worker_log.completions(log)
    assert [job for _, job in done] == ["aaa", "bbb"]
    assert done[1][0] - done[0][0] == pytest.approx(0.5)
    assert worker_log.batch_sizes(log) == [2]
    assert worker_log.completions(tmp_path / "missing.log") == []


def test_completion_tail_counts_only_whole_new_lines(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text(WORKER_LOG + "2026-11-28 10:25:43,000 infer-worker-0 cxr_core.services.infer INFO job ddd comp")
    tail = CompletionTail(log)
    assert tail.poll() == 2
    with open(log, "a") as handle:
        handle.write("leted\n")
    assert tail.poll() == 3
    assert tail.poll() == 3


def test_sweep_plan():
    assert plan([1, 2, 4, 8], [0.0, 0.05, 1.0], grid=False) == [(1, 0.0), (2, 0.0), (4, 0.0), (8, 0.0), (8, 0.05),
                                                                 (8, 1.0)]
    assert len(plan([1, 2, 4, 8], [0.0, 0.05, 0.2, 1.0], grid=True)) == 16


def test_a_closed_loop_offers_no_more_than_users_over_pause_plus_task_time(tmp_path):
    assert offered_tasks_per_s(50, 0) == pytest.approx(25.0)  # the seed's 1-3 s pause, mean 2 s
    assert offered_tasks_per_s(50, 0.5) == pytest.approx(20.0)
    e2e = {"cache_miss": harness.summarize([300.0, 500.0]), "cache_hit": harness.summarize([20.0]),
           "empty": harness.summarize([])}
    assert mean_task_s(e2e) == pytest.approx(0.82 / 3)
    assert latest_plateau(tmp_path) is None
    rows = [{"stack_jobs_per_s": 17.0, "batch_size": 1, "window_s": 0}, {"stack_jobs_per_s": 20.5, "batch_size": 8,
                                                                          "window_s": 0.05}]
    (tmp_path / "bench_saturation-20260101T000000Z.json").write_text(json.dumps({"when": "old", "rows": rows[:1]}))
    (tmp_path / "bench_saturation-20260102T000000Z.json").write_text(json.dumps({"when": "new", "rows": rows}))
    assert latest_plateau(tmp_path) == {"when": "new", "jobs_per_s": 20.5, "batch_size": 8, "window_s": 0.05}


def test_clinical_mix_variants_change_the_bytes_not_the_pixels():
    """Every upload of the clinical mix is a cache miss (new SHA-256) that decodes to the same pixels."""
    from bench.clinical_mix import unique_variant

    from cxr_model import check_image
    from cxr_model.preprocess import preprocess
    from tests.model_support import dicom_bytes, jpeg_bytes, png_bytes, synthetic_radiograph

    grey = synthetic_radiograph(96, 80, 4095, seed=3)
    for data in (png_bytes(grey), jpeg_bytes((grey >> 4).astype(np.uint8)), dicom_bytes(grey, bits_stored=12)):
        first, second = unique_variant(data, 1), unique_variant(data, 2)
        assert len({data, first, second}) == 3
        check_image(first)
        assert np.array_equal(preprocess(first), preprocess(data))  # DICOM: last row changed, outside the crop


def test_cpu_window_counts_only_the_window():
    end = time.process_time() + 0.3
    while time.process_time() < end:  # spent before the window opens
        pass
    with harness.CpuWindow({"me": [os.getpid()], "gone": [2 ** 22 + 12345]}) as cpu:
        sum(range(100_000))
    assert 0 <= cpu.seconds["me"] < 0.2 and cpu.seconds["gone"] == 0.0
    assert cpu.wall_s > 0 and set(cpu.cores) == {"me", "gone"}
    assert cpu.ms_per(0) == {role: 1000 * seconds for role, seconds in cpu.seconds.items()}
    appearing = [[]]  # a process that appears during the window counts from zero: all it has spent
    with harness.CpuWindow(lambda: {"late": appearing[0]}) as late:
        appearing[0] = [os.getpid()]
    assert late.seconds["late"] >= 0.3 and late.base == {}


def test_every_study_is_listed_and_imports(capsys):
    assert bench_main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name, (module, _) in STUDIES.items():
        assert f"  {name} " in listed
        assert callable(__import__(f"bench.{module}", fromlist=["main"]).main), name
    assert bench_main(["no-such-study"]) == 2
