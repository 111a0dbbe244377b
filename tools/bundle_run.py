"""Bundle a finished training run as the registry model ``<variant>.<tag>`` and record its Helen-test figures.

    python tools/bundle_run.py RUN_DIR [--tag TAG] [--dtype float16] [--data PATH]

1. Saves RUN_DIR/best as flzoo/presets/<variant>.<tag>/ (tag: the backbone's, e.g. mnv2), without the +disc
   variants' shape discriminator (training's only), its floating tensors stored as ``--dtype``. A bundled file must stay under ``registry.MAX_BUNDLED_BYTES`` (10 MB); float16 is accepted only when the stored model's
   points are within 0.05 px of the float32 ones on every Helen-test face (measured here, recorded as
   ``storage.max_diff_px``).
2. `flzoo eval --no-flip` (the network alone, as the paper measures) of the STORED model on Helen test with
   ground-truth crops (the paper's protocol) ->
   RUN_DIR/eval_gt/ and with dlib's detector boxes -> RUN_DIR/eval_detector/; the figures go into the preset's
   config.json `metrics` (what `flzoo list` shows, re-checked by tests/test_bundled.py).
3. The registry's index names it the variant's best when its VALIDATION NME beats the current best's (Helen
   test never chooses).
4. Records the stored model's points on the reference crops of tests/reference/preset_points.json, which
   tests/test_bundled.py holds every later version of the code to (0.01 px).
5. Copies the run's record (tools/record_run.py: recipe.yaml, log.jsonl, metrics.json, eval tables, plots and
   results.json — model predictions, no images or annotations) to docs/runs/<variant>.<tag>/ (the lite runs keep
   docs/runs/<variant>).
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flzoo import registry  # noqa: E402
from flzoo.models import inference_copy  # noqa: E402
from flzoo.models.backbones import get_backbone  # noqa: E402
from flzoo.paths import default_data_root  # noqa: E402
from flzoo.weights import load_model, save_model  # noqa: E402
from tools.record_run import copy_record  # noqa: E402

SUBSET = "helen_test"
REFERENCE = REPO / "tests" / "reference" / "preset_points.json"
TOLERANCE_PX = 0.05


def run_eval(model_folder, out, data, boxes):
    # always afresh: an evaluation already in OUT (the training queue's, of RUN_DIR/best) is not the stored model's
    detector = ["--detector", "dlib"] if boxes == "detector" else []  # the README's "dlib boxes" column
    subprocess.run(["flzoo", "eval", "--model", str(model_folder), "--data", str(data), "--subsets", SUBSET,
                    "--boxes", boxes, *detector, "--no-flip", "--out", str(out)], check=True)
    return json.loads((out / "results.json").read_text())


def record_reference_points(name, folder):
    """The stored model's points (input pixels, 4 decimals) on the reference crops of the astronaut photo."""
    from skimage import data

    from flzoo.data.crop import crop_matrix, warp

    reference = json.loads(REFERENCE.read_text())
    model = load_model(folder)
    size = model.input_size
    crops = np.stack([warp(data.astronaut(), crop_matrix(cx, cy, side, size), size)
                      for cx, cy, side in reference["crops"]]).astype(np.float32)
    reference["points"][name] = np.round(model.predict_points(crops).astype(np.float64), 4).tolist()
    REFERENCE.write_text(json.dumps(reference))


def max_point_diff(a, b):
    pa = np.array([f["points"] for f in a["faces"]], np.float64)
    pb = np.array([f["points"] for f in b["faces"]], np.float64)
    return float(np.linalg.norm(pa - pb, axis=-1).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--tag", help="registry tag (default: the backbone's)")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--data", type=Path, default=default_data_root())
    args = parser.parse_args()

    run = args.run
    model = inference_copy(load_model(run / "best"))  # the +disc models' discriminator only trains
    build = model.build_config()
    name = f"{build['variant']}.{args.tag or get_backbone(build['backbone']).tag}"
    preset = registry.BUNDLED_DIR / name
    staging = run / f"preset-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    config = dict(model.flzoo_config)
    extra = {"metrics": config.get("metrics", {}), "training": {**config.get("training", {}),
                                                                "run": f"docs/runs/{name}"}}
    if "crop" in config:  # the crop protocol it was trained with, which inference and evaluation use
        extra["crop"] = config["crop"]
    save_model(model, staging, extra=extra, dtype=args.dtype)
    size = (staging / "model.safetensors").stat().st_size
    if size > registry.MAX_BUNDLED_BYTES:
        sys.exit(f"{name}: {size / 1e6:.1f} MB stored as {args.dtype}, over the "
                 f"{registry.MAX_BUNDLED_BYTES / 1e6:g} MB a bundled file may take; "
                 f"try --dtype float16")

    gt = run_eval(staging, run / "eval_gt", args.data, "gt")
    detector = run_eval(staging, run / "eval_detector", args.data, "detector")
    storage = {"dtype": args.dtype}
    if args.dtype != "float32":
        storage["max_diff_px"] = round(max_point_diff(gt, run_eval(run / "best", run / "eval_gt_float32",
                                                                    args.data, "gt")), 4)
        if storage["max_diff_px"] > TOLERANCE_PX:
            sys.exit(f"{name}: {args.dtype} storage moves a Helen-test point by {storage['max_diff_px']} px, more "
                     f"than {TOLERANCE_PX}; bundle it as float32")
    g, d = gt["summary"][SUBSET], detector["summary"][SUBSET]
    cfg = json.loads((staging / "config.json").read_text())
    cfg["metrics"] = {**cfg["metrics"], "nme": round(g["nme"], 5), "auc": round(g["auc"], 4),
                      "fr": round(g["fr"], 4), "nme_subset": SUBSET, "boxes": "gt",
                      "nme_detector": round(d["nme"], 5), "detection_rate": d.get("detection_rate")}
    cfg["storage"] = storage
    (staging / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    shutil.rmtree(preset, ignore_errors=True)
    shutil.move(str(staging), str(preset))

    index_path = registry.BUNDLED_DIR / registry.INDEX_FILE
    index = json.loads(index_path.read_text())
    current = index["best"].get(build["variant"])
    mine = cfg["metrics"].get("val_nme")
    theirs = (registry.describe(registry.get_entry(current)).get("val_nme") if current and current != name
              else None)
    if current is None or current == name or (mine is not None and theirs is not None and mine < theirs):
        index["best"][build["variant"]] = name
        index_path.write_text(json.dumps(index, indent=2) + "\n")
    print(f"{build['variant']}: best bundled model {index['best'][build['variant']]} (validation NME {mine} "
          f"here, {theirs} for {current})")

    record_reference_points(name, preset)
    record = REPO / "docs" / "runs" / name
    copy_record(run, record)
    print(f"{name}: Helen test NME {g['nme']:.4f} (GT crops), {d['nme']:.4f} (detector boxes), "
          f"{size / 1e6:.1f} MB {args.dtype} -> {preset.relative_to(REPO)}, {record.relative_to(REPO)}")


if __name__ == "__main__":
    main()
