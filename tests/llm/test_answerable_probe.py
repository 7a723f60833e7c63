"""The answerable probe's weights: scoring, and the file they ship in."""

import numpy as np

from service.llm.answerable_probe import Probe, load_probe, probe_path
from service.llm.embedded import DEFAULT_MODEL_NAME


def _probe(model: str = "m", rows: int = 1) -> Probe:
    return Probe(model=model, layers=(3, 5), mean=np.array([1.0, 0.0]), scale=np.array([2.0, 1.0]),
                 weights=np.array([1.5, -0.5]), bias=-0.25, l2=10.0, note="test", rows=rows)


def test_the_score_is_the_logistic_of_the_standardised_projection():
    probe = _probe()
    hidden = np.array([3.0, 2.0])  # standardised: (1, 2) -> 1.5 - 1.0 - 0.25 = 0.25
    assert abs(probe.score(hidden) - 1 / (1 + np.exp(-0.25))) < 1e-12
    assert probe.score(np.array([101.0, 0.0])) > 0.999 and probe.score(np.array([-99.0, 0.0])) < 0.001


def test_a_saved_probe_loads_back_only_for_its_model(tmp_path):
    path = tmp_path / "m.npz"
    _probe().save(path)
    loaded = load_probe("m", path)
    assert loaded is not None and loaded.layers == (3, 5) and loaded.l2 == 10.0 and loaded.note == "test"
    assert abs(loaded.score(np.array([3.0, 2.0])) - _probe().score(np.array([3.0, 2.0]))) < 1e-6
    assert load_probe("another-model", path) is None  # activations of another model mean nothing to it
    assert load_probe("m", tmp_path / "missing.npz") is None


def test_the_tokens_a_probe_averages_over_are_saved_with_it(tmp_path):
    path = tmp_path / "m.npz"
    _probe(rows=5).save(path)
    assert load_probe("m", path).rows == 5


def test_the_default_model_ships_a_probe_fitted_for_it():
    probe = load_probe(DEFAULT_MODEL_NAME)
    assert probe is not None and probe_path(DEFAULT_MODEL_NAME).is_file()
    width = 1536 * len(probe.layers)  # the model's width per layer read
    assert probe.weights.shape == probe.mean.shape == probe.scale.shape == (width,)
    assert "squad2-train" in probe.note
