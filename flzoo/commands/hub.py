"""``flzoo push`` and ``flzoo pull``: models to and from the Hugging Face Hub (see docs/hub.md)."""

from pathlib import Path

import click


def _model_source(source):
    """A run / model folder path, or a registry name whose weights are bundled with flzoo."""
    from flzoo import registry
    from flzoo.inference import resolve_folder

    path = Path(source).expanduser()
    if not path.exists() and registry.is_name(source) and registry.get_entry(source).hub_repo:
        raise click.UsageError(f"registry model {source!r} already lives on the Hub "
                               f"({registry.source(registry.get_entry(source))}); push a run folder instead")
    if source.startswith("hf://"):
        raise click.UsageError(f"{source!r}: push takes a local folder or a bundled model name, not a Hub address")
    try:
        return resolve_folder(source)
    except ValueError as err:
        raise click.UsageError(f"{err} (push takes a training run with best/, a model folder with "
                               f"model.safetensors and config.json, or a bundled model name)") from None


@click.command()
@click.argument("source", metavar="RUN_DIR|NAME")
@click.option("--repo", required=True, metavar="ORG/NAME", help="Hub repo to push to (created if missing).")
@click.option("--revision", default=None, metavar="BRANCH", help="Branch to commit to (created if missing); "
              "default main.")
@click.option("--private", is_flag=True, help="Create the repo private (an existing repo keeps its visibility).")
@click.option("--token", default=None, help="Hub token with write access; default HF_TOKEN or the saved login.")
@click.option("--message", default=None, help="Commit message.")
def push(source, repo, revision, private, token, message):
    """Publish a trained model: model.safetensors, config.json and a model card with its `flzoo eval`
    figures (RUN_DIR/eval*/results.json), in one commit. HF_ENDPOINT selects the Hub."""
    from flzoo.hub import HubError
    from flzoo.hub import push as hub_push

    folder = _model_source(source)
    try:
        result = hub_push(folder, repo, revision=revision, private=private, token=token, commit_message=message)
    except HubError as err:
        raise click.UsageError(str(err)) from None
    click.echo(f"pushed {folder} to {result.repo} (branch {result.revision}, commit {result.commit})")
    click.echo(f"load it with: flzoo.load({result.uri!r})")


@click.command()
@click.argument("repo", metavar="ORG/NAME|hf://ORG/NAME@REV")
@click.option("--revision", default=None, metavar="REV", help="Branch, tag or commit; default main.")
@click.option("--token", default=None, help="Hub token for a private repo; default HF_TOKEN or the saved login.")
def pull(repo, revision, token):
    """Download a model into the Hugging Face cache (then it loads offline) and print its folder."""
    from flzoo.hub import HubError, download

    try:
        folder = download(repo, revision, token=token)
    except HubError as err:
        raise click.UsageError(str(err)) from None
    click.echo(str(folder))
