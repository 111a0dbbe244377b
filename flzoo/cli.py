"""The ``flzoo`` command. Sub-commands live beside the code they drive and are imported only when used,
so ``flzoo --help`` does not import Keras."""

import importlib
import importlib.util
import os

import click

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def require_backend(backend, origin):
    """Fail in one line, before Keras is imported, when the Keras backend ``backend`` is not installed."""
    if backend is None:
        return
    module = BACKEND_MODULES.get(backend)
    if module is None:
        return  # another Keras backend (numpy, openvino): Keras itself says whether it can use it
    if importlib.util.find_spec(module) is None:
        extra = "" if backend == "tensorflow" else f"pip install 'flzoo[{backend}]'"
        raise click.ClickException(f"{origin}={backend}: the {module} package is not installed; "
                               f"{extra or 'reinstall flzoo (pip install flzoo)'}")

# command name -> "module:attribute" of a click command or group
COMMANDS = {
    "data": "flzoo.commands.data:data",
    "list": "flzoo.commands.predict:list_cmd",
    "predict": "flzoo.commands.predict:predict",
    "export": "flzoo.commands.predict:export",
    "eval": "flzoo.commands.evaluate:eval_cmd",
    "compare": "flzoo.commands.evaluate:compare",
    "push": "flzoo.commands.hub:push",
    "pull": "flzoo.commands.hub:pull",
    "train": "flzoo.train.cli:main",  # also installed as flzoo-train
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


# Sub-commands that run a model: Keras is imported first, quietly (flzoo.quiet). `train` picks its backend
# itself, so it imports Keras on its own.
MODEL_COMMANDS = ("predict", "eval", "export")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flzoo")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's and Keras' own log lines.")
@click.pass_context
def main(ctx, verbose):
    """flzoo: 68-point facial landmark models (Hsu et al. 2020) on any Keras backend."""
    require_backend(os.environ.get("KERAS_BACKEND"), "KERAS_BACKEND")
    if ctx.invoked_subcommand in MODEL_COMMANDS:
        from flzoo.quiet import import_keras

        import_keras(verbose)


if __name__ == "__main__":
    main()
