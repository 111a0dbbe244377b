"""Prepare, on the CPU, what a lent GPU machine needs to train and evaluate a recipe: packed faces and wheels.

The device machine gets only the checkout's files (tracked + untracked-not-ignored, 64 MiB in all with the
carried paths) and has no registry: not ../shared/data/300w and not Keras. This writes into ``.gpu/`` (ignored
by git: the faces are derived from the research-only 300-W data and must never be committed)
- ``.gpu/data/``: the recipe's training subsets and the test subsets packed by ``flzoo.data.packed`` (each
  face the photo window FaceBatches itself caches, grey WebP), sized to fit the room the tree leaves;
- ``.gpu/whl/``: the wheels the device lacks (Keras and its two missing dependencies, for CPython 3.12).

    python tools/gpu_prepare.py recipes/hybrid_disc.yaml            # then: tools/gpu_paper_scale.sh on the device
    python tools/gpu_prepare.py recipes/lite/hybrid.yaml --max-faces 40 --out /tmp/gpu   # a small test copy

The room: 64 MiB minus the files that travel anyway (``git ls-files --cached --others --exclude-standard``, and
``shared/`` if the checkout has one), the wheels and a 1 MiB margin. Test faces are packed at full resolution
(WebP quality 90); training faces at the largest resolution factor of the ladder that fits the rest (WebP
quality 75 by default). Prints every size it measured and writes them into ``.gpu/data/packed.json``.
"""

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LIMIT = 64 * 2**20  # what travels to the device machine (working tree + carried paths)
MARGIN = 2**20
LADDER = (1.0, 0.9, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3)
# Keras and the two of its dependencies the device image lacks (docs/training.md: "Paper scale on a lent GPU").
WHEELS = ("keras==3.15.1", "optree==0.20.0", "namex==0.1.0")
PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                 "manylinux1_x86_64")


def tree_bytes(repo, exclude=()):
    """Bytes of what travels without being carried: tracked and untracked-not-ignored files, and ``shared/``."""
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout.decode()
    total = 0
    for name in filter(None, out.split("\0")):
        path = repo / name
        if path.is_file() and not any(path.is_relative_to(e) for e in exclude):
            total += path.stat().st_size
    shared = repo / "shared"
    if shared.is_dir():
        total += sum(p.stat().st_size for p in shared.rglob("*") if p.is_file())
    return total


def folder_bytes(folder):
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def download_wheels(folder):
    folder.mkdir(parents=True, exist_ok=True)
    have = {p.name.split("-")[0].lower() for p in folder.glob("*.whl")}
    wanted = [w for w in WHEELS if w.split("==")[0].lower() not in have]
    if wanted:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", *[a for p in PIP_PLATFORMS for a in ("--platform", p)], "-d",
               str(folder), *wanted]
        print("downloading wheels:", " ".join(wanted), flush=True)
        subprocess.run(cmd, check=True)
    names = sorted(p.name for p in folder.glob("*.whl"))
    versions = {}
    for n in names:
        versions.setdefault(n.split("-")[0].lower(), []).append(n)
    twice = {k: v for k, v in versions.items() if len(v) > 1}
    if twice:
        raise SystemExit(f"{folder}: more than one wheel of {sorted(twice)} ({twice}); keep one of each (pip on "
                         f"the device refuses two)")
    return names


def input_size_of(recipe):
    from flzoo.models import resolve_input_size

    m = recipe["model"]
    return resolve_input_size(m["variant"], m["backbone"], m["input_size"])


def augment_of(recipe):
    from flzoo.data import AugmentConfig

    a = recipe["augment"]
    if not a["enabled"]:
        return None
    return AugmentConfig(rotation=a["rotation"], scale=(a["scale_min"], a["scale_max"]), flip=a["flip"],
                         photometric=a["photometric"], shift=a["shift"])


