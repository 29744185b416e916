"""`python -m bench <study> [options]` runs one study; `python -m bench --list` names them all."""
from __future__ import annotations

import importlib
import sys

# study name -> (module in bench/, what it measures)
STUDIES = {
    "model": ("model", "one inference and batch scaling, torch eager fp32 (the seed's engine) vs onnxruntime"),
    "load": ("load", "the seed's Locust scenario at 10 / 20 / 50 users, a fresh local stack per level"),
    "saturation": ("saturation", "max sustained jobs/s of the whole stack vs the engine alone (--mix clinical)"),
    "profile": ("profile_stack", "where the CPU goes under the seed's load: py-spy of API, moto, workers, Locust"),
    "submit": ("submit", "POST /v1/jobs latency alone (new image, cache hit) and stack start-up time"),
    "preprocess": ("preprocess", "codec, decode, exact preprocessing, forward pass and xrv's reference per format"),
    "dicom-codecs": ("dicom_codecs", "DICOM decode time per transfer syntax, reference vs cxr_model"),
    "cache-hits": ("cache_hits", "where a cache hit's time goes; the seed's Locust client vs FastHttpUser (issue 28)"),
    "cache-scope": ("cache_scope", "what per-client cache scope costs: CACHE_SCOPE=client vs global"),
    "infer-paths": ("infer_paths", "Lambda vs EC2 worker infer paths: latency, cold starts, CPU, dollars"),
    "long-poll": ("long_poll", "polling every 100 ms vs long polls (?wait=20), the seed's scenario at 50 users"),
    "package-sizes": ("package_sizes", "Lambda layers built as a deploy does: sizes against the 250 MB limit"),
    "gateway-overhead": ("gateway_overhead", "the DICOM gateway's CPU per instance vs the worker's per image, per kind"),
    "layer-size": ("layer_size", "installed size of the onnxruntime-only infer runtime against 250 MB"),
    "gateway-study": ("gateway_study", "100 instances by C-STORE from Orthanc through the DICOM gateway vs direct API"),
    "submit-cost": ("submit_cost", "submit-side CPU (hash, checks, de-identification) against the worker's, per format"),
    "png-decoders": ("png_decoders", "PNG decode candidates: time, pixels against Pillow's, installed size"),
    "gpu": ("gpu", "GPU worker: images/s at batch 1/8/64/256, |delta p| vs the CPU engine, CPU cores per GPU"),
    "heatmap-cost": ("heatmap_cost", "what the heatmaps cost: the export with its maps output vs without it"),
    "model-memory": ("model_memory", "resident memory per added model, loaded lazily in one worker process"),
}


def usage() -> str:
    width = max(map(len, STUDIES))
    return "usage: python -m bench <study> [options]   (<study> --help for its options)\n\nstudies:\n" + "\n".join(
        f"  {name:<{width}}  {summary}" for name, (_, summary) in STUDIES.items())


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(usage())
        return 0
    name, *rest = argv
    if name not in STUDIES:
        print(f"unknown study {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{STUDIES[name][0]}")
    sys.argv[0] = f"python -m bench {name}"  # what argparse shows in usage lines
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
