"""Class activation maps as stored with a result (8-bit per map, ~1.2 KB for 18 maps) and read back, in plain Python."""
from __future__ import annotations

import base64

GRID = 7  # DenseNet-121's last feature map at 224 px
LEVELS = 255
MODEL_INPUT_SIZE = 224
UNITS = "logit (before the sigmoid and op_norm calibration, which are monotonic per finding)"


def encode_heatmaps(maps: dict[str, list[list[float]]]) -> dict:
    """Each finding's GRID x GRID map quantised onto 0..255 between its own low and high (error <= range / 510)."""
    labels, lows, highs, data = [], [], [], bytearray()
    for label, grid in maps.items():
        values = [float(value) for row in grid for value in row]
        if len(values) != GRID * GRID:
            raise ValueError(f"{label}: a heatmap has {GRID}x{GRID} cells, got {len(values)}")
        low, high = float(f"{min(values):.7g}"), float(f"{max(values):.7g}")  # float32 maps: 7 digits are all
        step = (high - low) / LEVELS or 1.0
        data.extend(min(max(round((value - low) / step), 0), LEVELS) for value in values)
        labels.append(label)
        lows.append(low)
        highs.append(high)
    return {"labels": labels, "shape": [GRID, GRID], "encoding": "uint8 per cell: low + q * (high - low) / 255",
            "low": lows, "high": highs, "data": base64.b64encode(bytes(data)).decode("ascii")}


def decode_heatmap(record: dict, label: str) -> list[list[float]]:
    index = record["labels"].index(label)
    low, high = record["low"][index], record["high"][index]
    cells = base64.b64decode(record["data"])[index * GRID * GRID:(index + 1) * GRID * GRID]
    values = [low + q * (high - low) / LEVELS for q in cells]
    return [values[row * GRID:(row + 1) * GRID] for row in range(GRID)]


def model_input_key(image_key: str) -> str:
    """Where the 224 x 224 image the model saw is kept: beside the upload, under the same lifetime rule."""
    return f"model-inputs/{image_key.rsplit('/', 1)[-1]}-{MODEL_INPUT_SIZE}.png"
