"""flzoo.hub against a local Hub server (tests/hub_server.py) driven by the real huggingface_hub client."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hub_server import HubServer
from huggingface_hub import ModelCard
from safetensors.numpy import load_file, save_file

import flzoo
from flzoo import hub
from flzoo.cli import main as cli

TOKEN = "hf_test_token"


@pytest.fixture
def server():
    with HubServer(tokens=[TOKEN]) as srv:
        yield srv


@pytest.fixture
def env(server, tmp_path, monkeypatch):
    """Point flzoo (read at call time) at the local server and a fresh cache."""
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return server


def write_model_folder(folder, tensors=None, **config_overrides):
    """A model folder as flzoo.weights writes it, with plain tensors (no Keras needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = tensors or {"dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
                          "dense/bias": np.ones(4, np.float32)}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "flzoo"})
    config = {"flzoo_version": flzoo.__version__, "keras_version": "3.15.1", "keras_backend": "tensorflow",
              "build": {"variant": "direct", "backbone": "lite", "input_size": 64}, "input_size": 64,
              "num_points": 68, "decoding": None, "params": {"trainable": 16, "total": 16}, "metrics": {}}
    config.update(config_overrides)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


RESULTS = {
    "model": "run", "boxes": "gt", "faces": [],
    "summary": {"helen_test": {"nme": 0.0312, "nme_eyes": 0.05, "auc": 0.612, "fr": 0.0121, "n": 330},
                "total": {"nme": 0.0312, "nme_eyes": 0.05, "auc": 0.612, "fr": 0.0121, "n": 330}},
}


def write_run(tmp_path):
    run = tmp_path / "run"
    write_model_folder(run / "best")
    (run / "eval").mkdir()
    (run / "eval" / "results.json").write_text(json.dumps(RESULTS))
    return run


# ------------------------------------------------------------------------------------------------ URIs


def test_parse_hf_uri():
    assert hub.parse_hf_uri("hf://org/name") == ("org/name", None)
    assert hub.parse_hf_uri("hf://org/name@v1.0") == ("org/name", "v1.0")
    assert hub.parse_hf_uri("hf://org/name@refs/pr/1") == ("org/name", "refs/pr/1")
    for bad in ("org/name", "hf://name", "hf://org/na me", "hf://org/name@", "hf://a/b/c", "hf://../x"):
        with pytest.raises(ValueError, match="hf://ORG/NAME"):
            hub.parse_hf_uri(bad)


# ------------------------------------------------------------------------------------ push and download


def test_push_then_download_round_trips_files_in_one_commit(env, tmp_path):
    run = write_run(tmp_path)
    result = hub.push(run, "org/model")
    assert env.count("POST", "/commit/") == 1
    remote = env.files("org/model")
    assert {"model.safetensors", "config.json", "README.md"} <= set(remote)
    assert remote["model.safetensors"] == (run / "best" / "model.safetensors").read_bytes()

    folder = hub.download(result.uri)  # pinned to the pushed commit
    assert folder.name == result.commit
    for name in ("model.safetensors", "config.json"):
        assert (folder / name).read_bytes() == (run / "best" / name).read_bytes()
    tensors = load_file(str(folder / "model.safetensors"))
    np.testing.assert_array_equal(tensors["dense/kernel"], np.arange(12, dtype=np.float32).reshape(3, 4))
    assert hub.download("org/model") == folder  # main resolves to the same commit


