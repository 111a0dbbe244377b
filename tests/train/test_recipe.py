"""Recipe schema: shipped recipes, validation errors, --set overrides, and the CLI failing fast (no Keras)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from flzoo.paths import REPO_ROOT
from flzoo.train import recipe as recipes
from flzoo.train.recipe import RecipeError

VARIANTS = recipes.VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_paper_recipe_has_the_paper_settings(variant):
    r = recipes.load(REPO_ROOT / "recipes" / f"{variant}.yaml")
    assert r["model"] == {"variant": variant, "backbone": "vgg19_fcn",
                          "input_size": 112 if variant == "cascaded" else 224, "options": {},
                          "pretrained": None}
    assert (r["train"]["optimizer"], r["train"]["learning_rate"], r["train"]["batch_size"]) == ("adam", 1e-4, 16)
    assert (r["train"]["val_every"], r["train"]["patience"]) == (1000, 10)
    a = r["augment"]
    assert (a["enabled"], a["rotation"], a["scale_min"], a["scale_max"]) == (True, 30.0, 0.6, 1.0)
    assert r["data"]["subsets"] == ["afw", "helen_train", "lfpw_train"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_lite_recipe_exists_per_variant(variant):
    r = recipes.load(REPO_ROOT / "recipes" / "lite" / f"{variant}.yaml")
    assert r["model"]["variant"] == variant and r["model"]["backbone"] == "lite"
    assert r["name"] == f"{variant}_lite"


def _resolve(**sections):
    base = {"model": {"variant": "pwc"}}
    for k, v in sections.items():
        base.setdefault(k, {}).update(v) if isinstance(v, dict) else base.__setitem__(k, v)
    return recipes.resolve(base)


def test_defaults_fill_every_key_and_round_trip():
    r = _resolve()
    assert set(recipes.flatten(r)) == set(recipes.SCHEMA)
    again = recipes.resolve(yaml.safe_load(recipes.dump(r)))
    assert again == r and recipes.differences(r, again) == []


@pytest.mark.parametrize("bad, words", [
    ({"train": {"learning_rat": 0.1}}, ["train.learning_rat", "did you mean 'train.learning_rate'"]),
    ({"modle": {"variant": "pwc"}}, ["'modle'", "did you mean 'model'"]),
    ({"train": {"learning_rate": "fast"}}, ["train.learning_rate", "'fast'", "a number > 0"]),
    ({"train": {"batch_size": "16"}}, ["train.batch_size", "'16'", "an integer"]),
    ({"train": {"batch_size": 0}}, ["train.batch_size", "0", ">= 1"]),
    ({"train": {"max_steps": 2.5}}, ["train.max_steps", "2.5", "an integer"]),
    ({"train": {"patience": True}}, ["train.patience", "True", "an integer"]),
    ({"data": {"val_fraction": 0.9}}, ["data.val_fraction", "0.9", "<= 0.5"]),
    ({"data": {"subsets": ["helen_test"]}}, ["data.subsets", "helen_test", "test sets are never used"]),
    ({"model": {"variant": "pwcc"}}, ["model.variant", "'pwcc'", "'hybrid_disc'"]),
    ({"model": {"backbone": "resnet"}}, ["model.backbone", "'resnet'", "'lite'"]),
    ({"augment": {"scale_min": 1.0, "scale_max": 0.8}}, ["augment.scale_min", "scale_min <= scale_max"]),
    ({"augment": "yes"}, ["section 'augment' must be a mapping"]),
    ({"distribute": {"enabled": True, "devices": 3}}, ["train.batch_size = 16", "distribute.devices = 3"]),
    ({"train": {"jit_compile": "yes"}}, ["train.jit_compile", "'auto', true or false"]),
])
def test_bad_values_name_the_key_and_what_is_allowed(bad, words):
    with pytest.raises(RecipeError) as info:
        _resolve(**bad)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_variant_is_required():
    with pytest.raises(RecipeError, match="model.variant is required"):
        recipes.resolve({"train": {"batch_size": 4}})


def test_float_written_without_a_dot_is_a_number():
    # PyYAML reads `1e-3` as a string; the schema accepts it for number keys (and still refuses other text).
    r = recipes.resolve(yaml.safe_load("model: {variant: pwc}\ntrain: {learning_rate: 1e-3}"))
    assert r["train"]["learning_rate"] == pytest.approx(1e-3)


def test_set_overrides_are_typed_and_checked():
    r = recipes.resolve({"model": {"variant": "pwc"}},
                        ["train.max_steps=7", "data.subsets=[afw]", "model.options.beta=0.5", "augment.flip=true",
                         "data.max_faces=null"])
    assert r["train"]["max_steps"] == 7 and r["data"]["subsets"] == ["afw"]
    assert r["model"]["options"] == {"beta": 0.5} and r["augment"]["flip"] is True
    for text, words in [("train.max_steps=many", ["--set train.max_steps=many", "'many'", "an integer"]),
                        ("train.maxsteps=5", ["unknown key 'train.maxsteps'", "train.max_steps"]),
                        ("train.max_steps", ["expected key=value"]),
                        ("augment.scale_min=1.5", ["scale_min <= scale_max"])]:
        with pytest.raises(RecipeError) as info:
            recipes.resolve({"model": {"variant": "pwc"}}, [text])
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_run.yaml"
    path.write_text("model:\n  variant: hybrid\n")
    assert recipes.load(path)["name"] == "my_run"
    with pytest.raises(RecipeError, match="does not exist"):
        recipes.load(tmp_path / "absent.yaml")
    (tmp_path / "broken.yaml").write_text("model: [unclosed\n")
    with pytest.raises(RecipeError, match="broken.yaml: not valid YAML"):
        recipes.load(tmp_path / "broken.yaml")


def test_differences_ignore_the_data_root():
    a = _resolve(data={"root": "/a"})
    b = _resolve(data={"root": "/b"}, train={"batch_size": 8})
    assert recipes.differences(a, b) == ["train.batch_size"]


def _cli(args):
    from flzoo.train.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_rejects_bad_recipes_with_usage_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  variant: pwc\ntrain:\n  learning_rate: fast\n")
    result = _cli([bad, "--data", tmp_path])
    assert result.exit_code == 2 and "train.learning_rate = 'fast'" in result.output
    good = tmp_path / "good.yaml"
    good.write_text("model:\n  variant: pwc\n")
    result = _cli([good, "--data", tmp_path / "nowhere"])
    assert result.exit_code == 2
    assert f"data path {tmp_path / 'nowhere'} (from --data) does not exist" in " ".join(result.output.split())
    result = _cli([good, "--data", tmp_path, "--set", "train.bogus=1"])
    assert result.exit_code == 2 and "unknown key 'train.bogus'" in result.output
    result = _cli([good, "--backend", "theano"])
    assert result.exit_code == 2 and "theano" in result.output


def test_cli_fails_fast_without_importing_keras(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  variant: pwc\n  colour: blue\n")
    code = ("import sys\nfrom flzoo.train.cli import main\n"
            f"try:\n    main([{str(bad)!r}, '--backend', 'jax'], standalone_mode=False)\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n"
            "import os\nprint('keras' in sys.modules, 'tensorflow' in sys.modules, os.environ['KERAS_BACKEND'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(REPO_ROOT)).stdout.splitlines()
    assert "UsageError" in out[0] and "unknown key 'model.colour'" in out[0]
    assert out[1] == "False False jax"  # the backend is chosen before any Keras import
