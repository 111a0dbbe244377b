"""Packed faces: the 300-W faces pre-cut to what training (or a ground-truth-crop evaluation) can see, so that a
machine without the photos (a lent GPU, which gets only the checkout's files, 64 MiB in all) can train and
evaluate from a few megabytes.

A packed folder holds ``packed.json`` (what was packed and how) and one ``<subset>.npz`` per subset:
- ``data`` uint8: the faces' encoded images (grey WebP, or PNG), one after another; ``offsets`` int64 (N + 1,);
- ``points`` float32 (N, 68, 2): the ground truth in the packed image's pixels;
- ``names`` (the photo's ``<folder>/<file>`` name, e.g. ``afw/1051618982_1.jpg``), ``photo_ids`` (str).
Read with ``allow_pickle=False``; nothing is unpickled.

Each packed image is the region ``FaceBatches`` itself caches for that face (``FaceBatches.region``: the part of
the photo any draw of the augmentation can see, area-resized to the model's input resolution), times
``factor`` <= 1 to fit a size budget, as the channel mean (the grey the paper's networks compute from RGB; it is
stored grey and read back as three equal channels). Crop boxes are similarity-invariant, so ``FaceBatches`` and
``flzoo.evaluate`` cut the same crops from a packed face as from the photo; NME is scale-invariant, so scores on
packed faces equal scores on the photos up to what the encoding and ``factor`` change (docs/training.md,
"Paper scale on a lent GPU").
"""

import json
from pathlib import Path

import numpy as np

from flzoo.data.datasets import Face

INDEX = "packed.json"
FORMAT = 1


def is_packed(root) -> bool:
    """True when ``root`` is a packed folder (holds ``packed.json``)."""
    return (Path(root) / INDEX).is_file()


def read_index(root) -> dict:
    path = Path(root) / INDEX
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err}); expected the index written by "
                         f"tools/gpu_prepare.py") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("subsets"), dict):
        raise ValueError(f"{path}: not a packed-faces index of format {FORMAT} (got {str(index)[:80]!r}); "
                         f"write it again with tools/gpu_prepare.py")
    return index


def grey(image) -> np.ndarray:
    """RGB uint8 -> the channel mean, uint8 (what ``GreyInput`` computes, rounded)."""
    return np.round(np.asarray(image, dtype=np.float32).mean(axis=-1)).astype(np.uint8)


def encode(grey_image, codec="webp", quality=75) -> bytes:
    import cv2

    if codec == "webp":
        ok, buf = cv2.imencode(".webp", grey_image, [cv2.IMWRITE_WEBP_QUALITY, int(quality)])
    elif codec == "png":
        ok, buf = cv2.imencode(".png", grey_image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    else:
        raise ValueError(f"codec {codec!r}; expected 'webp' or 'png'")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {grey_image.shape} image as {codec}")
    return buf.tobytes()


def decode(data, what="packed image") -> np.ndarray:
    """Encoded grey image -> RGB uint8 (three equal channels). OpenCV first, Pillow if OpenCV lacks the codec."""
    import cv2

    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None:
        try:
            import io

            from PIL import Image

            img = np.asarray(Image.open(io.BytesIO(bytes(data))).convert("L"))
        except Exception as err:
            raise ValueError(f"{what}: neither OpenCV nor Pillow can decode it ({err})") from None
    return np.repeat(img[:, :, None], 3, axis=2)


def write_subset(root, subset, items, codec="webp", quality=75):
    """``items``: ``[(name, photo_id, grey uint8 (H, W), points (68, 2))]`` -> ``root/<subset>.npz``; returns
    the file's size in bytes."""
    blobs = [encode(g, codec, quality) for _, _, g, _ in items]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    path = Path(root) / f"{subset}.npz"
    np.savez(path, data=np.frombuffer(b"".join(blobs), dtype=np.uint8), offsets=offsets,
             points=np.stack([np.asarray(p, np.float32) for _, _, _, p in items]),
             names=np.array([n for n, _, _, _ in items]), photo_ids=np.array([i for _, i, _, _ in items]))
    return path.stat().st_size


def read(root, subsets=None) -> dict:
    """``{subset: [Face, ...]}`` from a packed folder (in the order they were packed, which is ``discover``'s);
    a ``Face`` carries its decoded image in ``Face.image`` and its packed points, and ``image_path`` is the
    photo's ``<folder>/<file>`` name. ``ValueError`` naming the file for anything missing or malformed."""
    root = Path(root)
    index = read_index(root)
    wanted = list(index["subsets"]) if subsets is None else list(subsets)
    missing = [s for s in wanted if s not in index["subsets"]]
    if missing:
        raise ValueError(f"{root}: packed subsets {sorted(index['subsets'])} lack {missing}; pack them with "
                         f"tools/gpu_prepare.py")
    out = {}
    for subset in wanted:
        path = root / f"{subset}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                data, offsets, points = z["data"], z["offsets"], z["points"]
                names, ids = [str(n) for n in z["names"]], [str(i) for i in z["photo_ids"]]
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: unreadable packed subset ({type(err).__name__}: {err})") from None
        n = len(names)
        if offsets.shape != (n + 1,) or points.shape != (n, 68, 2) or len(ids) != n or offsets[-1] != data.size:
            raise ValueError(f"{path}: inconsistent arrays (names {n}, offsets {offsets.shape}, points "
                             f"{points.shape}, data {data.size} bytes)")
        if n != index["subsets"][subset].get("faces"):
            raise ValueError(f"{path}: holds {n} faces, {root / INDEX} says {index['subsets'][subset].get('faces')}")
        faces = []
        for i in range(n):
            image = decode(data[offsets[i]:offsets[i + 1]].tobytes(), f"{path} face {i} ({names[i]})")
            faces.append(Face(Path(names[i]), points[i].copy(), subset, ids[i], image=image))
        out[subset] = faces
    return out


def check_fits(root, input_size, augment, subsets):
    """``ValueError`` unless every packed subset named in ``subsets`` was cut for this input size and covers
    every draw of ``augment`` (an ``AugmentConfig`` or None): a larger window would show black where the photo
    was cut."""
    where = Path(root) / INDEX
    packed = read_index(root)["subsets"]
    extent = augment.max_extent() if augment is not None else 1.0
    zoom = max(1.0, augment.scale[1]) if augment is not None else 1.0
    for subset in subsets:
        info = packed.get(subset)
        if info is None:
            raise ValueError(f"{where}: no subset {subset!r}")
        if info["input_size"] != input_size:
            raise ValueError(f"{where}: {subset} was packed for input {info['input_size']} px, the recipe trains "
                             f"at {input_size}; pack again with --input-size {input_size}")
        if extent > info["extent"] + 1e-9 or zoom > info["zoom"] + 1e-9:
            raise ValueError(f"{where}: {subset} was packed for an augmentation window of {info['extent']:.3f} "
                             f"half sides (zoom {info['zoom']}), the recipe's augmentation needs {extent:.3f} "
                             f"(zoom {zoom}); pack again with that recipe")


def face_name(face) -> str:
    """``<parent folder>/<file>`` of a face's photo: how packed faces keep their identity."""
    p = Path(face.image_path)
    return f"{p.parent.name}/{p.name}"


__all__ = ["INDEX", "is_packed", "read", "read_index", "write_subset", "check_fits", "grey", "decode", "encode",
           "face_name"]
