"""Inference speed: ms per face at batch 1 and batch 32, per model, in Keras and each exported runtime.

    python tools/bench_inference.py [NAME_OR_FOLDER ...] [--threads 1] [--repeats 30] [--json out.json]

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="registry names, folders or hf:// URIs (default: all registry)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per runtime (default 1)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
