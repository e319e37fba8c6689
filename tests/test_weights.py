"""Weights: Keras cache, same-family files at another size, explicit files, and offline errors."""

import keras
import pytest

from core.network.backbones import BACKBONES
from core.network.weights import WeightsUnavailable, build_base, find_local_imagenet, keras_models_dir, resolve_weights
from tests.conftest import SHARED_V2_05, needs_shared

SPEC = BACKBONES["mobilenet_v2_0.5"]


def test_none_means_random_and_says_so():
    choice = resolve_weights(SPEC, 160, "none")
    assert choice.kind == "none" and choice.path is None and "random" in choice.description


def test_exact_file_in_keras_cache_is_used(isolated_workspace):
    folder = keras_models_dir()
    folder.mkdir(parents=True)
    (folder / SPEC.weights_filename(160)).write_bytes(b"x")
    assert find_local_imagenet(SPEC, 160).name == SPEC.weights_filename(160)


def test_same_family_other_size_is_found_but_not_another_width(isolated_workspace):
    folder = keras_models_dir()
    folder.mkdir(parents=True)
    (folder / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5").write_bytes(b"x")
    assert find_local_imagenet(SPEC, 160) is None
    (folder / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5").write_bytes(b"x")
    choice = resolve_weights(SPEC, 160, "imagenet", download=False)
    assert choice.kind == "imagenet" and choice.path.endswith("0.5_224_no_top.h5")


def test_extra_weights_dirs_are_searched(tmp_path, monkeypatch):
    (tmp_path / "mobilenet_2_5_224_tf_no_top.h5").write_bytes(b"x")
    monkeypatch.setenv("STUDIO_WEIGHTS_DIRS", str(tmp_path))
    assert find_local_imagenet(BACKBONES["mobilenet_0.25"], 96).parent == tmp_path


def test_offline_imagenet_names_the_file_and_folder(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Temporary failure in name resolution")

    monkeypatch.setattr(type(SPEC), "build", lambda self, size, weights=None: offline())
    with pytest.raises(WeightsUnavailable, match="are not on this machine and could not be downloaded") as error:
        resolve_weights(SPEC, 160, "imagenet")
    message = str(error.value)
    assert SPEC.weights_filename(160) in message and str(keras_models_dir()) in message
    assert "random weights" in message and "URL fetch failure" in message


def test_missing_file_path():
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        resolve_weights(SPEC, 160, "/nowhere/w.h5")


@pytest.mark.heavy
def test_a_file_for_another_network_is_refused_with_a_reason(tmp_path):
    keras.backend.clear_session()
    other = BACKBONES["mobilenet_0.25"].build(32, weights=None)
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(WeightsUnavailable, match="does not fit"):
        build_base(SPEC, 32, resolve_weights(SPEC, 32, str(path)))


@pytest.mark.heavy
@pytest.mark.real
@needs_shared
def test_shared_224_weights_load_at_160_and_give_imagenet_features(monkeypatch):
    monkeypatch.setenv("STUDIO_WEIGHTS_DIRS", str(SHARED_V2_05.parent))
    choice = resolve_weights(SPEC, 160, "imagenet", download=False)
    assert choice.path == str(SHARED_V2_05)
    keras.backend.clear_session()
    base = build_base(SPEC, 160, choice)
    random_base = SPEC.build(160, weights=None)
    trained = [w for w in base.get_weights() if w.ndim == 4][0]
    fresh = [w for w in random_base.get_weights() if w.ndim == 4][0]
    assert trained.shape == fresh.shape and abs(trained - fresh).max() > 0.1


def test_an_uploaded_weights_file_waits_aside_until_checked_then_appears_whole():
    from core.network.weights import install_staged_weights, stage_uploaded_weights, uploaded_weights_dir

    incoming = stage_uploaded_weights(SPEC, 160, b"weights")
    final = uploaded_weights_dir() / SPEC.weights_filename(160)
    assert incoming.name.startswith(".incoming-") and not final.exists()  # no search finds it before its check
    assert install_staged_weights(incoming, SPEC, 160) == final
    assert final.read_bytes() == b"weights" and not incoming.exists()
    assert [p.name for p in uploaded_weights_dir().iterdir()] == [final.name]  # nothing half-written left
