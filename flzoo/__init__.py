"""flzoo: a Keras 3 multi-backend model zoo for 68-point facial landmark detection.

Importing flzoo is cheap: Keras and the backends are imported only when a model is built or loaded.
"""

from flzoo.landmarks import NUM_POINTS
from flzoo.version import __version__


def load(name_or_path=None, **kwargs):
    """Load a model by registry name (None: the default model), folder path or ``hf://ORG/NAME[@REVISION]``;
    returns a Landmarker."""
    from flzoo.inference import load as _load

    return _load(name_or_path, **kwargs)


def list_models(pattern="*"):
    """Registry entries (dicts) whose name matches the glob ``pattern``."""
    from flzoo.registry import list_models as _list_models

    return _list_models(pattern)


__all__ = ["load", "list_models", "NUM_POINTS", "__version__"]
