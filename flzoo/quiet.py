"""A clean terminal by default: TensorFlow prints start-up lines from C++ (oneDNN, CPU features, absl) while it
is imported, which no Python setting reaches, so the CLI imports Keras with the process's stderr pointed at
/dev/null, and keeps TensorFlow's Python loggers to errors. ``--verbose`` brings all of it back."""

import contextlib
import logging
import os
import sys


@contextlib.contextmanager
def stderr_to_devnull():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def import_keras(verbose=False):
    """Import Keras (and its backend) now; quietly unless ``verbose``. Errors still surface: the stream is
    restored before any exception propagates."""
    if verbose:
        import keras  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with stderr_to_devnull():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.get_logger().setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


__all__ = ["import_keras", "stderr_to_devnull"]
