"""Benchmark a flzoo network: training images/s (a real ``fit``) and batch-1 inference ms/face.

Training: ``fit`` on random images with the variant's natural simple loss (pixel-wise softmax cross-entropy
for map variants, as PWC; mean squared error for direct; for the cascade, ``flzoo.losses.cascade_point_loss``,
the point loss on every stage that ``LandmarkModel`` trains it with), Adam, batch 32, no XLA. The first
``--warmup`` batches (graph tracing) are not timed. Inference: batch 1 through a compiled function
(``tf.function`` on TensorFlow, ``jax.jit`` on JAX, eager ``torch.no_grad`` on PyTorch) and, with
``--onnx``, through onnxruntime on a ``keras.Model.export(format="onnx")`` file.

    KERAS_BACKEND=tensorflow python tools/bench_models.py --variant pwc --backbone lite --onnx
    KERAS_BACKEND=tensorflow python tools/bench_models.py --variant cascaded --backbone lite   # DAN, 112 px

Prints a human summary and one JSON line. Timings depend on what else the machine runs.
"""

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="pwc")
    p.add_argument("--backbone", default="lite")
    p.add_argument("--input-size", type=int, default=None, help="default: the variant's (128 for lite)")
    p.add_argument("--width", type=float, default=None, help="lite channel multiplier")
    p.add_argument("--freeze", type=int, default=None, help="ImageNet backbones: freeze layers up to this stride")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--train-batches", type=int, default=30, help="timed training batches")
    p.add_argument("--warmup", type=int, default=5, help="untimed training batches first")
    p.add_argument("--infer-runs", type=int, default=200)
    p.add_argument("--onnx", action="store_true", help="also time onnxruntime on an exported ONNX file")
    p.add_argument("--litert", action="store_true", help="also time LiteRT on an exported .tflite file")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-infer", action="store_true")
    return p.parse_args(argv)


class BatchTimer:
    """Keras callback: wall time of each training batch."""

    def __init__(self):
        import keras

        outer = self

        class _Timer(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                outer._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                outer.times.append(time.perf_counter() - outer._start)

        self.times = []
        self.callback = _Timer()


def bench_training(network, batch, warmup, batches, seed=0, variant=None):
    import keras

    rng = np.random.default_rng(seed)
    n = batch * (warmup + batches)
    x = rng.uniform(0, 255, (n,) + tuple(network.input_shape[1:])).astype("float32")
    out_shape = tuple(network.output_shape[1:])
    if variant == "cascaded":  # output (stages, 68, 2); one point target per face, a point loss on every stage
        from flzoo.losses import cascade_point_loss

        y = rng.uniform(0, network.input_shape[1], (n, 68, 2)).astype("float32")

        def loss(y_true, y_pred):
            return cascade_point_loss(y_pred, y_true)[0]
    elif len(out_shape) == 3:  # map variant: one class per output pixel, as PWC labels
        y = rng.integers(0, out_shape[-1], (n,) + out_shape[:2]).astype("int32")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    else:
        y = rng.uniform(0, network.input_shape[1], (n,) + out_shape).astype("float32")
        loss = "mse"
    network.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, jit_compile=False)
    timer = BatchTimer()
    network.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[timer.callback])
    timed = timer.times[warmup:]
    return batch * len(timed) / sum(timed)


def compiled_forward(network):
    """A batch-1 forward function compiled for the current backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda x: network(x, training=False), reduce_retracing=True)
        return lambda x: fn(tf.constant(x)).numpy()
    if backend == "jax":
        import jax

        trainable = [v.value for v in network.trainable_variables]
        non_trainable = [v.value for v in network.non_trainable_variables]

        @jax.jit
        def fn(x):
            out, _ = network.stateless_call(trainable, non_trainable, x, training=False)
            return out

        return lambda x: np.asarray(fn(x))
    if backend == "torch":
        import torch

        def fn(x):
            with torch.no_grad():
                return network(torch.from_numpy(x), training=False).cpu().numpy()

        return fn
    raise ValueError(f"KERAS_BACKEND={backend!r}: expected tensorflow, jax or torch")


def time_calls(fn, x, runs):
    for _ in range(10):
        fn(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def bench_exported(network, x, runs, fmt):
    """Batch-1 ms of ``network`` exported as ``fmt`` ("onnx" or "litert") in its runtime, 1 and 2 threads."""
    from flzoo.export import RUNNERS, SUFFIX

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model" + SUFFIX[fmt])
        network.export(path, format=fmt, verbose=False)
        return {f"{fmt}_ms_{threads}thread": time_calls(RUNNERS[fmt](path, threads), x, runs) for threads in (1, 2)}


def main(argv=None):
    args = parse_args(argv)
    import keras

    from flzoo.models import build_network

    options = {k: v for k, v in (("width", args.width), ("freeze", args.freeze)) if v is not None}
    network, stride, _ = build_network(args.variant, args.backbone, args.input_size, **options)
    params = sum(int(np.prod(v.shape)) for v in network.trainable_weights)
    result = {"backend": keras.backend.backend(), "variant": args.variant, "backbone": args.backbone, **options,
              "input_size": network.input_shape[1], "output_shape": list(network.output_shape[1:]),
              "stride": stride, "trainable_params": params, "batch": args.batch, "cpus": os.cpu_count(),
              "load_avg_1min": os.getloadavg()[0]}
    x1 = np.random.default_rng(1).uniform(0, 255, (1,) + tuple(network.input_shape[1:])).astype("float32")
    if not args.skip_infer:
        result["infer_ms_batch1"] = time_calls(compiled_forward(network), x1, args.infer_runs)
    for fmt in ("onnx", "litert"):
        if getattr(args, fmt):
            result.update(bench_exported(network, x1, args.infer_runs, fmt))
    if not args.skip_train:
        result["train_img_per_s"] = bench_training(network, args.batch, args.warmup, args.train_batches,
                                                   variant=args.variant)
    result["load_avg_1min_end"] = os.getloadavg()[0]
    for key, value in result.items():
        print(f"{key:>20}: {value:.2f}" if isinstance(value, float) else f"{key:>20}: {value}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
