"""Hugging Face Hub: publish a model folder (``push``) and fetch one through the Hub cache (``download``).

A flzoo Hub repo holds ``model.safetensors`` + ``config.json`` (the files ``flzoo.weights`` reads) and a
``README.md`` model card rendered from ``hub_cards/model_card.md``.

``huggingface_hub`` reads ``HF_ENDPOINT`` / ``HF_HUB_OFFLINE`` / ``HF_HUB_CACHE`` once, when it is imported;
flzoo reads them again at every call and passes them explicitly, so changing them in a running process
(a notebook, a test) takes effect.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from flzoo.data.datasets import dataset

DEFAULT_ENDPOINT = "https://huggingface.co"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
URI_PREFIX = "hf://"
# flzoo/hub_cards links to the top-level hub_cards/ so that wheels carry the template too.
TEMPLATE = Path(__file__).resolve().parent / "hub_cards" / "model_card.md"

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_REPO_RE = re.compile(rf"^{_NAME}/{_NAME}$")
_TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
_SAME = object()  # _fetch: the revision asked for is the one fetched


class HubError(ValueError):
    """A Hub operation failed for a reason the user can fix; the message says which repo and how."""


# ------------------------------------------------------------------------------------------------ names


def check_repo_id(repo):
    """Return ``repo`` if it looks like ``ORG/NAME``, else raise naming it."""
    if not isinstance(repo, str) or not _REPO_RE.match(repo) or ".." in repo or repo.endswith((".git", ".")):
        raise HubError(f"Hub repo {repo!r}: expected 'ORG/NAME' (letters, digits, '.', '_', '-'), "
                       f"e.g. 'my-org/flzoo-hybrid-lite'")
    return repo


def parse_hf_uri(uri):
    """``"hf://ORG/NAME@REV"`` -> ``("ORG/NAME", "REV")``; without ``@REV`` the revision is ``None`` (main)."""
    if not isinstance(uri, str) or not uri.startswith(URI_PREFIX):
        raise HubError(f"{uri!r}: expected a Hub model URI 'hf://ORG/NAME' or 'hf://ORG/NAME@REVISION'")
    body = uri[len(URI_PREFIX):]
    repo, sep, revision = body.partition("@")
    if sep and not revision:
        raise HubError(f"{uri!r}: empty revision after '@'; expected 'hf://ORG/NAME@REVISION' "
                       f"(a branch, tag or commit)")
    try:
        check_repo_id(repo)
    except HubError:
        raise HubError(f"{uri!r}: expected 'hf://ORG/NAME[@REVISION]' with ORG/NAME made of letters, digits, "
                       f"'.', '_' and '-'") from None
    return repo, (revision or None)


def format_uri(repo, revision=None):
    return f"{URI_PREFIX}{repo}" + (f"@{revision}" if revision else "")


def _split_repo(repo, revision):
    """Accept ``ORG/NAME`` or ``hf://ORG/NAME[@REV]`` (a revision in both places must agree)."""
    if isinstance(repo, str) and repo.startswith(URI_PREFIX):
        repo, uri_revision = parse_hf_uri(repo)
        if revision is not None and uri_revision is not None and revision != uri_revision:
            raise HubError(f"{format_uri(repo, uri_revision)}: revision {uri_revision!r} in the URI disagrees "
                           f"with revision={revision!r}; give it once")
        revision = revision or uri_revision
    return check_repo_id(repo), revision


# ------------------------------------------------------------------------------------------- settings


