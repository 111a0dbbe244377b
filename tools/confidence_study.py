"""Which face score predicts failure? AUROC (failure: NME > 0.08) of each candidate, per model, face set and box
source, computed with Landmarker.predict_scored_with_matrices(details=True), i.e. the code flzoo runs.

    python tools/confidence_study.py [MODEL ...] [--sets val,helen_test] [--boxes gt,detector] [--json out.json]

``val``: the training split's validation faces (``split_train_val`` of AFW + Helen train + LFPW train, 10%,
seed 0: the faces that chose the checkpoints, never trained on); ``helen_test``: the development test set.
``detector``: dlib boxes + the refinement pass (as ``flzoo eval --boxes detector``; a missed face is scored from
its ground-truth crop). Detections are computed once per photo and shared by all models.

Candidates: ``mean`` (mean point confidence), ``p10`` (10th percentile of the point confidences), ``D`` (the
discriminator's probability, +disc models), ``flip`` (exp(-mean flip disagreement / FLIP_TAU)), ``sqrt(mean*D)``,
``sqrt(mean*flip)``, and ``chosen`` (``flzoo.confidence.face_confidence`` as shipped).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def face_sets(root, names):
    from flzoo.data.datasets import discover, validation_faces

    found = discover(root)
    out = {}
    for name in names:
        if name == "val":
            out[name] = validation_faces(found)
        else:
            out[name] = found[name]
    return out


def detections(faces, cache):
    """Per face: the matched landmark-box estimate from dlib (flzoo's default detector) or None."""
    from flzoo.data.datasets import load_image
    from flzoo.detect import get_detector, normalise_detections
    from flzoo.evaluate import match_detection

    detector = get_detector("dlib")
    out = []
    for face in faces:
        key = str(face.image_path)
        if key not in cache:
            img = load_image(face)
            cache[key] = [{"box": b, "score": s} for b, s in normalise_detections(detector(img), image_shape=img.shape)]
        det = match_detection(cache[key], face.points)
        out.append(None if det is None else det["box"])
    return out


def run(lm, faces, boxes, dets):
    from flzoo.confidence import FLIP_TAU
    from flzoo.data.crop import crop_matrix, crop_square
    from flzoo.data.datasets import load_image
    from flzoo.metrics import nme

    rows = []
    for start in range(0, len(faces), 32):
        chunk = faces[start:start + 32]
        imgs = [load_image(f) for f in chunk]
        gt_m = [crop_matrix(*crop_square(f.points, **lm.crop), lm.input_size) for f in chunk]
        if boxes == "gt":
            res = lm.predict_scored_with_matrices(imgs, gt_m, details=True)
        else:
            box = dets[start:start + 32]
            m = [gt_m[i] if b is None else lm.box_matrix(b) for i, b in enumerate(box)]
            passes = [0 if b is None else lm.refine for b in box]
            res = {k: [] for k in ("points", "point_confidence", "confidence", "flip_disagreement",
                                   "shape_probability")}
            for i in range(len(chunk)):  # per face: a missed face is its GT crop with no refinement
                one = lm._refine_and_score([imgs[i]], [m[i]], passes[i], details=True)
                for k in res:
                    if k in one:
                        res[k].append(one[k][0])
            res = {k: np.asarray(v) for k, v in res.items() if v}
        for i, f in enumerate(chunk):
            pc = res["point_confidence"][i]
            row = {"nme": float(nme(res["points"][i], f.points)), "mean": float(pc.mean()),
                   "p10": float(np.percentile(pc, 10)), "chosen": float(res["confidence"][i]),
                   "flip": float(np.exp(-res["flip_disagreement"][i].mean() / FLIP_TAU))}
            if "shape_probability" in res:
                row["D"] = float(res["shape_probability"][i])
                row["sqrt(mean*D)"] = float(np.sqrt(row["mean"] * row["D"]))
            row["sqrt(mean*flip)"] = float(np.sqrt(row["mean"] * row["flip"]))
            rows.append(row)
    return rows


def main():
    import flzoo
    from flzoo.confidence import auroc, confident_nme
    from flzoo.metrics import THRESHOLD
    from flzoo.paths import default_data_root
    from flzoo.registry import table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", default=list(table()))
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--sets", default="val,helen_test")
    ap.add_argument("--boxes", default="gt,detector")
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args()
    sets = face_sets(args.data or default_data_root(), args.sets.split(","))
    cache, dets = {}, {}
    if "detector" in args.boxes:
        for name, faces in sets.items():
            dets[name] = detections(faces, cache)
    all_rows = {}
    print("| model | faces | boxes | n | failures | NME | NME conf. 90% | AUROC: " +
          " | ".join(["mean", "p10", "flip", "D", "sqrt(mean*D)", "sqrt(mean*flip)", "chosen"]) + " |")
    print("|---" * 15 + "|")
    for model in args.models:
        lm = flzoo.load(model, flip=False)  # the study chose the face score for the network alone
        for set_name, faces in sets.items():
            for boxes in args.boxes.split(","):
                rows = run(lm, faces, boxes, dets.get(set_name))
                all_rows[f"{model}/{set_name}/{boxes}"] = rows
                e = np.array([r["nme"] for r in rows])
                failed = e > THRESHOLD
                cells = []
                for key in ["mean", "p10", "flip", "D", "sqrt(mean*D)", "sqrt(mean*flip)", "chosen"]:
                    if key in rows[0]:
                        cells.append(f"{auroc([r[key] for r in rows], failed):.3f}")
                    else:
                        cells.append("-")
                top = confident_nme(e, [r["chosen"] for r in rows])
                print(f"| {model} | {set_name} | {boxes} | {len(rows)} | {int(failed.sum())} | {e.mean():.4f} | "
                      f"{top:.4f} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(all_rows))


if __name__ == "__main__":
    main()
