"""What the refinement pass gains: NME with detector boxes and 0, 1, 2 re-crop passes.

    python tools/refine_gain.py MODEL [--detector NAME] [--subset val|helen_test|...] [--root DATA_ROOT] [--limit N]

MODEL: registry name, folder or hf:// URI. ``--subset val`` (the default) is the VALIDATION faces (the training
split's held-out 10%, seed 0, as in training), where a default may be chosen; a test set only reports. Faces the detector misses are left out (the same faces for every
setting, since detection does not depend on refinement). Prints one Markdown row per setting."""

import argparse


def main():
    from flzoo.data.datasets import discover, validation_faces
    from flzoo.detect import DEFAULT_DETECTOR, DETECTORS
    from flzoo.evaluate import evaluate_faces
    from flzoo.inference import load
    from flzoo.paths import default_data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    parser.add_argument("--subset", default="val")
    parser.add_argument("--root", default=str(default_data_root()))
    parser.add_argument("--limit", type=int, default=None, help="first N faces only")
    args = parser.parse_args()
    found = discover(args.root)
    if args.subset == "val":
        faces = validation_faces(found)
    else:
        faces = found.get(args.subset)
    if not faces:
        raise SystemExit(f"{args.root}: subset {args.subset!r} not found")
    faces = faces[: args.limit]
    print(f"| refine passes | NME ({args.subset}, {args.detector} boxes, misses excluded) | AUC@0.08 | FR@0.08 | n |")
    print("|---|---|---|---|---|")
    for passes in (0, 1, 2):
        landmarker = load(args.model, detector=args.detector, refine=passes, flip=False)
        res = evaluate_faces(landmarker, {args.subset: faces}, boxes="detector", misses="exclude",
                             progress=False)
        s = res["summary"]["total"]
        print(f"| {passes} | {s['nme']:.4f} | {s['auc']:.3f} | {s['fr']:.3f} | {s['n']} |", flush=True)
    gt = evaluate_faces(load(args.model, refine=0, flip=False), {args.subset: faces}, boxes="gt", progress=False)
    print(f"| (ground-truth crop, for reference) | {gt['summary']['total']['nme']:.4f} | "
          f"{gt['summary']['total']['auc']:.3f} | {gt['summary']['total']['fr']:.3f} | "
          f"{gt['summary']['total']['n']} |")


if __name__ == "__main__":
    main()
