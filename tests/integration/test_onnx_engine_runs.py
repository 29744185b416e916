"""The CPU engine with one thread runs a batch image by image (issue 28): the scores and maps of one pass."""
from __future__ import annotations

import numpy as np
import pytest

from cxr_model import load_predictor
from tests.model_support import built_model_dir


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return load_predictor(built_model_dir(str(tmp_path_factory.mktemp("model"))), threads=1).engine


def test_a_batch_goes_through_image_by_image_with_the_results_of_one_pass(engine, monkeypatch):
    batch = np.random.default_rng(28).uniform(-1024, 1024, (5, 1, 224, 224)).astype(np.float32)
    shapes = []
    run = engine.session.run
    monkeypatch.setattr(engine.session, "run", lambda names, feed: shapes.append(next(iter(feed.values())).shape)
                        or run(names, feed), raising=False)
    scores, maps = engine.run_with_maps(batch)
    assert shapes == [(1, 1, 224, 224)] * 5
    monkeypatch.setattr(engine, "_images_per_run", None)
    whole_scores, whole_maps = engine.run_with_maps(batch)
    assert shapes[5:] == [(5, 1, 224, 224)]
    np.testing.assert_allclose(scores, whole_scores, rtol=0, atol=1e-6)  # equal here; kernels may differ by shape
    np.testing.assert_allclose(maps, whole_maps, rtol=0, atol=1e-5)
    assert scores.shape == (5, 18) and maps.shape == (5, 18, 7, 7)
