"""A small Hugging Face Hub stand-in for the test suite (standard library only, 127.0.0.1, random port).

It implements the endpoints the real ``huggingface_hub`` 2.x client calls for:

- ``create_repo``: ``POST /api/repos/create`` (409 when the repo exists);
- ``create_branch``: ``POST /api/models/ORG/NAME/branch/BRANCH``;
- README metadata check before a commit: ``POST /api/validate-yaml``;
- ``upload_folder`` / ``create_commit``: ``POST /api/models/ORG/NAME/preupload/REV`` (every file answered
  ``"regular"``, so no LFS or Xet storage is needed) then ``POST /api/models/ORG/NAME/commit/REV`` (NDJSON);
- ``model_info`` / ``repo_info``: ``GET /api/models/ORG/NAME[/revision/REV]``;
- ``hf_hub_download``: ``HEAD`` and ``GET /ORG/NAME/resolve/REV/FILE`` with ``X-Repo-Commit`` and ``ETag``.

Errors carry the ``X-Error-Code`` headers the client maps to ``RepositoryNotFoundError``,
``RevisionNotFoundError`` and ``RemoteEntryNotFoundError``. Writes need a token from ``tokens``; private repos
answer like missing ones without it (as the Hub does). ``fail_next`` injects transient errors.

Run it by hand with ``python tests/hub_server.py`` to point ``HF_ENDPOINT`` at it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_sha1(data: bytes) -> str:
    """The oid git (and the Hub) gives a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    oid: str
    files: dict  # path -> bytes (the whole tree at this commit)
    message: str
    parent: str | None


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict = field(default_factory=dict)  # name -> commit oid
    commits: dict = field(default_factory=dict)  # oid -> Commit

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)


