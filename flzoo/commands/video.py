"""``flzoo predict VIDEO``: track the landmarks through a video, draw them into an overlay video, write JSON."""

import os
from pathlib import Path

import click

VIDEO_OUT_SUFFIXES = (".mp4", ".avi")  # what OpenCV's VideoWriter writes everywhere (mp4v, MJPG)


def predict_video(path, model, output, out_dir, json_path, refine, flip, runtime, detector, options):
    """Track faces through the video ``path``; ``options``: ``flzoo.video.track`` keyword arguments (None: the
    default). Outputs are checked before any work; an unreadable video is one error naming the file."""
    from tqdm import tqdm

    import flzoo
    from flzoo.commands.predict import _check_writable, _face_json, write_json
    from flzoo.drawing import draw_faces
    from flzoo.video import VideoReader, VideoWriter

    path = Path(path)
    if output is not None:
        if Path(output).suffix.lower() not in VIDEO_OUT_SUFFIXES:
            raise click.UsageError(f"-o/--output {output}: for a video, expected a .mp4 or .avi file name")
        target = Path(output)
    else:
        target = Path(out_dir or ".") / f"{path.stem}_landmarks.mp4"
    for out, what in ((target, "the overlay video"), (json_path, "the JSON")):
        if out is None:
            continue
        if Path(out).resolve() == path.resolve():
            raise click.UsageError(f"{out}: is the input video; flzoo never writes over an input. Choose another "
                                   f"path for {what}")
        _check_writable(out, what)
    if json_path is not None and Path(json_path).resolve() == target.resolve():
        raise click.UsageError(f"--json {json_path}: is also the overlay video's path; choose another")
    try:
        reader = VideoReader(path)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    try:
        landmarker = flzoo.load(model, detector=detector, refine=refine, flip=flip, runtime=runtime)
    except ValueError as err:
        raise click.UsageError(f"--model: {err}") from None

    # the overlay goes to a temporary file of the same suffix (OpenCV picks the container from it), renamed
    # at the end, so an interrupted run never leaves a truncated video under the target name
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer = VideoWriter(tmp, reader.fps, reader.width, reader.height)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    records, frames_with_faces = [], 0
    options = {k: v for k, v in options.items() if v is not None}
    last = {}

    def frames():  # the tracker yields the faces of the frame it has just read: keep it for the overlay
        for frame in reader:
            last["frame"] = frame
            yield frame

    try:
        with writer:  # closed (the file complete) before it takes the target's name
            tracked = landmarker.track(frames(), fps=reader.fps, **options)
            bar = tqdm(tracked, total=reader.frame_count, desc=f"tracking {path.name}", unit="frame",
                       disable=None)
            for index, faces in enumerate(bar):
                writer.write(draw_faces(last["frame"], faces))
                frames_with_faces += bool(faces)
                records.append({"frame": index, "time_s": round(index / reader.fps, 4),
                                "faces": [_face_json(f) for f in faces]})
        os.replace(tmp, target)
    except ValueError as err:  # e.g. bad track options
        raise click.UsageError(str(err)) from None
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"{path}: {len(records)} frames, faces in {frames_with_faces} -> {target}")
    if json_path:
        write_json(json_path, {"video": str(path), "fps": reader.fps, "model": landmarker.name,
                               "runtime": landmarker.runtime, "smooth": options.get("smooth", True),
                               "frames": records})
