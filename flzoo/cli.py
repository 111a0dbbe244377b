"""The ``flzoo`` command. Sub-commands live beside the code they drive and are imported only when used,
so ``flzoo --help`` does not import Keras."""

import importlib

import click

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
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flzoo")
def main():
    """flzoo: 68-point facial landmark models (Hsu et al. 2020) on any Keras backend."""


if __name__ == "__main__":
    main()
