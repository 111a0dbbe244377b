"""Time the DAN cascade (flzoo/models/cascaded.py) on this machine's CPU with the current Keras backend.

Reports trainable parameters, batch-1 inference ms/face (compiled predict function, median of runs) and
training images/s (fit with a point loss on every stage, random data), each also as process CPU time, which a
shared machine distorts less than wall time. On a shared machine all of these are pessimistic.

Usage: KERAS_BACKEND=tensorflow python tools/bench_cascaded.py [--scale lite] [--size 112] [--stages 3]
"""

import argparse
import json
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="lite", choices=["lite", "paper"])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--stages", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    import keras

    from flzoo.models.cascaded import cascaded_network

    model = cascaded_network(input_size=args.size, stages=args.stages, scale=args.scale)
    rng = np.random.default_rng(0)
    one = rng.uniform(0, 255, (1, args.size, args.size, 3)).astype("float32")
    model.predict_on_batch(one)  # compile
    times, cpu = [], time.process_time()
    for _ in range(args.runs):
        start = time.perf_counter()
        model.predict_on_batch(one)
        times.append(time.perf_counter() - start)
    batch1_cpu = (time.process_time() - cpu) / args.runs

    def point_loss(y_true, y_pred):  # mean Euclidean distance, averaged over every stage's estimate
        return keras.ops.mean(keras.ops.sqrt(keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1) + 1e-12))

    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=point_loss, jit_compile=False)
    n = args.batch * 4
    x = rng.uniform(0, 255, (n, args.size, args.size, 3)).astype("float32")
    y = rng.uniform(0, args.size, (n, args.stages, 68, 2)).astype("float32")
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0)  # compile
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=args.batch, epochs=2, verbose=0)
    train_ips = 2 * n / (time.perf_counter() - start)
    train_cpu = (time.process_time() - cpu) / (2 * n)
    print(json.dumps({
        "backend": keras.backend.backend(), "scale": args.scale, "input_size": args.size, "stages": args.stages,
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "batch1_ms_per_face": round(1000 * float(np.median(times)), 2), "batch1_cpu_ms": round(1000 * batch1_cpu, 2),
        "train_images_per_s": round(train_ips, 1), "train_cpu_ms_per_image": round(1000 * train_cpu, 2),
        "batch": args.batch}))


if __name__ == "__main__":
    main()
