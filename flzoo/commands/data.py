"""``flzoo data``: check a dataset copy and look at its faces."""

import json
import sys
from pathlib import Path

import click


@click.group()
def data():
    """Inspect 300-W / COFW-68 data folders."""


@data.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check(path, as_json):
    """Count faces per subset and list every bad file; exit status 1 on any error."""
    from flzoo.data.check import check as run_check

    report = run_check(path)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"data root: {report['root']}")
        if report["subsets"]:
            click.echo(f"{'subset':<14} {'folder':<28} {'faces':>6} {'bad':>5}")
            for name, row in report["subsets"].items():
                click.echo(f"{name:<14} {row['folder']:<28} {row['faces']:>6} {row['bad']:>5}")
        for item in report["warnings"]:
            click.echo(f"warning: {item['file']}: {item['problem']}")
        for item in report["errors"]:
            click.echo(f"error: {item['file']}: {item['problem']}")
        total = sum(row["faces"] for row in report["subsets"].values())
        click.echo(f"{total} faces, {len(report['errors'])} errors, {len(report['warnings'])} warnings")
    sys.exit(0 if report["ok"] else 1)


@data.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG file to write.")
@click.option("--augment", is_flag=True, help="Show training augmentation (rotation, scale, flip, jitter).")
@click.option("--subset", multiple=True, help="Only these subsets (repeatable), e.g. helen_test.")
@click.option("-n", "--count", default=24, show_default=True, help="Number of faces.")
@click.option("--size", default=160, show_default=True, help="Crop size in pixels.")
@click.option("--columns", default=6, show_default=True)
@click.option("--seed", default=0, show_default=True, help="Picks the faces and the augmentation.")
@click.option("--centre", type=click.Choice(["box", "centroid"]), default="box", show_default=True,
              help="Crop centre: landmark box midpoint or point centroid.")
def show(path, output, augment, subset, count, size, columns, seed, centre):
    """Write a grid of cropped faces with their points (outer eye corners 36 red, 45 blue ring)."""
    import numpy as np

    from flzoo.data.augment import AugmentConfig
    from flzoo.data.datasets import discover, faces_in_folder
    from flzoo.drawing import draw_points, encode, grid
    from flzoo.paths import write_atomic

    if count < 1 or size < 16 or columns < 1:
        raise click.UsageError(f"--count must be >= 1, --size >= 16 and --columns >= 1; got {count}, {size}, "
                               f"{columns}")
    if output.suffix.lower() != ".png":
        raise click.UsageError(f"--output {output}: expected a .png file name")
    try:
        faces = discover(path)
        if not faces and any(path.glob("*.pts")):  # a plain folder of faces, e.g. helen/testset itself
            faces = {"folder": faces_in_folder(path)}
    except ValueError as err:
        raise click.UsageError(f"{err} (run 'flzoo data check {path}' for every problem)") from None
    unknown = sorted(set(subset) - set(faces))
    if unknown:
        raise click.UsageError(f"--subset {', '.join(unknown)}: not found below {path}; present: "
                               f"{', '.join(faces) or 'none'}")
    chosen = [f for name, fs in faces.items() if not subset or name in subset for f in fs]
    if not chosen:
        raise click.UsageError(f"{path}: no faces found (expected the 300-W layout, see docs/data.md)")
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(chosen), size=min(count, len(chosen)), replace=False))
    faces_shown = [chosen[i] for i in picks]

    from flzoo.data.augment import photometric
    from flzoo.data.crop import CropProtocol
    from flzoo.data.pipeline import FaceBatches

    config = AugmentConfig(flip=True, photometric=0.2) if augment else None
    batches = FaceBatches(faces_shown, size, 1, augment=config, seed=seed, crop=CropProtocol(centre=centre))
    tiles, labels = [], []
    for i, face in enumerate(faces_shown):
        crop, points, params, _ = batches.sample(i)
        if config is not None:
            crop = photometric(crop, params).astype(np.uint8)
        tiles.append(draw_points(crop, points))
        label = face.image_path.stem
        if config is not None:
            # augmentation first so a long file name cannot push it off the tile
            label = f"{'flip ' if params.flip else ''}{params.angle:+.0f}d x{params.scale:.2f} {label}"
        labels.append(label)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(output, encode(grid(tiles, columns, labels), ".png"))
    except OSError as err:
        raise click.ClickException(f"{output}: cannot write ({err.strerror or err})") from None
    click.echo(f"wrote {output} ({len(tiles)} faces)")
