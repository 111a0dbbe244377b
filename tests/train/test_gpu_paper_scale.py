"""Paper scale on a lent GPU: packed faces (flzoo.data.packed, tools/gpu_prepare.py), train.max_seconds, and the
device script's resume parts (tools/gpu_paper_scale.py). Synthetic faces: no 300-W data needed, except the
last test, which packs a few real faces and skips without them."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flzoo.data import packed
from flzoo.data.datasets import Face
from flzoo.paths import REPO_ROOT
from flzoo.train import recipe as recipes


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _synthetic_faces(n, subset="afw", seed=0, side=90.0):
    """Photos of smooth noise with the mean shape placed in them (68 points, box about ``side`` / 1.3 px)."""
    import cv2

    mean = np.array(json.loads((REPO_ROOT / "flzoo/assets/mean_shape_68.json").read_text())["points"])
    rng = np.random.default_rng(seed)
    faces = []
    for i in range(n):
        h, w = 260 + 10 * i, 300
        photo = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8), (w, h),
                           interpolation=cv2.INTER_CUBIC)
        centre = np.array([w / 2 + rng.uniform(-40, 40), h / 2 + rng.uniform(-40, 40)])
        points = ((mean - 0.5) * side * (1 + 0.2 * i / max(1, n)) + centre).astype(np.float32)
        faces.append(Face(Path(f"{subset}/img_{i:03d}_1.jpg"), points, subset, f"{subset}/img_{i:03d}", image=photo))
    return faces


def _pack(folder, faces_by_subset, size, augment, factor=1.0, codec="png", quality=75):
    """What tools/gpu_prepare.py writes, through its own functions."""
    prep = _tool("gpu_prepare")
    folder.mkdir(parents=True, exist_ok=True)
    index = {"format": packed.FORMAT, "codec": f"{codec} (grey)", "subsets": {}}
    for subset, faces in faces_by_subset.items():
        test = augment is None
        bases = prep.base_regions(faces, size, augment, subset)
        items = []
        for face, base in zip(faces, bases):
            grey, points = prep.at_factor(base, size, factor)
            items.append((packed.face_name(face), face.photo_id, grey, points))
        nbytes = packed.write_subset(folder, subset, items, codec, quality)
        index["subsets"][subset] = {"faces": len(items), "bytes": nbytes, "factor": factor, "quality": quality,
                                    "input_size": size, "extent": 1.0 if test else augment.max_extent(),
                                    "zoom": 1.0 if test else max(1.0, augment.scale[1])}
    (folder / packed.INDEX).write_text(json.dumps(index))
    return folder


def test_packed_faces_give_the_training_crops_and_points_of_the_photos(tmp_path):
    from flzoo.data import AugmentConfig, FaceBatches

    augment = AugmentConfig(rotation=30, scale=(0.6, 1.0), shift=0.05)
    faces = _synthetic_faces(4)
    folder = _pack(tmp_path / "p", {"afw": faces}, 64, augment)
    back = packed.read(folder)["afw"]
    assert [f.image_path.name for f in back] == [f.image_path.name for f in faces]
    assert [f.photo_id for f in back] == [f.photo_id for f in faces]
    a = FaceBatches(faces, 64, 4, augment=augment, shuffle=True, seed=3)
    b = FaceBatches(back, 64, 4, augment=augment, shuffle=True, seed=3)
    for epoch in (0, 5):
        xa, ya = a.batch(0, epoch)
        xb, yb = b.batch(0, epoch)
        # the same geometry: points to float32 round-off; crops to the grey rounding and the resampling (the
        # CPU region is resized to whole pixels per axis, the packed one with one scale; lossless PNG here)
        np.testing.assert_allclose(ya["points"], yb["points"], atol=2e-3)
        diff = np.abs(xa.mean(axis=-1) - xb[..., 0])
        assert diff.mean() < 0.5 and diff.max() < 8, (diff.mean(), diff.max())
        assert np.array_equal(xb[..., 0], xb[..., 2])  # three equal channels


def test_packed_faces_at_a_lower_factor_keep_the_points_exact(tmp_path):
    from flzoo.data import AugmentConfig, FaceBatches

    augment = AugmentConfig(rotation=0, scale=(1.0, 1.0))
    faces = _synthetic_faces(3, side=200.0)  # larger than the input: the factor shrinks the stored region
    full = packed.read(_pack(tmp_path / "a", {"afw": faces}, 64, augment))["afw"]
    half = packed.read(_pack(tmp_path / "b", {"afw": faces}, 64, augment, factor=0.5, codec="webp"))["afw"]
    assert all(h.image.shape[0] < f.image.shape[0] for h, f in zip(half, full))
    xa, ya = FaceBatches(full, 64, 3, augment=augment).batch(0, 0)
    xb, yb = FaceBatches(half, 64, 3, augment=augment).batch(0, 0)
    np.testing.assert_allclose(ya["points"], yb["points"], atol=2e-3)  # geometry is exact at any factor
    assert np.abs(xa - xb).mean() < 12  # the pixels are the same picture, blurred by the lower resolution


def test_check_fits_refuses_another_input_size_or_a_wider_augmentation(tmp_path):
    from flzoo.data import AugmentConfig

    augment = AugmentConfig(rotation=10, scale=(0.9, 1.0))
    folder = _pack(tmp_path / "p", {"afw": _synthetic_faces(1)}, 32, augment)
    packed.check_fits(folder, 32, augment, ["afw"])
    packed.check_fits(folder, 32, None, ["afw"])
    with pytest.raises(ValueError, match="packed for input 32 px.*trains at 64"):
        packed.check_fits(folder, 64, augment, ["afw"])
    with pytest.raises(ValueError, match="augmentation window"):
        packed.check_fits(folder, 32, AugmentConfig(rotation=30, scale=(0.6, 1.0)), ["afw"])
    (folder / "afw.npz").write_bytes(b"broken")
    with pytest.raises(ValueError, match="afw.npz: unreadable packed subset"):
        packed.read(folder)


def test_a_resume_may_change_the_speed_keys_and_old_runs_lack_the_new_keys():
    a = recipes.resolve({"model": {"variant": "pwc"}})
    b = recipes.resolve({"model": {"variant": "pwc"}, "train": {"max_seconds": 300, "data_workers": 8}})
    assert recipes.differences(a, b) == []
    old = recipes.resolve({"model": {"variant": "pwc"}})
    for key in ("precision", "data_workers", "max_seconds"):
        del old["train"][key]  # a run folder written before these keys existed
    assert recipes.differences(old, a) == []
    c = recipes.resolve({"model": {"variant": "pwc"}, "train": {"precision": "mixed_bfloat16"}})
    assert recipes.differences(a, c) == ["train.precision"]
    with pytest.raises(recipes.RecipeError, match="train.precision"):
        recipes.resolve({"model": {"variant": "pwc"}, "train": {"precision": "float16"}})


def test_resume_parts_come_back_within_the_limits_and_restore_the_run(tmp_path):
    tool = _tool("gpu_paper_scale")
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "step_00000004"
    ckpt.mkdir(parents=True)
    (run / "best").mkdir()
    payload = np.random.default_rng(0).integers(0, 256, 20 * 2**20, dtype=np.uint8).tobytes()
    (ckpt / "state.safetensors").write_bytes(payload)
    (ckpt / "state.json").write_text(json.dumps({"step": 4}))
    (run / "best" / "model.safetensors").write_bytes(payload[:1000])
    (run / "recipe.yaml").write_text("name: x\n")
    (run / "log.jsonl").write_text('{"step": 4}\n')
    out = tmp_path / "out"
    out.mkdir()
    summary = {}
    tool.write_outputs(run, out, summary)
    parts = sorted(out.glob("resume.tar.part-*"))
    assert len(parts) == 2 and all(p.stat().st_size <= 16 * 2**20 for p in parts), summary
    assert len(list(out.iterdir())) <= 8
    again = tmp_path / "again"
    assert tool.restore(again, out)
    assert (again / "checkpoints/step_00000004/state.safetensors").read_bytes() == payload
    assert (again / "log.jsonl").read_text() == '{"step": 4}\n'
    # a checkpoint larger than what comes back stays on the machine, said in the summary
    (ckpt / "state.safetensors").write_bytes(payload * 4)
    summary = {}
    tool.write_outputs(run, out, summary)
    assert not list(out.glob("resume.tar.part-*")) and "on this machine only" in summary["resume"]
    assert summary["checkpoint_bytes"] > 80 * 2**20


@pytest.mark.slow
def test_max_seconds_stops_with_a_checkpoint_and_resume_finishes(tmp_path):
    """A packed folder of synthetic faces; train.max_seconds=1 stops after the first probe segment (20 steps)
    with a checkpoint, unfinished; --resume with another max_seconds continues to max_steps."""
    from flzoo.data import AugmentConfig

    augment = AugmentConfig(rotation=30, scale=(0.6, 1.0), flip=True, photometric=0.2)
    data = _pack(tmp_path / "data", {s: _synthetic_faces(6, s, seed=i) for i, s in
                                     enumerate(("afw", "helen_train", "lfpw_train"))}, 32, augment, codec="webp")
    out = tmp_path / "run"
    args = [sys.executable, "-m", "flzoo.train.cli", str(REPO_ROOT / "recipes/lite/pwc.yaml"), "--data", str(data),
            "--out", str(out), "--no-progress", "--set", "model.input_size=32", "--set", "train.batch_size=4",
            "--set", "train.max_steps=40", "--set", "train.val_every=30", "--set", "train.checkpoint_every=30",
            "--set", "output.overlays=0"]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(REPO_ROOT)}
    first = subprocess.run(args + ["--set", "train.max_seconds=1", "--set", "train.data_workers=2"],
                           capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "train.max_seconds = 1 reached: stopped at step 20" in first.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped"] == "max_seconds" and metrics["finished"] is None and metrics["step"] == 20
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step_00000020"]
    assert "best val NME none yet" in first.stderr  # stopped before the first validation
    second = subprocess.run(args + ["--resume", "--set", "train.max_seconds=3600"], capture_output=True, text=True,
                            env=env, cwd=REPO_ROOT, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stderr and "from step 20" in second.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] == "max_steps" and metrics["step"] == 40
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [30, 40]


@pytest.mark.data
def test_gpu_prepare_packs_real_faces_that_score_like_the_photos(data_root, tmp_path):
    """tools/gpu_prepare.py on 3 faces per subset: the index, and the ground-truth crops of the packed test
    faces equal (to the WebP noise) those of the photos."""
    from flzoo.data.crop import crop_matrix, crop_square, warp
    from flzoo.data.datasets import discover

    out = tmp_path / "gpu"
    _tool("gpu_prepare").main(["recipes/hybrid_disc.yaml", "--data", str(data_root), "--out", str(out),
                               "--set", "model.input_size=64", "--max-faces", "3", "--no-wheels",
                               "--room-mib", "2"])
    index = packed.read_index(out / "data")
    assert set(index["subsets"]) == {"afw", "helen_train", "lfpw_train", "helen_test"}
    assert index["subsets"]["afw"]["input_size"] == 64 and index["subsets"]["helen_test"]["factor"] == 1.0
    test = packed.read(out / "data", ["helen_test"])["helen_test"]
    photos = discover(data_root, ["helen_test"])["helen_test"][:3]
    for p, f in zip(photos, test):
        assert f.image_path.name == p.image_path.name
        from flzoo.data.datasets import load_image

        crop_photo = warp(load_image(p), crop_matrix(*crop_square(p.points), 64), 64).mean(axis=-1)
        crop_packed = warp(f.image, crop_matrix(*crop_square(f.points), 64), 64)[..., 0]
        assert np.abs(crop_photo - crop_packed).mean() < 3.0
