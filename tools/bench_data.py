"""Time the data pipeline: epochs of ``FaceBatches`` over the 300-W training faces.

    python tools/bench_data.py [--root PATH] [--size 128] [--batch 32] [--epochs 3] [--target pwc --stride 4]

Prints one line per epoch (seconds, faces/s) and the cache size, then a JSON summary line. Epoch 0 includes
decoding every image once; later epochs warp from the in-memory cache. Other processes on the machine make the
figures pessimistic."""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="300-W folder (default: $FLZOO_300W or ../shared/data/300w)")
    parser.add_argument("--size", type=int, default=128, help="model input size S")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--target", default="pwc", choices=["points", "gaussian", "heatmap_reg", "pwc"])
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--no-augment", action="store_true", help="plain crops (validation-style)")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--photometric", type=float, default=0.0)
    parser.add_argument("--warm", action="store_true", help="decode all faces first with warm_cache() (threads)")
    args = parser.parse_args(argv)

    from flzoo.data import TRAIN_SUBSETS, AugmentConfig, TargetSpec, discover
    from flzoo.data.pipeline import FaceBatches
    from flzoo.paths import default_data_root

    root = args.root or default_data_root()
    faces = discover(root)
    train = [f for s in TRAIN_SUBSETS for f in faces.get(s, [])]
    if not train:
        sys.exit(f"no training faces below {root}")
    augment = None if args.no_augment else AugmentConfig(flip=args.flip, photometric=args.photometric)
    batches = FaceBatches(train, args.size, args.batch, TargetSpec(args.target, args.stride, args.sigma),
                          augment, shuffle=True, seed=0)
    times = []
    if args.warm:
        start = time.perf_counter()
        batches.warm_cache()
        print(f"warm_cache: {time.perf_counter() - start:.2f} s", flush=True)
    for epoch in range(args.epochs):
        batches.set_epoch(epoch)
        start = time.perf_counter()
        for i in range(len(batches)):
            batches[i]
        times.append(time.perf_counter() - start)
        print(f"epoch {epoch}: {times[-1]:.2f} s, {len(train) / times[-1]:.0f} faces/s, "
              f"cache {batches.cache_bytes / 2**20:.0f} MiB", flush=True)
    print(json.dumps({"faces": len(train), "input_size": args.size, "batch": args.batch,
                      "target": args.target, "stride": args.stride, "augment": augment is not None,
                      "epoch_s": [round(t, 2) for t in times], "cache_mib": round(batches.cache_bytes / 2**20)}))


if __name__ == "__main__":
    main()
