"""Tracking vs detecting every frame vs the still photo, on a video with known points (tools/make_test_video.py).

    python tools/video_bench.py clip.mp4 [--truth clip.json] [--model hybrid_disc.lite] [--beta B --min-cutoff C]

Frames are decoded first, so the timings are landmarking only (detection included where it runs). Per mode:
- NME per frame (mean over frames) of the face nearest the true points; frames where that face is missing count
  as misses;
- jitter: RMS over frames and points of the frame-to-frame change of the error vector (prediction - truth),
  in outer-eye-corner units (a perfect or constant-offset prediction has 0);
- lag: the shift L (frames, parabola-refined) minimising the mean NME of prediction(t) against truth(t - L);
- frames per second.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def nearest(faces, truth):
    if not faces:
        return None
    c = truth.mean(axis=0)
    return min(faces, key=lambda f: np.linalg.norm(np.asarray(f["points"]).mean(axis=0) - c))["points"]


def metrics(pred, truth, seconds):
    from flzoo.confidence import eye_distance
    from flzoo.metrics import nme

    ok = np.array([p is not None for p in pred])
    p = np.array([q if q is not None else np.full((68, 2), np.nan) for q in pred], np.float64)
    eye = eye_distance(truth)[:, None, None]
    err = (p - truth) / eye
    step = np.diff(err, axis=0)
    step = step[np.all(np.isfinite(step), axis=(1, 2))]
    jitter = float(np.sqrt(np.mean(np.sum(step ** 2, axis=-1)))) if len(step) else float("nan")

    def shifted(lag):  # mean NME of prediction(t) vs truth(t - lag)
        t = np.arange(max(lag, 0), len(p) + min(lag, 0))
        keep = ok[t]
        return float(np.mean(nme(p[t][keep], truth[t - lag][keep])))

    lags = range(-3, 4)
    errs = [shifted(lag) for lag in lags]
    i = int(np.argmin(errs))
    lag = float(list(lags)[i])
    if 0 < i < len(errs) - 1:  # parabola through the three around the minimum
        a, b, c = errs[i - 1], errs[i], errs[i + 1]
        if a - 2 * b + c > 0:
            lag += 0.5 * (a - c) / (a - 2 * b + c)
    nmes = nme(p[ok], truth[ok]) if ok.any() else np.array([np.nan])
    return {"nme": float(np.mean(nmes)), "missed_frames": int((~ok).sum()), "jitter": jitter, "lag_frames": lag,
            "fps": len(pred) / seconds}


def grid(lm, frames, truth, fps):
    """Jitter (fraction of the unsmoothed tracking's) and lag for a grid of One-Euro parameters."""
    from flzoo.confidence import eye_distance
    from flzoo.smoothing import OneEuroFilter

    raw = [nearest(faces, t) for faces, t in zip(lm.track(frames, fps=fps, smooth=False), truth)]
    base = metrics(raw, truth, 1.0)
    print(f"unsmoothed: NME {base['nme']:.4f}, jitter {base['jitter']:.4f}, lag {base['lag_frames']:.2f}")
    print("| min_cutoff | beta | NME | jitter x | lag (frames) |\n|---|---|---|---|---|")
    for min_cutoff in (0.5, 1.0, 2.0):
        for beta in (1.0, 2.0, 3.0, 5.0, 10.0):
            f = OneEuroFilter(min_cutoff, beta)
            smooth = [None if p is None else f.filter(p, 1 / fps, float(eye_distance(p))) for p in raw]
            m = metrics(smooth, truth, 1.0)
            print(f"| {min_cutoff:g} | {beta:g} | {m['nme']:.4f} | {m['jitter'] / base['jitter']:.3f} | "
                  f"{m['lag_frames']:.2f} |")


def main():
    import flzoo
    from flzoo.metrics import nme
    from flzoo.video import VideoReader

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--truth", type=Path, default=None)
    ap.add_argument("--model", default="hybrid_disc.lite")  # the model docs/video.md measured
    ap.add_argument("--min-cutoff", type=float, default=None)
    ap.add_argument("--beta", type=float, default=None)
    ap.add_argument("--detect-every", type=int, default=None)
    ap.add_argument("--modes", default="still,detect,track_raw,track")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--grid", action="store_true",
                    help="instead: One-Euro parameter grid applied offline to the unsmoothed tracked points")
    args = ap.parse_args()
    info = json.loads((args.truth or args.video.with_suffix(".json")).read_text())
    truth = np.asarray(info["points"], np.float64)
    reader = VideoReader(args.video)
    frames = list(reader)
    truth = truth[:len(frames)]
    lm = flzoo.load(args.model, flip=False)  # docs/video.md's figures: the network alone
    lm.predict(frames[0])  # warm-up: runtime loading and the first call are not the video's cost
    opts = {k: v for k, v in (("min_cutoff", args.min_cutoff), ("beta", args.beta),
                              ("detect_every", args.detect_every)) if v is not None}
    out = {"video": str(args.video), "frames": len(frames), "model": args.model, "runtime": lm.runtime, **opts}
    if args.grid:
        grid(lm, frames, truth, reader.fps)
        return
    for mode in args.modes.split(","):
        start = time.perf_counter()
        if mode == "still":  # the photo itself, once (per-photo prediction, the reference NME)
            from flzoo.data.pts import read_pts

            photo = info["photo"]
            gt = read_pts(Path(photo).with_suffix(".pts"))
            faces = lm.predict(photo)
            p = nearest(faces, gt)
            out[mode] = {"nme": None if p is None else float(nme(p, gt))}
            continue
        if mode == "detect":
            pred = [nearest(lm.predict(f), t) for f, t in zip(frames, truth)]
        else:
            res = lm.track(frames, fps=reader.fps, smooth=mode == "track", **opts)
            pred = [nearest(faces, t) for faces, t in zip(res, truth)]
        out[mode] = metrics(pred, truth, time.perf_counter() - start)
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
