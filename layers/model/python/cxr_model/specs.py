"""Model facts copied from torchxrayvision's model_urls, so the onnxruntime path never imports the library."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weights_url: str
    labels: tuple[str, ...]
    op_threshs: tuple[float, ...]
    input_resolution: int = 224
    weights_size: int | None = None  # the published file's facts: only a file with both is "real"
    weights_sha256: str | None = None

    @property
    def weights_filename(self) -> str:
        return self.weights_url.rsplit("/", 1)[-1]


# Checked against xrv.models.model_urls by tests/unit/test_model_specs.py and by the build step.
DENSENET121_RES224_ALL = ModelSpec(
    name="densenet121-res224-all",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=("Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis",
            "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia",
            "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum"),
    op_threshs=(0.07422872, 0.038290843, 0.09814756, 0.0098118475, 0.023601074, 0.0022490358, 0.010060724,
                0.103246614, 0.056810737, 0.026791653, 0.050318155, 0.023985857, 0.01939503, 0.042889766,
                0.053369623, 0.035975814, 0.20204692, 0.05015312),
    weights_size=28_382_008,
    weights_sha256="56524913dd16a906422e8d8b66a7a5c46be1d82eb7ac012d8103776f1aa68899",
)

SPECS = {DENSENET121_RES224_ALL.name: DENSENET121_RES224_ALL}
LABELS = DENSENET121_RES224_ALL.labels


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(SPECS)}") from None
