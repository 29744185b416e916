"""Submit-side CPU against the worker's, per format of the clinical mix (issue 28).

Run: python -m bench submit-cost [--rounds 3] [--repeats 5] [--baseline TREE] [--model-dir DIR]
Submit side (what POST /v1/jobs spends on the image, the HTTP adapter and the S3 put apart): the upload's SHA-256,
check_image, de-identification (DICOM), metadata stripping (what is stored keeps pixels only) and the digest of
the bytes stored (BLAKE3; a tree from before hashed them with SHA-256). "As sent": files above cxr's inline limit
go through a presigned PUT with their sha256, which S3 verifies, so submit hashes nothing (where the tree takes that
checksum). Worker: predictor.preprocess (decode + exact preprocessing) and one forward pass (onnxruntime, batch 1,
1 thread). CPU time (process_time), the median of
`repeats` calls, then the median over `rounds` interleaved rounds, each in a fresh process. With --baseline (another
checkout of this repository, e.g. main before issue 28) its cxr_model/cxr_core run in alternate processes of the same
run, so the before/after columns share the host's load (PNG decode against Pillow's: python -m bench png-decoders).
Writes bench/results/submit_cost-<UTC>.json.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.clinical_mix import base_files
from cxr_cli.api import INLINE_LIMIT_BYTES
from bench.harness import REPO, RESULTS, load_average, utc_stamp, write_json
SUBMIT_PARTS = ("sha256", "check_image", "deidentify", "strip", "stored_digest")
WORKER_PARTS = ("preprocess", "forward")


def _cpu_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        function()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def _child(model_dir: str, repeats: int) -> dict:
    """One round in this process: every file of the mix, every part (imports whichever cxr_model PYTHONPATH gives)."""
    import cxr_model
    from cxr_model import check_image, load_predictor
    from cxr_model.privacy import deidentify_dicom

    from cxr_core.services import submit

    takes_digest = len(inspect.signature(deidentify_dicom).parameters) > 1
    source = inspect.getsource(submit)
    rehashes_upload = "stored_bytes is upload.data" not in source and "stored_digest(" not in source  # before 28
    try:
        from cxr_model.strip import strip_metadata
    except ImportError:  # a tree from before issue 25 stored the upload as it came
        strip_metadata = None
    try:
        from cxr_core.domain import stored_digest
    except ImportError:  # the stored bytes' SHA-256, as before BLAKE3
        stored_digest = None
    predictor = load_predictor(model_dir, engine="onnxruntime", threads=1)
    rows = {"_tree": str(Path(cxr_model.__file__).parents[4]),
            "_uses_verified_sha256": "upload.sha256 or" in source}
    for path in base_files():
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        fmt = check_image(data).format
        deid = (lambda: deidentify_dicom(data, digest)) if takes_digest else (lambda: deidentify_dicom(data))
        stored = deid() if fmt == "dicom" else data
        strip = (lambda: strip_metadata(stored, fmt)) if strip_metadata else (lambda: stored)
        kept = strip()
        if stored_digest is not None:
            digest_stored = lambda: stored_digest(kept)  # noqa: E731  every stored copy gets its digest
        elif fmt == "dicom" or kept is not data or rehashes_upload:
            digest_stored = lambda: hashlib.sha256(kept).hexdigest()  # noqa: E731
        else:
            digest_stored = None  # the upload's own SHA-256 was reused
        tensor = predictor.preprocess(data)
        predictor.predict([tensor])  # warm the session
        rows[path.name] = {
            "sha256": _cpu_ms(lambda: hashlib.sha256(data).hexdigest(), repeats),
            "check_image": _cpu_ms(lambda: check_image(data), repeats),
            "deidentify": _cpu_ms(deid, repeats) if fmt == "dicom" else 0.0,
            "strip": _cpu_ms(strip, repeats) if strip_metadata else 0.0,
            "stored_digest": _cpu_ms(digest_stored, repeats) if digest_stored else 0.0,
            "preprocess": _cpu_ms(lambda: predictor.preprocess(data), repeats),
            "forward": _cpu_ms(lambda: predictor.predict([tensor]), repeats),
            "bytes": len(data),
        }
    return rows


def _run_round(tree: Path | None, model_dir: str, repeats: int) -> dict:
    env = dict(os.environ)
    if tree is not None:
        paths = [str(tree / "layers" / "model" / "python"), str(tree / "layers" / "core" / "python")]
        env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "bench", "submit-cost", "--child", "--model-dir", model_dir,
               "--repeats", str(repeats)]
    return json.loads(subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True, text=True).stdout)


def _summary(rounds: list[dict]) -> dict:
    names = [name for name in rounds[0] if not name.startswith("_")]
    table = {name: {part: statistics.median(r[name][part] for r in rounds) for part in SUBMIT_PARTS + WORKER_PARTS}
             | {"bytes": rounds[0][name]["bytes"]} for name in names}
    for row in table.values():
        row["submit"] = sum(row[part] for part in SUBMIT_PARTS)
        row["worker"] = sum(row[part] for part in WORKER_PARTS)
        row["ratio"] = row["submit"] / row["worker"]
    mix = sum(row["submit"] for row in table.values()) / sum(row["worker"] for row in table.values())
    # as cxr sends them: above its inline limit through a presigned PUT with the image's sha256, which S3 verifies and
    # keeps, so the claim takes the cache key from it instead of hashing (trees from before that hash it anyway)
    sent = {name: row["submit"] - (row["sha256"] if rounds[0].get("_uses_verified_sha256") and
                                   row["bytes"] > INLINE_LIMIT_BYTES else 0.0)
            for name, row in table.items()}
    for name, row in table.items():
        row["submit_as_sent"] = sent[name]
        row["ratio_as_sent"] = sent[name] / row["worker"]
    mix_sent = sum(sent.values()) / sum(row["worker"] for row in table.values())
    return {"files": table, "mix_ratio": mix, "mix_ratio_as_sent": mix_sent, "tree": rounds[0]["_tree"],
            "uses_verified_sha256": rounds[0].get("_uses_verified_sha256", False)}


def _print(label: str, summary: dict) -> None:
    print(f"\n{label} ({summary['tree']}): CPU ms, medians")
    print("| input | SHA-256 | check_image | de-id | strip | stored digest | submit | preprocess (worker) | forward | "
          "submit / worker | as sent |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row in summary["files"].items():
        print(f"| {name} | {row['sha256']:.1f} | {row['check_image']:.1f} | {row['deidentify']:.1f} | "
              f"{row['strip']:.1f} | {row['stored_digest']:.1f} | {row['submit']:.1f} | {row['preprocess']:.1f} | "
              f"{row['forward']:.1f} | "
              f"{row['ratio']:.2f} | {row['ratio_as_sent']:.2f} |")
    print(f"| **mix** (sum submit / sum worker) | | | | | | | | | **{summary['mix_ratio']:.3f}** | "
          f"**{summary['mix_ratio_as_sent']:.3f}** |")
    print(f"as sent: above {INLINE_LIMIT_BYTES:,} bytes through a presigned PUT with the image's sha256, which S3 "
          f"verifies: {'no SHA-256 at submit' if summary['uses_verified_sha256'] else 'hashed anyway (this tree)'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout whose cxr_model/cxr_core to measure alongside")
    parser.add_argument("--model-dir",
                        default=os.environ.get("CXR_TEST_MODEL_DIR", str(REPO / "build" / "test-weights")))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.model_dir, args.repeats)))
        return 0
    load = load_average()
    current, baseline = [], []
    for _ in range(args.rounds):
        current.append(_run_round(None, args.model_dir, args.repeats))
        if args.baseline:
            baseline.append(_run_round(args.baseline.resolve(), args.model_dir, args.repeats))
    record = {"load_average_before": load, "current": _summary(current)}
    if baseline:
        record["baseline"] = _summary(baseline)
        _print("baseline", record["baseline"])
    _print("current", record["current"])
    record["load_average_after"] = load_average()
    print(f"\nload average before {load}, after {record['load_average_after']}")
    write_json(RESULTS / f"submit_cost-{utc_stamp()}.json", record)
    return 0