def region(face, size, augment):
    """``(RGB region, points in it, region pixels per photo pixel, crop side in photo pixels)``: the photo window
    ``FaceBatches`` caches for this face (``_cut_region``: the part any draw of ``augment`` can see, + 2 input
    pixels), area-resized to the input resolution with ONE scale for both axes, so that the region is an exact
    similarity of the photo and crop boxes computed in it are those of the photo."""
    import cv2

    from flzoo.data.crop import crop_square
    from flzoo.data.datasets import load_image

    image = load_image(face)
    cx, cy, side = crop_square(face.points)
    extent, zoom = (augment.max_extent(), max(1.0, augment.scale[1])) if augment is not None else (1.0, 1.0)
    half = side / 2.0 * extent + 2.0 * side / size
    h, w = image.shape[:2]
    x0, y0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
    x1, y1 = max(x0, min(w, math.ceil(cx + half) + 1)), max(y0, min(h, math.ceil(cy + half) + 1))
    part, k = image[y0:y1, x0:x1], min(1.0, size / side * zoom)
    if k < 1.0:  # fx = fy = k: OpenCV maps with exactly this scale (only the output size is rounded)
        part = cv2.resize(part, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    points = (face.points.astype(np.float64) - [x0, y0] + 0.5) * k - 0.5
    return np.ascontiguousarray(part), points, k, side


def base_regions(faces, size, augment, label):
    """``region`` of every face, kept grey (the channel mean, as ``GreyInput``)."""
    from flzoo.data import packed

    out = []
    t0 = time.time()
    for i, face in enumerate(faces):
        part, points, k, side = region(face, size, augment)
        out.append((packed.grey(part), points, k, side))
        if (i + 1) % 500 == 0:
            print(f"  {label}: {i + 1}/{len(faces)} faces cut ({time.time() - t0:.0f} s)", flush=True)
    return out


def at_factor(base, size, factor):
    """A base region re-sampled so that the face is at ``factor`` x the input resolution (never above the photo's
    own), with its points; one scale for both axes, pixel-centre convention."""
    import cv2

    grey, points, k1, side = base
    rel = min(1.0, factor * size / side) / k1
    if rel >= 1.0 - 1e-9:
        return grey, points
    small = cv2.resize(grey, None, fx=rel, fy=rel, interpolation=cv2.INTER_AREA)
    return small, (points + 0.5) * rel - 0.5


def encoded_bytes(bases, size, factor, quality, step=1):
    """``(estimated bytes of all, mean PSNR in dB of the encoding)`` from every ``step``-th base region."""
    from flzoo.data import packed

    total, psnr = 0, []
    for b in bases[::step]:
        grey = at_factor(b, size, factor)[0]
        data = packed.encode(grey, "webp", quality)
        total += len(data)
        err = np.mean((packed.decode(data)[..., 0].astype(np.float64) - grey) ** 2)
        psnr.append(10 * math.log10(255.0 ** 2 / max(err, 1e-12)))
    return total * len(bases) / len(bases[::step]), float(np.mean(psnr))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe", type=Path, help="the recipe to train on the device (its subsets, input size, "
                                              "augmentation window)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override, as flzoo-train --set (use the same ones on the device)")
    ap.add_argument("--data", type=Path, default=None, help="300-W folder [default: $FLZOO_300W or "
                                                            "../shared/data/300w]")
    ap.add_argument("--out", type=Path, default=REPO / ".gpu", help="output folder [default: .gpu in the "
                                                                    "checkout, ignored by git]")
    ap.add_argument("--test-subsets", default="helen_test", help="comma-separated test subsets to pack for the "
                                                                 "final evaluation [default: helen_test]")
    ap.add_argument("--quality", type=int, default=75, help="WebP quality of the training faces [75]")
    ap.add_argument("--test-quality", type=int, default=90, help="WebP quality of the test faces [90]")
    ap.add_argument("--factor", type=float, default=None, help="resolution factor of the training faces "
                                                               "[default: the largest of the ladder that fits]")
    ap.add_argument("--room-mib", type=float, default=None, help="room for the packed faces [default: 64 MiB - "
                                                                 "the tree - the wheels - 1 MiB]")
    ap.add_argument("--max-faces", type=int, default=None, help="pack only the first N faces of each subset "
                                                                "(tests)")
    ap.add_argument("--no-wheels", action="store_true", help="do not download the wheels")
    ap.add_argument("--skip-bad", action="store_true", help="leave out bad faces (as flzoo-train --skip-bad)")
    args = ap.parse_args(argv)

    from flzoo.data import packed
    from flzoo.data.check import checked_faces
    from flzoo.data.datasets import TEST_SUBSETS
    from flzoo.paths import default_data_root
    from flzoo.train import recipe as recipes

    recipe = recipes.load(args.recipe, args.overrides)
    root = args.data or (Path(recipe["data"]["root"]) if recipe["data"]["root"] else default_data_root())
    if not root.is_dir():
        raise SystemExit(f"data folder {root} does not exist; pass --data (the 300-W folder)")
    tests = [s.strip() for s in args.test_subsets.split(",") if s.strip()]
    bad = [s for s in tests if s not in TEST_SUBSETS]
    if bad:
        raise SystemExit(f"--test-subsets: {bad} are not test subsets ({', '.join(TEST_SUBSETS)})")
    size, augment = input_size_of(recipe), augment_of(recipe)
    from flzoo.models.backbones import get_backbone

    if recipe["model"]["variant"] != "cascaded" and get_backbone(recipe["model"]["backbone"]).colour != "grey":
        raise SystemExit(f"model.backbone = {recipe['model']['backbone']!r} takes colour input; packed faces are "
                         f"grey (what the paper's VGG19-FCN and the lite networks compute from RGB)")
    out = args.out.resolve()
    data_dir = out / "data"
    if data_dir.exists() and not packed.is_packed(data_dir) and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} exists and is not a packed folder; choose another --out")
    if out.is_relative_to(REPO):
        ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", str(data_dir)]).returncode == 0
        if not ignored:
            raise SystemExit(f"{data_dir} is inside the checkout but not ignored by git: derived 300-W crops "
                             f"must never be committed; add it to .gitignore")

    wheels = [] if args.no_wheels else download_wheels(out / "whl")
    wheel_bytes = folder_bytes(out / "whl") if wheels else 0
    tree = tree_bytes(REPO, exclude=(out,))
    room = args.room_mib * 2**20 if args.room_mib else LIMIT - tree - wheel_bytes - MARGIN
    print(f"travelling tree {tree / 2**20:.1f} MiB, wheels {wheel_bytes / 2**20:.1f} MiB ({', '.join(wheels) or 'none'}"
          f"); room for the packed faces {room / 2**20:.1f} MiB", flush=True)
    if room <= 0:
        raise SystemExit("no room left under the 64 MiB the device machine takes; untrack or ignore large files")

    train_subsets = recipe["data"]["subsets"]
    found, skipped = checked_faces(root, train_subsets + tests, args.skip_bad)
    for line in skipped:
        print(f"--skip-bad: left out {line}")
    missing = [s for s in train_subsets + tests if s not in found]
    if missing:
        raise SystemExit(f"{root}: subsets {missing} not found")
    faces = {s: found[s][:args.max_faces] if args.max_faces else found[s] for s in train_subsets + tests}

    data_dir.mkdir(parents=True, exist_ok=True)
    for old in data_dir.glob("*.npz"):
        old.unlink()
    (data_dir / packed.INDEX).unlink(missing_ok=True)
    index = {"format": packed.FORMAT, "note": "derived from the 300-W data: research, non-commercial use only; "
             "never commit", "source": str(root), "recipe": str(args.recipe), "created": time.strftime(
             "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "codec": "webp (grey)", "tree_bytes": tree,
             "wheel_bytes": wheel_bytes, "room_bytes": int(room), "subsets": {}}

    used = 0
    for subset in tests:  # full resolution, no augmentation window: the ground-truth crop + 2 px
        bases = base_regions(faces[subset], size, None, subset)
        items = [(packed.face_name(f), f.photo_id, g, p) for f, (g, p, _, _) in zip(faces[subset], bases)]
        nbytes = packed.write_subset(data_dir, subset, items, "webp", args.test_quality)
        used += nbytes
        index["subsets"][subset] = {"faces": len(items), "bytes": nbytes, "factor": 1.0, "quality": args.test_quality,
                                    "input_size": size, "extent": 1.0, "zoom": 1.0}
        print(f"{subset}: {len(items)} faces, {nbytes / 2**20:.2f} MiB (full resolution, quality "
              f"{args.test_quality})", flush=True)

    bases = {s: base_regions(faces[s], size, augment, s) for s in train_subsets}
    every = [b for s in train_subsets for b in bases[s]]
    left = room - used
    extent = augment.max_extent() if augment is not None else 1.0
    zoom = max(1.0, augment.scale[1]) if augment is not None else 1.0
    written = None
    for f in ([args.factor] if args.factor else LADDER):
        step = max(1, len(every) // 400)
        estimate, psnr = encoded_bytes(every, size, f, args.quality, step=step)
        print(f"training faces at factor {f}: about {estimate / 2**20:.1f} MiB (room {left / 2**20:.1f} MiB; "
              f"estimated on {len(every[::step])} of {len(every)} faces, WebP PSNR {psnr:.1f} dB)", flush=True)
        if estimate > left and not args.factor:
            continue
        written, nbytes_all = {}, 0
        for subset in train_subsets:
            items = []
            for face, b in zip(faces[subset], bases[subset]):
                g, p = at_factor(b, size, f)
                items.append((packed.face_name(face), face.photo_id, g, p))
            nbytes = packed.write_subset(data_dir, subset, items, "webp", args.quality)
            nbytes_all += nbytes
            written[subset] = (items, nbytes)
        if nbytes_all <= left or args.factor:
            factor = f
            break
        print(f"  written: {nbytes_all / 2**20:.1f} MiB, over the room; next factor", flush=True)
        written = None
    if written is None:
        raise SystemExit(f"the training faces do not fit in {left / 2**20:.1f} MiB even at factor {LADDER[-1]}; "
                         f"lower --quality or free room in the tree")
    for subset, (items, nbytes) in written.items():
        used += nbytes
        sides = [math.sqrt(g.size) for _, _, g, _ in items]
        index["subsets"][subset] = {"faces": len(items), "bytes": nbytes, "factor": factor, "quality": args.quality,
                                    "input_size": size, "extent": extent, "zoom": zoom, "psnr_db": round(psnr, 2)}
        print(f"{subset}: {len(items)} faces, {nbytes / 2**20:.2f} MiB (factor {factor}, quality {args.quality}, "
              f"mean side {np.mean(sides):.0f} px)", flush=True)
    index["packed_bytes"] = used
    (data_dir / packed.INDEX).write_text(json.dumps(index, indent=1) + "\n")
    total = tree + wheel_bytes + folder_bytes(data_dir)
    print(f"wrote {data_dir}: {used / 2**20:.1f} MiB of faces; what travels with carry=['.gpu']: "
          f"{total / 2**20:.1f} MiB of the 64 MiB", flush=True)
    if total > LIMIT and not args.room_mib:
        raise SystemExit(f"over the 64 MiB limit by {(total - LIMIT) / 2**20:.1f} MiB; lower --quality or --factor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
