"""Training: recipes (``recipe``), the run (``loop``), resumable checkpoints (``checkpoint``), ``flzoo-train``
(``cli``). Importing this package imports no Keras; ``loop`` imports it inside functions."""

from flzoo.train.recipe import RecipeError, load as load_recipe, resolve as resolve_recipe

__all__ = ["RecipeError", "RunError", "load_recipe", "resolve_recipe", "train"]


def __getattr__(name):
    """``train`` and ``RunError`` are ``flzoo.train.loop``'s own, imported on first use (keeps the CLI's recipe
    check fast)."""
    if name in ("train", "RunError"):
        from flzoo.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
