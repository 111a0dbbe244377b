"""``flzoo-train RECIPE.yaml``: validate the recipe, pick the backend, then train (or resume) a run.

The recipe and the data path are checked before Keras is imported, and ``--backend`` sets ``KERAS_BACKEND``
before that import, so a bad recipe fails in well under a second and the backend choice always takes effect."""

import os
import sys
from pathlib import Path

import click

from flzoo.train import recipe as recipes


def _set_backend(backend):
    from flzoo.cli import require_backend

    if backend is None:
        require_backend(os.environ.get("KERAS_BACKEND"), "KERAS_BACKEND")
        return
    require_backend(backend, "--backend")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        raise click.UsageError(f"--backend {backend}: Keras is already imported with the "
                               f"{keras.backend.backend()!r} backend in this process; run flzoo-train afresh")
    os.environ["KERAS_BACKEND"] = backend


def data_root(recipe, data_option):
    """The data folder from --data, else data.root, else $FLZOO_300W / ../shared/data/300w; must exist."""
    from flzoo.paths import default_data_root

    if data_option:
        root, origin = Path(data_option), "--data"
    elif recipe["data"]["root"]:
        root, origin = Path(recipe["data"]["root"]), "data.root in the recipe"
    else:
        root, origin = default_data_root(), "the default ($FLZOO_300W or ../shared/data/300w)"
    if not root.is_dir():
        raise click.UsageError(f"data path {root} (from {origin}) does not exist; expected the 300-W folder "
                               f"(afw/, helen/trainset/, lfpw/trainset/); pass --data PATH")
    return root.resolve()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("recipe_path", metavar="RECIPE.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", "data_option", type=click.Path(path_type=Path), help="300-W folder (overrides data.root).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder [default: runs/<recipe name>].")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key, e.g. --set train.max_steps=100 (repeatable; YAML values).")
@click.option("--backend", type=click.Choice(["tensorflow", "jax", "torch"]),
              help="Keras backend [default: $KERAS_BACKEND or tensorflow].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--progress/--no-progress", default=True, help="Show the progress bar.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's and Keras' own log lines.")
@click.option("--skip-bad", is_flag=True,
              help="Leave out faces whose files are bad (listed in the log, counted in metrics.json) instead of "
                   "stopping before training.")
def main(recipe_path, data_option, out, overrides, backend, resume, progress, verbose, skip_bad):
    """Train a landmark model from RECIPE.yaml (see docs/training.md)."""
    _set_backend(backend)
    try:
        recipe = recipes.load(recipe_path, overrides)
    except recipes.RecipeError as err:
        raise click.UsageError(str(err)) from None
    root = data_root(recipe, data_option)
    recipe["data"]["root"] = str(root)
    out = out or Path("runs") / recipe["name"]

    from flzoo.train.loop import RunError, train
    from flzoo.train.run_folder import check_out, finished_state

    try:
        done = finished_state(check_out(out, recipe, resume))  # before Keras is imported: fails fast
        if done:
            click.echo(f"{out}: the run already finished ({done}); see {out / 'metrics.json'}", err=True)
            return
        from flzoo.quiet import import_keras

        import_keras(verbose)
        train(recipe, out, root, resume=resume, progress=progress, log=lambda m: click.echo(m, err=True),
              skip_bad=skip_bad)
    except (RunError, recipes.RecipeError) as err:
        raise click.ClickException(str(err)) from None
    except OSError as err:  # a full disk, a folder that became read-only
        raise click.ClickException(f"{err.filename or out}: cannot write ({err.strerror or err}); the run can "
                                   f"continue with --resume from its last checkpoint once there is room") from None


if __name__ == "__main__":
    main()
