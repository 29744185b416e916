"""The cache's model identity: weights and preprocessing decide the answer, the engine does not."""
from cxr_model import model_id


def test_preprocessing_mode_is_part_of_the_identity_and_the_engine_is_not():
    sha = "ab" * 32
    assert model_id("densenet121-res224-all", sha, "other") != model_id("densenet121-res224-all", sha, "exact")
    assert model_id("densenet121-res224-all", sha, "other").startswith("densenet121-res224-all@abababab")
    assert model_id("densenet121-res224-all", "cd" * 32, "other") != model_id("densenet121-res224-all", sha, "other")