class HubServer:
    """``with HubServer() as hub:`` then use ``hub.endpoint``; ``hub.requests`` logs ``(method, path)``."""

    def __init__(self, tokens=("hf_test_token",)):
        self.tokens = set(tokens)
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._failures: list[tuple[str, str, int]] = []  # (method, path substring, status)
        self._lock = threading.RLock()
        self._counter = 0
        self._httpd = None
        self._thread = None

    # ---- lifecycle
    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ---- direct state access for tests (no HTTP)
    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self._lock:
            repo = Repo(repo_id, private)
            self.repos[repo_id] = repo
            self._commit(repo, "main", {".gitattributes": GITATTRIBUTES}, "initial commit", base=None)
            return repo

    def put_files(self, repo_id: str, files: dict, branch: str = "main", message: str = "test upload") -> str:
        """Commit ``{path: bytes}`` straight into the repo (created if needed); returns the commit oid."""
        with self._lock:
            repo = self.repos.get(repo_id) or self.create_repo(repo_id)
            base = repo.branches.get(branch, repo.branches["main"])
            return self._commit(repo, branch, files, message, base=base).oid

    def files(self, repo_id: str, revision: str = "main") -> dict:
        with self._lock:
            return dict(self.repos[repo_id].resolve(revision).files)

    def fail_next(self, method: str, path_contains: str, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with ``status`` (a transient failure)."""
        with self._lock:
            self._failures.extend([(method, path_contains, status)] * times)

    def count(self, method: str, path_contains: str) -> int:
        return sum(1 for m, p in self.requests if m == method and path_contains in p)

    def _commit(self, repo: Repo, branch: str, changes: dict, message: str, base: str | None, deleted=()) -> Commit:
        files = dict(repo.commits[base].files) if base else {}
        files.update(changes)
        for path in deleted:
            files.pop(path, None)
        self._counter += 1
        oid = hashlib.sha1(f"{repo.repo_id}:{self._counter}:{time.time_ns()}".encode()).hexdigest()
        commit = Commit(oid, files, message, base)
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output clean
        pass

    # ---- plumbing
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        extra = dict(headers or {})
        extra["X-Error-Message"] = message
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    def _authorised(self) -> bool:
        return self._token() in self.hub.tokens

    def _injected_failure(self, path: str) -> bool:
        with self.hub._lock:
            for i, (method, needle, status) in enumerate(self.hub._failures):
                if method == self.command and needle in path:
                    del self.hub._failures[i]
                    self._error(status, "injected transient failure")
                    return True
        return False

    def _dispatch(self):
        url = urlsplit(self.path)
        path = url.path
        self.query = parse_qs(url.query)
        with self.hub._lock:
            self.hub.requests.append((self.command, path))
        body = self._body() if self.command == "POST" else b""
        if self._injected_failure(path):
            return
        parts = [unquote(p) for p in path.strip("/").split("/")]
        try:
            if self.command == "POST" and parts == ["api", "repos", "create"]:
                return self._create_repo(json.loads(body))
            if self.command == "POST" and parts == ["api", "validate-yaml"]:
                return self._validate_yaml(json.loads(body))
            if len(parts) >= 4 and parts[:2] == ["api", "models"]:
                return self._api_model(parts[2] + "/" + parts[3], parts[4:], body)
            if len(parts) >= 5 and parts[2] == "resolve" and self.command in ("GET", "HEAD"):
                return self._resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
        except (ValueError, KeyError) as err:
            return self._error(400, f"bad request: {err}")
        self._error(404, f"no such endpoint: {self.command} {path}")

    do_GET = do_HEAD = do_POST = _dispatch

    # ---- repo lookup shared by every endpoint
    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorised()):
            self._error(404 if repo is None else 401, "Repository not found", "RepoNotFound")
            return None
        return repo

    def _commit_for(self, repo: Repo, revision: str) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ---- endpoints
    def _create_repo(self, payload):
        if not self._authorised():
            return self._error(401, "Invalid username or password.")
        if payload.get("type", "model") != "model":
            return self._error(400, "this test server only holds model repos")
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        with self.hub._lock:
            if repo_id in self.hub.repos:
                return self._json(409, {"error": "You already created this model repo", "url": self._url(repo_id)})
            private = payload.get("visibility") == "private" or bool(payload.get("private"))
            self.hub.create_repo(repo_id, private=private)
        self._json(200, {"url": self._url(repo_id), "name": repo_id})

    def _url(self, repo_id: str) -> str:
        return f"{self.hub.endpoint}/{repo_id}"

    def _validate_yaml(self, payload):
        content = payload["content"]
        errors = []
        if content.startswith("---"):
            try:
                meta = yaml.safe_load(content.split("---", 2)[1]) or {}
            except (yaml.YAMLError, IndexError) as err:
                meta, errors = {}, [{"message": f"invalid YAML: {err}"}]
            if not isinstance(meta, dict):
                errors.append({"message": "metadata must be a YAML mapping"})
            else:
                errors += [{"message": m} for m in _model_index_errors(meta.get("model-index"))]
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _api_model(self, repo_id: str, rest: list, body: bytes):
        with self.hub._lock:
            repo = self._repo(repo_id)
            if repo is None:
                return
            if self.command == "GET" and (not rest or (len(rest) == 2 and rest[0] == "revision")):
                return self._model_info(repo, rest[1] if rest else "main")
            if self.command != "POST" or len(rest) != 2:
                return self._error(404, f"no such endpoint: {self.command} {self.path}")
            if not self._authorised():
                return self._error(401, "Invalid username or password.")
            action, revision = rest
            if action == "branch":
                return self._create_branch(repo, revision, json.loads(body or b"{}"))
            if action == "preupload":
                return self._preupload(repo, revision, json.loads(body))
            if action == "commit":
                return self._receive_commit(repo, revision, body)
            self._error(404, f"no such endpoint: {self.command} {self.path}")

    def _model_info(self, repo: Repo, revision: str):
        commit = self._commit_for(repo, revision)
        if commit is None:
            return
        self._json(200, {
            "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": commit.oid, "private": repo.private, "disabled": False, "gated": False, "tags": [],
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
            "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
        })

    def _create_branch(self, repo: Repo, branch: str, payload):
        if branch in repo.branches:
            return self._error(409, f"Branch {branch} already exists")
        start = repo.resolve(payload.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "Invalid starting point", "RevisionNotFound")
        repo.branches[branch] = start.oid
        self._json(200, {})

    def _preupload(self, repo: Repo, revision: str, payload):
        commit = self._commit_for(repo, revision)
        if commit is None:
            return
        files = []
        for item in payload["files"]:
            current = commit.files.get(item["path"])
            files.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_sha1(current) if current is not None else None})
        self._json(200, {"files": files, "commitOid": commit.oid})

    def _receive_commit(self, repo: Repo, revision: str, body: bytes):
        if repo.resolve(revision) is None or revision not in repo.branches:
            return self._error(404, f"Invalid rev id: {revision} (commits go to an existing branch)",
                               "RevisionNotFound")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            return self._error(400, "the first NDJSON line must be the commit header")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and parent != repo.branches[revision]:
            return self._error(412, "A commit has happened since. Please refresh and try again.")
        changes, deleted = {}, []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, f"unsupported encoding {value.get('encoding')!r}")
                changes[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:  # lfsFile: preupload never asks for LFS here
                return self._error(400, f"unsupported commit operation {key!r} (this server takes regular files)")
        commit = self.hub._commit(repo, revision, changes, header.get("summary", ""), repo.branches[revision],
                                  deleted)
        self._json(200, {"success": True, "commitOid": commit.oid,
                         "commitUrl": f"{self._url(repo.repo_id)}/commit/{commit.oid}"})

    def _resolve(self, repo_id: str, revision: str, filename: str):
        with self.hub._lock:
            repo = self._repo(repo_id)
            if repo is None:
                return
            commit = self._commit_for(repo, revision)
            if commit is None:
                return
            data = commit.files.get(filename)
        if data is None:
            return self._error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        self._send(200, data, {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_sha1(data)}"'},
                   content_type="application/octet-stream")


def _model_index_errors(index) -> list[str]:
    """The structural checks the Hub applies to ``model-index`` (enough to catch a malformed card)."""
    if index is None:
        return []
    if not isinstance(index, list) or not index:
        return ["model-index must be a non-empty list"]
    errors = []
    for entry in index:
        if not isinstance(entry, dict) or not entry.get("name") or not isinstance(entry.get("results"), list):
            errors.append("each model-index entry needs a name and a list of results")
            continue
        for result in entry["results"]:
            task, dataset, metrics = result.get("task"), result.get("dataset"), result.get("metrics")
            if not isinstance(task, dict) or not task.get("type"):
                errors.append("model-index result needs task.type")
            if not isinstance(dataset, dict) or not dataset.get("type") or not dataset.get("name"):
                errors.append("model-index result needs dataset.type and dataset.name")
            if not isinstance(metrics, list) or not metrics:
                errors.append("model-index result needs a list of metrics")
                continue
            for metric in metrics:
                if not isinstance(metric, dict) or not metric.get("type") or "value" not in metric:
                    errors.append("each metric needs a type and a value")
    return errors


if __name__ == "__main__":
    with HubServer() as hub:
        print(f"HF_ENDPOINT={hub.endpoint}  (write token: hf_test_token); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