def _true(value):
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def endpoint_from_env():
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def refuses_connections(endpoint, timeout=3.0):
    """True when nothing listens at the endpoint's host and port (a refused TCP connection answers at once;
    the Hub client would retry it for many seconds). Any other outcome is left to the client."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def offline_from_env():
    return _true(os.environ.get("HF_HUB_OFFLINE")) or _true(os.environ.get("TRANSFORMERS_OFFLINE"))


def cache_dir_from_env():
    """The Hub cache folder huggingface_hub would use, read now (``HF_HUB_CACHE``, else ``HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


# ------------------------------------------------------------------------------------------- download


def _transport_errors():
    """The HTTP library's network errors (huggingface_hub 2.x uses httpx2, 1.x httpx)."""
    errors = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(__import__(name).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _is_transient(err):
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        response = getattr(err, "response", None)
        return response is not None and response.status_code in _TRANSIENT_STATUS
    return isinstance(err, _transport_errors())


def _fetch(repo, filename, revision, *, endpoint, cache_dir, offline, token, retries, retry_wait, asked=_SAME):
    """``hf_hub_download`` one file, retrying transient failures (the client already retries its HEAD
    request; a failed transfer it does not), and turning client errors into ``HubError``.

    ``asked`` is the revision the user gave, for messages, when ``revision`` is the commit it resolved to."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    asked = revision if asked is _SAME else asked
    uri = format_uri(repo, asked)
    rev = repr(asked or "main") + (f" (commit {revision})" if revision != asked else "")
    refused = not offline and refuses_connections(endpoint)  # then only the cache can answer, at once
    for attempt in range(retries + 1):
        try:
            return Path(hf_hub_download(repo, filename, revision=revision, endpoint=endpoint, cache_dir=cache_dir,
                                        local_files_only=offline or refused, token=token))
        except LocalEntryNotFoundError as err:  # nothing usable in the cache and no answer from the Hub
            why = ("offline mode is on (HF_HUB_OFFLINE=1)" if offline
                   else f"the Hub at {endpoint} refused the connection" if refused
                   else f"the Hub at {endpoint} could not be reached ({err.__cause__ or err})")
            fix = (f"connect to the network, unset HF_HUB_OFFLINE and run `flzoo pull {repo}"
                   f"{f' --revision {asked}' if asked else ''}` once to fill the cache" if offline
                   else "check the network and HF_ENDPOINT, then try again")
            raise HubError(f"{uri}: cannot get {filename}: {why}, and the Hub cache ({cache_dir}) holds no copy of "
                           f"it. Fix: {fix}, or set HF_HUB_CACHE to a cache that holds it") from None
        except GatedRepoError:
            raise HubError(f"{uri}: the repo is gated at {endpoint}; accept its terms on the Hub and give a token "
                           f"(HF_TOKEN or --token)") from None
        except RepositoryNotFoundError:
            raise HubError(f"{uri}: no Hub repo {repo!r} at {endpoint} (or it is private and no valid token was "
                           f"given): check the name, or set HF_TOKEN / pass --token") from None
        except RevisionNotFoundError:
            raise HubError(f"{uri}: repo {repo!r} at {endpoint} has no revision {rev}; expected an existing "
                           f"branch, tag or commit (e.g. main)") from None
        except EntryNotFoundError:
            raise HubError(f"{uri}: repo {repo!r} at revision {rev} has no file {filename!r}; a flzoo model repo "
                           f"holds {WEIGHTS_FILE} and {CONFIG_FILE} (publish one with `flzoo push`)") from None
        except Exception as err:  # noqa: BLE001 - classify, retry, or report with the repo named
            if _is_transient(err) and attempt < retries:
                time.sleep(retry_wait * 2 ** attempt)
                continue
            if isinstance(err, HfHubHTTPError) or _is_transient(err):
                raise HubError(f"{uri}: downloading {filename} from {endpoint} failed after {attempt + 1} "
                               f"attempt(s): {err}") from err
            raise


def download(repo, revision=None, *, token=None, retries=2, retry_wait=1.0, check=True):
    """Fetch a flzoo model from the Hub into the Hub cache; return the local folder holding
    ``model.safetensors`` and ``config.json`` (``.../snapshots/<commit>/``).

    ``repo`` is ``ORG/NAME`` or ``hf://ORG/NAME[@REVISION]``; ``revision`` a branch, tag or commit (default
    main). Both files come from the same commit: the revision is resolved once, with ``config.json``.
    ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE`` are read at call time. With ``check``, the config is
    checked for a compatible flzoo version and the weights file for a valid safetensors header, so a bad
    upload is reported with the repo's name rather than later as an anonymous cache path."""
    repo, revision = _split_repo(repo, revision)
    settings = dict(endpoint=endpoint_from_env(), cache_dir=cache_dir_from_env(), offline=offline_from_env(),
                    token=token, retries=retries, retry_wait=retry_wait)
    config_path = _fetch(repo, CONFIG_FILE, revision, **settings)
    folder = config_path.parent
    commit = folder.name  # hf_hub_download returns <cache>/models--ORG--NAME/snapshots/<commit>/<file>
    _fetch(repo, WEIGHTS_FILE, commit, asked=revision, **settings)
    if check:
        check_folder(folder, f"{format_uri(repo, revision)} (commit {commit})")
    return folder


def check_folder(folder, label):
    """Check a downloaded model folder without Keras: config.json readable and from a compatible flzoo,
    model.safetensors with a valid header covering the whole file. Errors name ``label`` (the repo)."""
    from safetensors import SafetensorError, safe_open

    from flzoo.weights import read_config

    try:
        read_config(folder)
    except ValueError as err:
        raise HubError(f"{label}: {err}") from None
    weights = Path(folder) / WEIGHTS_FILE
    try:
        with safe_open(str(weights), framework="numpy") as handle:
            handle.keys()
    except (SafetensorError, OSError) as err:
        raise HubError(f"{label}: {WEIGHTS_FILE} is not a valid safetensors file ({err}); the upload is broken: "
                       f"push the model again (`flzoo push`), then delete {weights} from the Hub cache") from None


# ----------------------------------------------------------------------------------------------- push


@dataclass(frozen=True)
class PushResult:
    repo: str
    revision: str
    commit: str
    commit_url: str

    @property
    def uri(self):
        """The pinned URI that loads exactly what was pushed."""
        return format_uri(self.repo, self.commit)


def find_model_folder(path):
    """``(model_folder, eval_results)`` for a run folder (``RUN/best/``) or a model folder itself.

    Evaluation results are the ``results.json`` files under ``eval*/`` of the run folder (for a model folder
    named ``best``, its parent is the run folder)."""
    path = Path(path)
    if not path.is_dir():
        raise HubError(f"{path}: not a folder; expected a training run folder (with best/) or a model folder "
                       f"holding {WEIGHTS_FILE} and {CONFIG_FILE}")
    if (path / "best" / WEIGHTS_FILE).is_file():
        model_dir, run_dirs = path / "best", [path]
    elif (path / WEIGHTS_FILE).is_file():
        model_dir, run_dirs = path, [path] + ([path.parent] if path.name == "best" else [])
    else:
        raise HubError(f"{path}: neither {path / 'best' / WEIGHTS_FILE} nor {path / WEIGHTS_FILE} exists; expected "
                       f"a training run folder (with best/) or a model folder")
    results = []
    for run_dir in run_dirs:
        for file in sorted(run_dir.glob("eval*/results.json")):
            results.append((file, _read_results(file)))
    return model_dir, results


def recorded_results(config):
    """The figures a model folder's ``config.json`` records (``metrics``, written when a run is bundled) in the
    shape of ``find_model_folder``'s eval results: one entry for ground-truth crops, one for detector boxes."""
    metrics = config.get("metrics") or {}
    subset = metrics.get("nme_subset")
    out = []
    if subset and metrics.get("nme") is not None:
        summary = {k: metrics[k] for k in ("nme", "auc", "fr") if metrics.get(k) is not None}
        out.append((Path(CONFIG_FILE), {"boxes": metrics.get("boxes", "gt"), "summary": {subset: summary}}))
    if subset and metrics.get("nme_detector") is not None:
        out.append((Path(CONFIG_FILE), {"boxes": "detector", "summary": {subset: {"nme": metrics["nme_detector"]}}}))
    return out


def _read_results(file):
    """A results.json as the card needs it (its summary), or HubError naming the file."""
    from flzoo.report import load_results

    try:
        return load_results(file, required=("summary",))
    except (OSError, ValueError) as err:
        raise HubError(str(err)) from None


def push(run_dir_or_folder, repo, revision=None, private=False, token=None, endpoint=None, commit_message=None):
    """Publish a model to the Hub in one commit: ``model.safetensors``, ``config.json`` and a ``README.md`` model
    card with the run's ``flzoo eval`` figures. Creates the repo (and the branch ``revision``) when missing.

    ``token`` defaults to ``HF_TOKEN`` / the saved login; ``endpoint`` to ``HF_ENDPOINT``. Returns a
    ``PushResult`` whose ``uri`` (``hf://ORG/NAME@<commit>``) pins exactly this upload."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from flzoo.weights import read_config

    repo = check_repo_id(repo)
    endpoint = (endpoint or endpoint_from_env()).rstrip("/")
    if offline_from_env():
        raise HubError(f"cannot push to {repo}: offline mode is on (HF_HUB_OFFLINE=1); unset it to upload")
    model_dir, results = find_model_folder(run_dir_or_folder)
    try:
        config = read_config(model_dir)
    except ValueError as err:
        raise HubError(f"refusing to push {model_dir}: {err}") from None
    check_folder(model_dir, f"refusing to push {model_dir}")
    card = render_model_card(config, results or recorded_results(config), repo)

    api = HfApi(endpoint=endpoint, token=token)
    branch = revision or "main"
    message = commit_message or f"flzoo {config['build'].get('variant')} model"
    try:
        with tempfile.TemporaryDirectory(prefix="flzoo-push-") as stage:
            stage = Path(stage)
            _link_or_copy(model_dir / WEIGHTS_FILE, stage / WEIGHTS_FILE)
            shutil.copyfile(model_dir / CONFIG_FILE, stage / CONFIG_FILE)
            (stage / CARD_FILE).write_text(card, encoding="utf-8")
            api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            if branch != "main":
                api.create_branch(repo, branch=branch, exist_ok=True, repo_type="model")
            info = api.upload_folder(repo_id=repo, folder_path=stage, revision=branch, commit_message=message,
                                     repo_type="model")
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        hint = (" Give a token with write access (--token, HF_TOKEN or `hf auth login`)."
                if status in (401, 403) else "")
        detail = getattr(err, "server_message", None) or str(err).strip().splitlines()[0]
        raise HubError(f"pushing {model_dir} to {repo} (revision {branch!r}) at {endpoint} failed: HTTP {status}: "
                       f"{detail.strip().rstrip('.')}.{hint}") from None
    except Exception as err:  # noqa: BLE001 - network down, DNS, refused connection
        if _is_transient(err):
            raise HubError(f"pushing {model_dir} to {repo} failed: the Hub at {endpoint} could not be reached "
                           f"({err}); check the network or HF_ENDPOINT") from None
        raise
    return PushResult(repo=repo, revision=branch, commit=info.oid, commit_url=info.commit_url)


def _link_or_copy(src, dst):
    """Hard-link large weights into the staging folder when possible (no copy of a 300 MB file)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


# ----------------------------------------------------------------------------------------- model card

# results.json summary key -> (model-index metric type, metric name)
CARD_METRICS = {"nme": ("nme", "NME (inter-ocular)"), "auc": ("auc", "AUC@0.08"),
                "fr": ("failure-rate", "FR@0.08 (fraction of faces)")}
TASK = ("keypoint-detection", "Facial landmark detection (68 points)")


def eval_results(results):
    """``huggingface_hub.EvalResult`` list (the card's ``model-index``) from ``[(path, results.json dict)]``:
    NME, AUC@0.08 and FR@0.08 per test set and box protocol."""
    from huggingface_hub import EvalResult

    out = []
    for _, data in results:
        boxes = data.get("boxes", "gt")
        flip = ", test-time flip" if data.get("flip") else ""
        for subset, summary in data["summary"].items():
            for key, (metric_type, metric_name) in CARD_METRICS.items():
                value = summary.get(key) if isinstance(summary, dict) else None
                if value is None:
                    continue
                out.append(EvalResult(
                    task_type=TASK[0], task_name=TASK[1],
                    dataset_type="300w", dataset_name=dataset(subset).card_name, dataset_config=subset,
                    dataset_split="test", metric_type=metric_type, metric_value=round(float(value), 6),
                    metric_name=f"{metric_name}, {boxes} boxes{flip}", metric_config=f"boxes={boxes}",
                ))
    return out


def _results_table(results):
    if not results:
        return ("No `flzoo eval` results were found beside this model when it was published (run "
                "`flzoo eval MODEL --out RUN_DIR/eval` before `flzoo push`).")
    lines = ["| test set | boxes | flip | faces | NME | AUC@0.08 | FR@0.08 |", "|---|---|---|---|---|---|---|"]
    for _, data in results:
        for subset, s in data["summary"].items():
            if not isinstance(s, dict) or s.get("nme") is None:
                continue
            fr = s.get("fr")
            lines.append(f"| {dataset(subset).card_name} | {data.get('boxes', 'gt')} | "
                         f"{'yes' if data.get('flip') else 'no'} | {s.get('n', '')} | "
                         f"{s['nme']:.4f} | {_fmt(s.get('auc'))} | "
                         f"{'' if fr is None else f'{100 * fr:.2f}%'} |")
    return "\n".join(lines)


def _fmt(value):
    return "" if value is None else f"{value:.4f}"


def render_model_card(config, results, repo, template=None):
    """The README.md text: YAML metadata (``huggingface_hub.ModelCardData``, with a ``model-index`` of the eval
    figures) followed by the prose of ``hub_cards/model_card.md`` (``$name`` placeholders, ``string.Template``)."""
    from string import Template

    from huggingface_hub import ModelCard, ModelCardData

    template = Path(template or TEMPLATE)
    if not template.is_file():
        raise HubError(f"{template}: model card template missing (expected hub_cards/model_card.md beside the "
                       f"flzoo package)")
    build = config.get("build", {})
    variant, backbone = build.get("variant", "?"), build.get("backbone", "?")
    input_size = config.get("input_size", build.get("input_size", "?"))
    evals = eval_results(results)
    data = ModelCardData(
        license="other", license_name="research-only-300w",
        license_link="https://ibug.doc.ic.ac.uk/resources/300-W/",
        library_name="flzoo", pipeline_tag="keypoint-detection",
        tags=["facial-landmarks", "face-alignment", "68-points", "300-W", "keras", "flzoo", variant, backbone],
        model_name=repo.split("/")[-1] if evals else None, eval_results=evals or None,
    )
    params = config.get("params", {})
    values = dict(
        metadata=data.to_yaml(), title=f"flzoo {variant} ({backbone}, {input_size} px)", repo=repo,
        uri=format_uri(repo), variant=variant, backbone=backbone, input_size=input_size,
        decoding=config.get("decoding") or build.get("decoding") or "default",
        params=(f"{params['trainable']:,} trainable, {params['total']:,} in all" if "trainable" in params
                and "total" in params else "see config.json"),
        flzoo_version=config.get("flzoo_version", "?"), keras_version=config.get("keras_version", "?"),
        keras_backend=config.get("keras_backend", "?"), results=_results_table(results),
    )
    try:
        text = Template(template.read_text(encoding="utf-8")).substitute(values)
    except (KeyError, ValueError) as err:
        raise HubError(f"{template}: placeholder {err} is not one of {', '.join(sorted(values))} "
                       f"(write a literal $ as $$)") from None
    ModelCard(text)  # parses the metadata block: a broken template fails here, not on the Hub
    return text


__all__ = ["download", "push", "parse_hf_uri", "format_uri", "check_repo_id", "check_folder", "find_model_folder",
           "PushResult", "HubError", "render_model_card", "eval_results"]
