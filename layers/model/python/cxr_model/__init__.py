"""Model layer: image validation, torchxrayvision-exact preprocessing and DenseNet inference (torch or onnxruntime)."""
from .decode import ImageInfo, check_image, sniff_format
from .identity import check_artifacts, model_card, model_id, read_identity
from .notice import INTENDED_USE
from .errors import UNDECODABLE_IMAGE, UNSUPPORTED_MEDIA_TYPE, ImageError
from .predictor import ModelArtifactsMissing, Prediction, Predictor, load_predictor
from .specs import LABELS

__all__ = ["INTENDED_USE", "LABELS", "ImageError", "ImageInfo", "ModelArtifactsMissing", "Prediction", "Predictor",
           "UNDECODABLE_IMAGE", "UNSUPPORTED_MEDIA_TYPE", "check_artifacts", "check_image", "model_card", "load_predictor", "model_id", "read_identity", "sniff_format"]
