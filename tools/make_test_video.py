"""A test video with known landmarks: one annotated photo moved smoothly (translation, in-plane rotation, scale,
brightness) for a few hundred frames; the true 68 points of every frame go to a JSON file.

    python tools/make_test_video.py PHOTO.jpg [--pts PHOTO.pts] -o clip.mp4 [--truth clip.json] [--frames 300]

The video and truth are derived from the photo: keep them outside the repository when the photo is research-only
(300-W: /work/flzoo-runs/video/). Frame t is ``warpAffine(photo, A_t)`` with A_t = motion(t) o base, where base puts
the face's landmark-box centre at the frame centre with the box's larger side at ``--face`` px, and motion(t)
rotates by ``rot * sin(2 pi t / 150)`` degrees and scales by ``1 + scale * sin(2 pi t / 200)`` about the frame
centre, then shifts by ``(shift * sin(2 pi t / 120), 0.6 * shift * sin(2 pi t / 90))`` px; brightness is multiplied
by ``1 + 0.1 * sin(2 pi t / 70)``. ``--hold H``: after every 60 frames of motion the face rests H frames (the motion's
clock stops, easing in and out), as people hold still between moves. The truth is A_t applied to the annotation
(exact affine maps).
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def motion_matrix(t, width, height, rot=15.0, scale=0.15, shift=60.0):
    """The 2x3 affine of frame t's motion about the frame centre (frame pixels -> frame pixels)."""
    import cv2

    angle = rot * math.sin(2 * math.pi * t / 150)
    k = 1 + scale * math.sin(2 * math.pi * t / 200)
    m = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, k)
    m[0, 2] += shift * math.sin(2 * math.pi * t / 120)
    m[1, 2] += 0.6 * shift * math.sin(2 * math.pi * t / 90)
    return m


def compose(outer, inner):
    a = np.vstack([outer, [0, 0, 1]]) @ np.vstack([inner, [0, 0, 1]])
    return a[:2]


def motion_time(t, hold=0, move=60):
    """The motion's clock at frame t: with ``hold`` > 0 the face alternates ``move`` frames of motion and
    ``hold`` frames at rest, speed easing in and out over 10 frames (a smooth start and stop)."""
    if hold <= 0:
        return float(t)
    period = move + hold
    ramp = min(10, move // 2)

    def speed(u):  # 0..1 within a period
        u = u % period
        if u >= move:
            return 0.0
        edge = min(u, move - u)
        return 1.0 if edge >= ramp else 0.5 - 0.5 * math.cos(math.pi * edge / ramp)

    return float(sum(speed(u) for u in range(int(t))))


def render(photo, points, frames, width, height, face, rot, scale, shift, hold=0):
    """Yield ``(frame RGB uint8, true points (68, 2))`` for t = 0 .. frames - 1."""
    import cv2

    lo, hi = points.min(axis=0), points.max(axis=0)
    k = face / max(hi - lo)
    c = (lo + hi) / 2
    base = np.array([[k, 0, (width - 1) / 2 - k * c[0]], [0, k, (height - 1) / 2 - k * c[1]]])
    for t in range(frames):
        a = compose(motion_matrix(motion_time(t, hold), width, height, rot, scale, shift), base)
        frame = cv2.warpAffine(photo, a, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gain = 1 + 0.1 * math.sin(2 * math.pi * t / 70)
        frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        truth = points @ a[:, :2].T + a[:, 2]
        yield frame, truth


def main():
    from flzoo.data.pts import read_pts
    from flzoo.inference import read_image
    from flzoo.video import VideoWriter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--pts", type=Path, default=None, help="annotation [default: PHOTO with .pts]")
    ap.add_argument("-o", "--output", type=Path, required=True, help="video file (.mp4 or .avi)")
    ap.add_argument("--truth", type=Path, default=None, help="true points per frame [default: OUTPUT with .json]")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", default="640x480", help="frame WIDTHxHEIGHT")
    ap.add_argument("--face", type=float, default=180.0, help="landmark-box side in the frame (px)")
    ap.add_argument("--rot", type=float, default=15.0, help="rotation amplitude (degrees)")
    ap.add_argument("--scale", type=float, default=0.15, help="scale amplitude (fraction)")
    ap.add_argument("--shift", type=float, default=60.0, help="translation amplitude (px)")
    ap.add_argument("--hold", type=int, default=0,
                    help="frames at rest after every 60 frames of motion (0: always moving)")
    args = ap.parse_args()
    if args.output.resolve() == args.photo.resolve():
        sys.exit(f"error: {args.output}: is the input photo; choose another output")
    width, height = (int(v) for v in args.size.lower().split("x"))
    photo = read_image(args.photo)
    points = read_pts(args.pts or args.photo.with_suffix(".pts")).astype(np.float64)
    writer = VideoWriter(args.output, args.fps, width, height)
    truth = []
    for frame, true_points in render(photo, points, args.frames, width, height, args.face, args.rot, args.scale,
                                     args.shift, args.hold):
        writer.write(frame)
        truth.append(np.round(true_points, 4).tolist())
    writer.close()
    out = args.truth or args.output.with_suffix(".json")
    out.write_text(json.dumps({"video": str(args.output), "photo": str(args.photo), "fps": args.fps,
                               "width": width, "height": height, "points": truth}) + "\n")
    print(f"wrote {args.output} ({args.frames} frames, {width}x{height}, {args.fps:g} fps) and {out}")


if __name__ == "__main__":
    main()
