"""Reads the model build's provenance files to tell real weights from the random-initialised stand-in."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RANDOM_INIT = "random-init"


def _mentions_random_init(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_mentions_random_init(item) for item in value.values())
    if isinstance(value, list):
        return any(_mentions_random_init(item) for item in value)
    return isinstance(value, str) and RANDOM_INIT in value


def weights_status(model_dir: str | Path) -> dict[str, Any]:
    """{"random_init": bool, "detail": str, "provenance": [...]} from every *.json under model_dir."""
    files = sorted(Path(model_dir).glob("*.json"))
    records = []
    for path in files:
        try:
            records.append((path.name, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    if not records:
        return {"random_init": True, "detail": f"no provenance file in {model_dir}: weights unknown",
                "provenance": []}
    random_init = any(_mentions_random_init(record) for _, record in records)
    names = ", ".join(name for name, _ in records)
    detail = (f"random-init stand-in of the real architecture ({names})" if random_init
              else f"real weights ({names})")
    return {"random_init": random_init, "detail": detail, "provenance": [name for name, _ in records]}
