"""A stand-in Hugging Face Hub: the HTTP endpoints huggingface_hub 2.4 calls to push and pull a model repo.

Point the real client at it with HF_ENDPOINT (set before huggingface_hub is imported). Repos live in memory.
Endpoints, as read from the installed client (hf_api.py, _commit_api.py, _upload_pipeline.py,
_snapshot_download.py, file_download.py, utils/_http.py):

    GET  /api/whoami-v2                               token check (401 for a missing or unknown token)
    POST /api/repos/create                            409 when it exists, 403 outside the token's namespaces
    POST /api/validate-yaml                           model card metadata, always accepted
    GET  /api/models/OWNER/NAME[/revision/REV]        repo info: the commit sha the revision points to
    GET  /api/models/OWNER/NAME/tree/REV[/PATH]       file listing for snapshot_download
    GET  /api/models/OWNER/NAME/auth-check[/write]    403 when the token may not write
    GET  /api/models/OWNER/NAME/refs                  branches
    POST /api/models/OWNER/NAME/preupload/REV         every file "regular": content travels inline, base64
    POST /api/models/OWNER/NAME/commit/REV            the NDJSON commit
    POST /api/models/OWNER/NAME/branch/BRANCH         409 when it exists
    HEAD|GET /OWNER/NAME/resolve/REV/PATH             X-Repo-Commit, ETag, Content-Length

Missing things answer 404 with the X-Error-Code the client maps to RepositoryNotFoundError,
RevisionNotFoundError or EntryNotFoundError. Two switches: `fail_status` (e.g. 500 for every request) and
`delay` (seconds to wait before answering).
"""

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def blob_oid(data: bytes) -> str:
    """The git blob sha1 the Hub reports as a regular file's oid and ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An error answer: HTTP status, the X-Error-Code header (or None) and a message."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.body = {"error": message, **(body or {})}


@dataclass
class Repo:
    owner: str
    private: bool = False
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: content}
    branches: dict[str, str] = field(default_factory=dict)              # branch -> sha


@dataclass
class Token:
    user: str
    role: str = "write"          # "write" or "read"
    orgs: tuple[str, ...] = ()   # organisations the user may write to


class StandInHub:
    """An in-memory Hub on 127.0.0.1 (a free port); use as a context manager or call start() and close()."""

    def __init__(self, tokens: dict[str, Token] | None = None):
        self.tokens = tokens or {}
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []   # (method, path) in arrival order
        self.fail_status: int | None = None         # answer every request with this status
        self.delay = 0.0                            # seconds to wait before answering
        self._lock = threading.Lock()
        self._commits = 0
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> "StandInHub":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a request sleeping in `delay` must not hold up close()
        self._server.hub = self
        threading.Thread(target=self._server.serve_forever, name="stand-in-hub", daemon=True).start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StandInHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what tests set up and inspect -----------------------------------------------------------------

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, private: bool = False, branch: str = "main") -> str:
        """Create (or extend) a repo whose `branch` holds `files`; returns the commit sha."""
        with self._lock:
            repo = self.repos.get(repo_id) or self._create(repo_id, private)
            parent = repo.commits[repo.branches.get(branch, repo.branches["main"])]
            return self._commit(repo, branch, {**parent, **files})

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a branch or commit."""
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.branches.get(revision, revision)])

    # -- state changes (callers hold the lock) ---------------------------------------------------------

    def _create(self, repo_id: str, private: bool) -> Repo:
        repo = self.repos[repo_id] = Repo(owner=repo_id.split("/")[0], private=private)
        self._commit(repo, "main", {".gitattributes": GITATTRIBUTES})  # the Hub starts every repo like this
        return repo

    def _commit(self, repo: Repo, branch: str, files: dict[str, bytes]) -> str:
        self._commits += 1
        sha = hashlib.sha1(f"{self._commits}:{sorted((p, blob_oid(d)) for p, d in files.items())}".encode()).hexdigest()
        repo.commits[sha] = files
        repo.branches[branch] = sha
        return sha

    # -- request handling ------------------------------------------------------------------------------

    def handle(self, request: "_Handler") -> None:
        path, _, query = request.path.partition("?")
        with self._lock:
            self.requests.append((request.command, path))
        if self.delay:
            time.sleep(self.delay)
        try:
            if self.fail_status:
                raise HubError(self.fail_status, "Internal Error - We're working hard to fix this as soon as possible!")
            user = self._user(request)
            parts = [unquote(part) for part in path.split("/")[1:]]
            with self._lock:
                status, body, headers = self._route(request, parts, parse_qs(query), user)
        except HubError as error:
            headers = {"X-Error-Message": error.message, **error.headers}
            if error.code:
                headers["X-Error-Code"] = error.code
            status, body = error.status, error.body
        request.answer(status, body, headers)

    def _user(self, request: "_Handler") -> Token | None:
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return None
        token = self.tokens.get(authorization.removeprefix("Bearer ").strip())
        if token is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return token

    def _route(self, request, parts, query, user):
        method = request.command
        if parts == ["api", "whoami-v2"] and method == "GET":
            return self._whoami(user)
        if parts == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(request.json(), user)
        if parts == ["api", "validate-yaml"] and method == "POST":
            return 200, {"errors": [], "warnings": []}, {}
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, action, rest = "/".join(parts[2:4]), parts[4] if len(parts) > 4 else "revision", parts[5:]
            repo = self._readable(repo_id, user)
            if action == "revision" and method == "GET":
                return self._repo_info(repo_id, repo, rest[0] if rest else "main")
            if action == "tree" and method == "GET" and rest:
                return self._tree(repo, rest[0], "/".join(rest[1:]), query.get("recursive") == ["True"])
            if action == "refs" and method == "GET":
                return 200, {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": sha}
                                          for b, sha in repo.branches.items()], "tags": [], "converts": []}, {}
            if action == "auth-check" and method == "GET":
                if rest == ["write"]:
                    self._check_write(repo_id, user)
                return 200, {}, {}
            if action == "preupload" and method == "POST" and rest:
                return self._preupload(repo_id, repo, rest[0], request.json(), user)
            if action == "commit" and method == "POST" and rest:
                return self._apply_commit(repo_id, repo, rest[0], request, query, user)
            if action == "branch" and method == "POST" and rest:
                return self._create_branch(repo_id, repo, rest[0], request.json(), user)
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            repo_id = "/".join(parts[:2])
            return self._resolve(repo_id, self._readable(repo_id, user), parts[3], "/".join(parts[4:]))
        raise HubError(404, f"Not found: {request.command} {'/'.join(parts)}")

    def _whoami(self, user):
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return 200, {"type": "user", "id": f"id-{user.user}", "name": user.user, "fullname": user.user,
                     "orgs": [{"name": org, "roleInOrg": "write"} for org in user.orgs],
                     "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": user.role}}}, {}

    def _check_write(self, repo_id: str, user: Token | None) -> None:
        if user is None:
            raise HubError(401, "You must be authenticated to write")
        namespace = repo_id.split("/")[0]
        if user.role != "write" or namespace not in (user.user, *user.orgs):
            raise HubError(403, f"You don't have the rights to write to {repo_id}")

    def _create_repo(self, payload: dict, user):
        if payload.get("type", "model") != "model":
            raise HubError(400, "this stand-in only holds model repos")
        repo_id = f"{payload.get('organization') or (user.user if user else '')}/{payload['name']}"
        self._check_write(repo_id, user)
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:
            raise HubError(409, "You already created this model repo", body={"url": url})  # the client reads url
        self._create(repo_id, payload.get("visibility") == "private")
        return 200, {"url": url, "name": repo_id, "id": repo_id}, {}

    def _readable(self, repo_id: str, user: Token | None) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and (user is None or repo.owner not in (user.user, *user.orgs))):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit_sha(self, repo: Repo, revision: str) -> str:
        sha = repo.branches.get(revision, revision if revision in repo.commits else None)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _repo_info(self, repo_id: str, repo: Repo, revision: str):
        sha = self._commit_sha(repo, revision)
        return 200, {"id": repo_id, "modelId": repo_id, "author": repo.owner, "sha": sha, "private": repo.private,
                     "tags": [], "siblings": [{"rfilename": path} for path in sorted(repo.commits[sha])]}, {}

    def _tree(self, repo: Repo, revision: str, folder: str, recursive: bool):
        files = repo.commits[self._commit_sha(repo, revision)]
        prefix = f"{folder}/" if folder else ""
        entries, folders = [], set()
        for path in sorted(p for p in files if p.startswith(prefix)):
            child = path[len(prefix):]
            if "/" in child and not recursive:
                folders.add(prefix + child.split("/")[0])
                continue
            entries.append({"type": "file", "oid": blob_oid(files[path]), "size": len(files[path]), "path": path})
        entries += [{"type": "directory", "oid": blob_oid(f.encode()), "size": 0, "path": f} for f in sorted(folders)]
        return 200, entries, {}

    def _preupload(self, repo_id: str, repo: Repo, revision: str, payload: dict, user):
        self._check_write(repo_id, user)
        files = repo.commits[self._commit_sha(repo, revision)]
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                "oid": blob_oid(files[f["path"]]) if f["path"] in files else None}
                               for f in payload["files"]]}, {}

    def _apply_commit(self, repo_id: str, repo: Repo, branch: str, request, query, user):
        self._check_write(repo_id, user)
        if "create_pr" in query:
            raise HubError(400, "this stand-in does not open pull requests")
        files = dict(repo.commits[self._commit_sha(repo, branch)])
        for line in request.payload.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                parent = value.get("parentCommit")
                if parent and parent != repo.branches.get(branch):
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:  # lfsFile: preupload never asks for LFS, so the blob cannot be here
                raise HubError(400, f"unsupported commit operation {key!r}")
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        sha = self._commit(repo, branch, files)
        return 200, {"success": True, "commitOid": sha, "commitUrl": f"{self.endpoint}/{repo_id}/commit/{sha}",
                     "pullRequestUrl": None}, {}

    def _create_branch(self, repo_id: str, repo: Repo, branch: str, payload: dict, user):
        self._check_write(repo_id, user)
        if branch in repo.branches:
            raise HubError(409, f"Reference refs/heads/{branch} already exists")
        repo.branches[branch] = self._commit_sha(repo, payload.get("startingPoint") or "main")
        return 200, {}, {}

    def _resolve(self, repo_id: str, repo: Repo, revision: str, path: str):
        sha = self._commit_sha(repo, revision)
        files = repo.commits[sha]
        if path not in files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        data = files[path]
        return 200, data, {"X-Repo-Commit": sha, "ETag": f'"{blob_oid(data)}"',
                           "Content-Type": "application/octet-stream"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects; every answer carries Content-Length

    def do_GET(self):
        # read the whole body first: an error answer must not leave it in the kept-alive connection
        self.payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hub.handle(self)

    do_HEAD = do_POST = do_GET

    def json(self) -> dict:
        return json.loads(self.payload or b"{}")

    def answer(self, status: int, body, headers: dict) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            if not isinstance(body, bytes):
                self.send_header("Content-Type", "application/json")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. after a timeout)
            self.close_connection = True

    def log_message(self, format, *args):  # quiet: tests read hub.requests instead
        pass