def test_model_card_parses_and_holds_eval_figures(env, tmp_path):
    run = write_run(tmp_path)
    hub.push(run, "org/model")
    card = ModelCard(env.files("org/model")["README.md"].decode())
    assert card.data.pipeline_tag == "keypoint-detection"
    assert card.data.library_name == "flzoo"
    assert card.data.license == "other" and "300" in card.data.license_name
    figures = {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert figures[("helen_test", "nme")] == pytest.approx(0.0312)
    assert figures[("helen_test", "auc")] == pytest.approx(0.612)
    assert figures[("helen_test", "failure-rate")] == pytest.approx(0.0121)
    assert figures[("total", "nme")] == pytest.approx(0.0312)
    text = card.text
    for needle in ("research, non-commercial use only", "arXiv:2005.08649", "## Limitations", "## Intended use",
                   'flzoo.load("hf://org/model")', "| Helen test set | gt | no | 330 | 0.0312 | 0.6120 | 1.21% |"):
        assert needle in text


def test_card_without_eval_results_has_no_model_index(env, tmp_path):
    folder = write_model_folder(tmp_path / "model")
    hub.push(folder, "org/bare")
    card = ModelCard(env.files("org/bare")["README.md"].decode())
    assert card.data.eval_results is None
    assert "No `flzoo eval` results" in card.text


def test_card_of_a_bundled_model_carries_its_recorded_figures(env):
    """A bundled model has no eval/ folder beside it, but its config.json records the measured figures."""
    from flzoo.registry import bundled_folder

    folder = bundled_folder("hybrid_disc")
    metrics = json.loads((folder / "config.json").read_text())["metrics"]
    hub.push(folder, "org/bundled")
    card = ModelCard(env.files("org/bundled")["README.md"].decode())
    figures = {(r.dataset_config, r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
    assert figures[("helen_test", "nme", "boxes=gt")] == pytest.approx(metrics["nme"])
    assert figures[("helen_test", "auc", "boxes=gt")] == pytest.approx(metrics["auc"])
    assert figures[("helen_test", "nme", "boxes=detector")] == pytest.approx(metrics["nme_detector"])
    assert "No `flzoo eval` results" not in card.text


def test_push_to_branch_and_wrong_revision(env, tmp_path):
    folder = write_model_folder(tmp_path / "model")
    result = hub.push(folder, "org/model", revision="experiment")
    assert result.revision == "experiment"
    assert "model.safetensors" in env.files("org/model", "experiment")
    assert "model.safetensors" not in env.files("org/model", "main")  # main only has .gitattributes
    assert (hub.download("org/model", revision="experiment") / "config.json").is_file()
    with pytest.raises(ValueError, match=r"hf://org/model@nope.*no revision 'nope'"):
        hub.download("hf://org/model@nope")


def test_missing_file_and_missing_repo(env, tmp_path):
    folder = write_model_folder(tmp_path / "model")
    env.put_files("org/partial", {"config.json": (folder / "config.json").read_bytes()})
    with pytest.raises(ValueError, match=r"hf://org/partial: .*has no file 'model.safetensors'.*flzoo push"):
        hub.download("org/partial")
    with pytest.raises(ValueError, match=r"no Hub repo 'org/absent' at http://127\.0\.0\.1"):
        hub.download("org/absent")


def test_corrupted_safetensors_is_reported_with_the_repo(env, tmp_path):
    folder = write_model_folder(tmp_path / "model")
    good = (folder / "model.safetensors").read_bytes()
    env.put_files("org/broken", {"config.json": (folder / "config.json").read_bytes(),
                                 "model.safetensors": good[: len(good) - 16]})
    with pytest.raises(ValueError, match=r"hf://org/broken .*model.safetensors is not a valid safetensors file"):
        hub.download("org/broken")


def test_incompatible_flzoo_version_is_reported_with_the_repo(env, tmp_path):
    folder = write_model_folder(tmp_path / "model", flzoo_version="99.0.0")
    env.put_files("org/future", {n: (folder / n).read_bytes() for n in ("config.json", "model.safetensors")})
    with pytest.raises(ValueError, match=r"hf://org/future .*written by flzoo 99\.0\.0"):
        hub.download("org/future")


def test_push_refuses_bad_sources(env, tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        hub.push(tmp_path / "nowhere", "org/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"best/model.safetensors"):
        hub.push(tmp_path / "empty", "org/model")
    broken = write_model_folder(tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="refusing to push .*not a valid safetensors"):
        hub.push(broken, "org/model")
    with pytest.raises(ValueError, match="expected 'ORG/NAME'"):
        hub.push(write_model_folder(tmp_path / "ok"), "no-slash")
    assert env.count("POST", "/api/repos/create") == 0  # nothing reached the Hub


def test_push_without_valid_token_names_the_fix(env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(ValueError, match=r"org/model .*failed.*--token"):
        hub.push(write_model_folder(tmp_path / "model"), "org/model")


def test_private_repo_needs_the_token_to_download(env, tmp_path, monkeypatch):
    hub.push(write_model_folder(tmp_path / "model"), "org/secret", private=True)
    assert env.repos["org/secret"].private
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ValueError, match="private and no valid token"):
        hub.download("org/secret", token=False)
    assert (hub.download("org/secret", token=TOKEN) / "model.safetensors").is_file()


def test_transient_download_failure_is_retried(env, tmp_path):
    hub.push(write_model_folder(tmp_path / "model"), "org/model")
    env.fail_next("GET", "/resolve/", status=503)
    folder = hub.download("org/model", retry_wait=0.01)
    assert (folder / "config.json").is_file()
    assert env.count("GET", "/resolve/") == 3  # config.json twice (one 503), model.safetensors once


# ------------------------------------------------------------------------------------- offline / cache


def test_offline_load_from_cache_with_server_stopped(env, tmp_path, monkeypatch):
    result = hub.push(write_model_folder(tmp_path / "model"), "org/model", revision="dev")
    online = hub.download("org/model", revision="dev")
    env.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.download("org/model", revision="dev") == online
    assert hub.download(result.uri) == online
    monkeypatch.delenv("HF_HUB_OFFLINE")  # no offline flag: the unreachable server falls back to the cache
    assert hub.download("hf://org/model@dev") == online


def test_offline_without_cache_says_how_to_fix(env, tmp_path, monkeypatch):
    hub.push(write_model_folder(tmp_path / "model"), "org/model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError) as info:
        hub.download("org/model")
    message = str(info.value)
    assert "hf://org/model" in message and "HF_HUB_OFFLINE=1" in message and "flzoo pull org/model" in message
    assert env.count("HEAD", "/resolve/") == 0  # offline means no request at all


def test_unreachable_hub_without_cache_says_how_to_fix(tmp_path, monkeypatch):
    with HubServer() as srv:
        endpoint = srv.endpoint  # a port that refuses connections once the server is gone
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.monotonic()
    with pytest.raises(ValueError, match=rf"hf://org/model: .*the Hub at {endpoint} refused the connection") as info:
        hub.download("org/model")
    assert time.monotonic() - started < 5  # refused: no rounds of retries
    assert "flzoo pull" not in str(info.value)  # no advice to run the command that just failed


# ------------------------------------------------------------------------- real models through hf://


def tiny_trained_model(seed=0):
    """A small lite ``direct`` model whose output layer is randomised, so predictions depend on the weights."""
    from flzoo.models import build

    model = build("direct", backbone="lite", input_size=64, width=0.25)
    rng = np.random.default_rng(seed)
    head = [v for v in model.trainable_weights if v.shape[-1] == 136]
    assert head, "expected the 136-unit output layer of the direct head"
    for var in head:
        var.assign(rng.normal(0.0, 0.05, tuple(var.shape)).astype("float32"))
    return model


def test_push_pull_predict_gives_identical_points(env, tmp_path, monkeypatch):
    from flzoo.weights import save_model

    save_model(tiny_trained_model(), tmp_path / "run" / "best", extra={"metrics": {"nme": 0.5}})
    result = hub.push(tmp_path / "run", "org/tiny")
    image = (np.random.default_rng(1).random((120, 100, 3)) * 255).astype(np.uint8)
    box = [(20, 30, 80, 100)]
    local = flzoo.load(tmp_path / "run" / "best", detector=None).predict(image, boxes=box)[0]["points"]
    remote = flzoo.load("hf://org/tiny", detector=None).predict(image, boxes=box)[0]["points"]
    np.testing.assert_array_equal(remote, local)
    assert np.ptp(local[:, 0]) > 0.1  # the randomised head spreads the points: weights really matter

    env.stop()  # offline, from the cache, pinned to the pushed commit
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = flzoo.load(result.uri, detector=None).predict(image, boxes=box)[0]["points"]
    np.testing.assert_array_equal(cached, local)


def test_shape_mismatch_surfaces_through_hf_loading(env, tmp_path):
    from flzoo.weights import save_model

    folder = save_model(tiny_trained_model(), tmp_path / "model")
    tensors = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in tensors.items() if v.shape and v.shape[-1] == 136 and v.ndim == 2)
    tensors[key] = np.zeros((tensors[key].shape[0] + 1, 136), np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
    hub.push(folder, "org/mismatch")  # a valid file: only rebuilding the model can see the wrong shape
    with pytest.raises(ValueError, match=rf"models--org--mismatch.*{key}.* has shape .* expects"):
        flzoo.load("hf://org/mismatch", detector=None)


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_push_and_pull(env, tmp_path):
    run = write_run(tmp_path)
    runner = CliRunner()
    pushed = runner.invoke(cli, ["push", str(run), "--repo", "org/cli", "--revision", "v1", "--token", TOKEN])
    assert pushed.exit_code == 0, pushed.output
    assert "hf://org/cli@" in pushed.output
    pulled = runner.invoke(cli, ["pull", "org/cli", "--revision", "v1"])
    assert pulled.exit_code == 0, pulled.output
    folder = Path(pulled.output.strip().splitlines()[-1])
    assert (folder / "model.safetensors").read_bytes() == (run / "best" / "model.safetensors").read_bytes()

    missing = runner.invoke(cli, ["pull", "org/cli", "--revision", "v2"])
    assert missing.exit_code == 2 and "no revision 'v2'" in missing.output
    bad = runner.invoke(cli, ["push", str(tmp_path / "nope"), "--repo", "org/cli"])
    assert bad.exit_code == 2 and "push takes a training run with best/" in bad.output


def test_cli_push_registry_name_uses_bundled_weights(env, tmp_path, monkeypatch):
    from flzoo import registry

    bundled = tmp_path / "bundled"
    bundled.mkdir()
    (bundled / "index.json").write_text(json.dumps({"default": "direct", "best": {}}))
    monkeypatch.setattr(registry, "BUNDLED_DIR", bundled)
    runner = CliRunner()
    absent = runner.invoke(cli, ["push", "direct", "--repo", "org/direct"])
    assert absent.exit_code == 2 and "'direct' is not in the flzoo registry" in absent.output
    write_model_folder(bundled / "direct.tiny")
    (bundled / "index.json").write_text(json.dumps({"default": "direct", "best": {"direct": "direct.tiny"}}))
    pushed = runner.invoke(cli, ["push", "direct", "--repo", "org/direct"])
    assert pushed.exit_code == 0, pushed.output
    assert env.files("org/direct")["config.json"] == (bundled / "direct.tiny/config.json").read_bytes()


# ----------------------------------------------------------------------------------------- live Hub


@pytest.mark.live_hub
@pytest.mark.skipif(not (os.environ.get("FLZOO_LIVE_HUB") == "1" and os.environ.get("HF_TOKEN")),
                    reason="live Hub test: set FLZOO_LIVE_HUB=1 and HF_TOKEN (optionally FLZOO_LIVE_HUB_REPO)")
def test_live_hub_round_trip(tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    api = HfApi(endpoint=hub.DEFAULT_ENDPOINT)
    repo = os.environ.get("FLZOO_LIVE_HUB_REPO") or f"{api.whoami()['name']}/flzoo-test-{int(time.time())}"
    result = hub.push(write_run(tmp_path), repo, private=True)
    try:
        folder = hub.download(result.uri)
        assert (folder / "model.safetensors").read_bytes() == (tmp_path / "run/best/model.safetensors").read_bytes()
        card = ModelCard.load(repo, token=os.environ["HF_TOKEN"])
        assert card.data.eval_results
    finally:
        if not os.environ.get("FLZOO_LIVE_HUB_REPO"):
            api.delete_repo(repo)
