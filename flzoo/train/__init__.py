"""Training: recipes (``recipe``), the run (``loop``), resumable checkpoints (``checkpoint``), ``flzoo-train``
(``cli``). Importing this package imports no Keras; ``loop`` imports it inside functions."""

from flzoo.train.recipe import RecipeError, load as load_recipe, resolve as resolve_recipe

__all__ = ["RecipeError", "load_recipe", "resolve_recipe", "train"]


def train(recipe, out, data_root, resume=False, progress=True):
    """Run a resolved recipe (see ``flzoo.train.loop.train``)."""
    from flzoo.train.loop import train as _train

    return _train(recipe, out, data_root, resume=resume, progress=progress)
