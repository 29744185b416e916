"""The GPU study's every step, run on the CPU (--device cpu), so the command left for a GPU machine cannot rot."""
from __future__ import annotations

import json

import pytest

from tests.model_support import built_model_dir


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from bench import gpu

    out = tmp_path_factory.mktemp("gpu") / "gpu_study.json"
    model_dir = built_model_dir(str(tmp_path_factory.mktemp("model")))
    assert gpu.main(["--device", "cpu", "--model-dir", model_dir, "--batches", "1,2", "--runs", "1",
                           "--warmup", "0", "--clinical", "2", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def test_it_reports_throughput_per_batch_size_in_fp32_with_tf32_off(result):
    assert set(result["forward_images_per_s"]) == {"1", "2"}
    assert all(rate > 0 for rate in result["forward_images_per_s"].values())
    assert result["precision"] == "fp32" and result["tf32"] == {"matmul": False, "cudnn": False}
    assert result["weights"] == "random-init" and result["device_name"] == "cpu"
    assert result["cpu_engine"] == "onnxruntime" and result["build_error"] is None and result["skipped_inputs"] == {}


def test_the_device_engine_and_pipeline_stay_within_1e4_of_the_cpu_engine(result):
    for name, found in result["deviation_vs_cpu_engine"].items():
        assert found["images"] >= 2, name
        assert found["engine_max_abs_delta_p"] <= 1e-4 and found["pipeline_max_abs_delta_p"] <= 1e-4, name
        assert found["saturated_fraction"] < 0.5  # the stand-in's scores move: the comparison is not vacuous


def test_it_sizes_the_cpu_cores_a_device_needs_from_measured_decode_costs(result):
    costs = result["cpu_decode_single_thread"]
    assert len(costs) == 2 and all(0 < c["decode_crop_ms"] < c["preprocess_ms"] for c in costs.values())
    cores = result["cpu_cores_per_device_at_best_rate"]
    assert cores["images_per_s"] == max(result["forward_images_per_s"].values())
    assert cores["resize_on_device"] == pytest.approx(cores["images_per_s"] * cores["mean_decode_crop_ms"] / 1000)
    assert 0 < cores["resize_on_device"] < cores["resize_on_cpu"]
    assert all(rate > 0 for rate in result["device_resize_images_per_s"].values())
    scaling = result["decode_thread_scaling"]
    assert scaling["threads"] >= 1 and scaling["speedup"] == pytest.approx(scaling["serial_s"] / scaling["threaded_s"])


def test_reduced_precision_is_measured_against_the_bound(result):
    bf16 = result["reduced_precision"]["bf16"]
    assert bf16["max_abs_delta_p_vs_fp32"] > 0 and bf16["within_bound"] == (bf16["max_abs_delta_p_vs_fp32"] <= 0.01)
