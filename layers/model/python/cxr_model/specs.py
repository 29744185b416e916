"""Model facts copied from torchxrayvision's model_urls, so the onnxruntime path never imports the library."""
from __future__ import annotations

from dataclasses import dataclass

NAN = float("nan")  # torchxrayvision's threshold for a finding the model was not trained for


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
    def findings(self) -> tuple[str, ...]:
        """What this model reports: the labels it was trained for, in output order."""
        return tuple(label for label in self.labels if label)

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

# The rest of torchxrayvision's DenseNet-121 family, each trained on its own datasets: an empty label is a finding
# the model was not trained for (never reported). torchxrayvision publishes no size or hash for these files, so a
# downloaded copy is "provided", never "real".
NIH = ModelSpec(
    name="densenet121-res224-nih",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "nih-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=('Atelectasis', 'Consolidation', 'Infiltration', 'Pneumothorax', 'Edema', 'Emphysema', 'Fibrosis', 'Effusion', 'Pneumonia', 'Pleural_Thickening', 'Cardiomegaly', 'Nodule', 'Mass', 'Hernia', '', '', '', ''),
    op_threshs=(0.039117552, 0.0034529066, 0.11396341, 0.0057298196, 0.00045666535, 0.0018880932, 0.012037827, 0.038744126, 0.0037213727, 0.014730946, 0.016149804, 0.054241467, 0.037198864, 0.0004403434, NAN, NAN, NAN, NAN),
)

PC = ModelSpec(
    name="densenet121-res224-pc",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "pc-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=('Atelectasis', 'Consolidation', 'Infiltration', 'Pneumothorax', 'Edema', 'Emphysema', 'Fibrosis', 'Effusion', 'Pneumonia', 'Pleural_Thickening', 'Cardiomegaly', 'Nodule', 'Mass', 'Hernia', '', 'Fracture', '', ''),
    op_threshs=(0.031012505, 0.013347598, 0.081435576, 0.001262615, 0.002587246, 0.0035944257, 0.0023071, 0.055412333, 0.044385884, 0.042766232, 0.043258056, 0.037629247, 0.005658899, 0.0091741895, NAN, 0.026507627, NAN, NAN),
)

# the CheXpert label set in torchxrayvision's 18 output slots ('': not trained for): chex and both MIMIC models
CHEXPERT_LABELS = ('Atelectasis', 'Consolidation', '', 'Pneumothorax', 'Edema', '', '', 'Effusion', 'Pneumonia', '',
                   'Cardiomegaly', '', '', '', 'Lung Lesion', 'Fracture', 'Lung Opacity', 'Enlarged Cardiomediastinum')

CHEX = ModelSpec(
    name="densenet121-res224-chex",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "chex-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=CHEXPERT_LABELS,
    op_threshs=(0.1988969, 0.05710573, NAN, 0.0531293, 0.1435217, NAN, NAN, 0.27212676, 0.07749717, NAN, 0.19712369, NAN, NAN, NAN, 0.09932402, 0.09273402, 0.3270967, 0.10888247),
)

RSNA = ModelSpec(
    name="densenet121-res224-rsna",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=('', '', '', '', '', '', '', '', 'Pneumonia', '', '', '', '', '', '', '', 'Lung Opacity', ''),
    op_threshs=(NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0.13486601, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0.13511065, NAN),
)

MIMIC_NB = ModelSpec(
    name="densenet121-res224-mimic_nb",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "mimic_nb-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=CHEXPERT_LABELS,
    op_threshs=(0.08558747, 0.011884617, NAN, 0.0040595434, 0.010733786, NAN, NAN, 0.118761964, 0.022924708, NAN, 0.06358637, NAN, NAN, NAN, 0.022143636, 0.017476924, 0.1258702, 0.014020768),
)

MIMIC_CH = ModelSpec(
    name="densenet121-res224-mimic_ch",
    weights_url="https://github.com/mlmed/torchxrayvision/releases/download/v1/"
                "mimic_ch-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
    labels=CHEXPERT_LABELS,
    op_threshs=(0.09121389, 0.010573786, NAN, 0.005023008, 0.003698257, NAN, NAN, 0.08001232, 0.037242252, NAN, 0.05006329, NAN, NAN, NAN, 0.019866971, 0.03823637, 0.11303808, 0.0069147074),
)

SPECS = {spec.name: spec for spec in (DENSENET121_RES224_ALL, NIH, PC, CHEX, RSNA, MIMIC_NB, MIMIC_CH)}
DEFAULT_MODEL = DENSENET121_RES224_ALL.name
LABELS = DENSENET121_RES224_ALL.labels


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(SPECS)}") from None
