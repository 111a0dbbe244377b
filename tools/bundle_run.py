"""Evaluate a finished training run on Helen test and bundle it as a registry model.

    python tools/bundle_run.py RUN_DIR [--name NAME] [--data PATH]

1. `flzoo eval` on Helen test with ground-truth crops (the paper's protocol) -> RUN_DIR/eval_gt/
   and with dlib's detector boxes -> RUN_DIR/eval_detector/ (skipped when already there).
2. Copies RUN_DIR/best/{model.safetensors, config.json} to flzoo/weights/NAME/ and records the Helen-test
   figures in its config.json `metrics` (what `flzoo list` shows).
3. Copies the run's record (recipe.yaml, log.jsonl, metrics.json, eval tables, plots and results.json — model
   predictions, no images or annotations) to docs/runs/NAME/.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flzoo.paths import default_data_root  # noqa: E402
from flzoo.weights import load_model  # noqa: E402

SUBSET = "helen_test"


def run_eval(run, data, boxes):
    out = run / f"eval_{boxes}"
    if not (out / "results.json").is_file():
        # detector boxes: dlib's, the detector every recorded figure (README "Helen NME, dlib boxes") used
        detector = ["--detector", "dlib"] if boxes == "detector" else []
        subprocess.run(["flzoo", "eval", "--model", str(run / "best"), "--data", str(data), "--subsets", SUBSET,
                        "--boxes", boxes, "--out", str(out), *detector], check=True)
    return json.loads((out / "results.json").read_text())["summary"][SUBSET]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", help="registry name (default: the run's variant)")
    parser.add_argument("--data", type=Path, default=default_data_root())
    args = parser.parse_args()

    run = args.run
    config = json.loads((run / "best" / "config.json").read_text())
    name = args.name or config["build"]["variant"]
    gt = run_eval(run, args.data, "gt")
    detector = run_eval(run, args.data, "detector")

    weights = REPO / "flzoo" / "weights" / name
    weights.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "best" / "model.safetensors", weights / "model.safetensors")
    config["metrics"] = {
        **config.get("metrics", {}),
        "nme": round(gt["nme"], 5), "auc": round(gt["auc"], 4), "fr": round(gt["fr"], 4),
        "nme_subset": SUBSET, "boxes": "gt",
        "nme_detector": round(detector["nme"], 5), "detection_rate": detector.get("detection_rate"),
    }
    config["decoding"] = load_model(run / "best").decoding  # the decoding the evaluation used
    config["training"] = {**config.get("training", {}), "run": f"docs/runs/{name}"}
    (weights / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    record = REPO / "docs" / "runs" / name
    record.mkdir(parents=True, exist_ok=True)
    for file in ("recipe.yaml", "log.jsonl", "metrics.json"):
        shutil.copyfile(run / file, record / file)
    for boxes in ("gt", "detector"):
        src, dst = run / f"eval_{boxes}", record / f"eval_{boxes}"
        dst.mkdir(exist_ok=True)
        for file in src.iterdir():
            if file.suffix in (".json", ".md", ".png"):
                shutil.copyfile(file, dst / file.name)
    print(f"{name}: Helen test NME {gt['nme']:.4f} (GT crops), {detector['nme']:.4f} (detector boxes) "
          f"-> {weights.relative_to(REPO)}, {record.relative_to(REPO)}")


if __name__ == "__main__":
    main()
