"""Push model folders to the Hugging Face Hub and pull them back for the app, falling back to weights/.

Push: a model folder (vit.bundle) goes up exactly as written: weights, config, the model card with its
model-index metadata, the evaluation results the app shows, and model.onnx for other runtimes (vit.export).
`check_push_access` runs before training so a missing token or permission fails in seconds, not after an hour of
training. A pull downloads only what the app reads: not model.onnx.

Pull: the app names Hub models in VIT_MODELS (`owner/name` or `owner/name@revision`, comma-separated). Each is
downloaded into the normal Hugging Face cache, so a later offline start (HF_HUB_OFFLINE=1) loads it from
there. When the Hub cannot be reached, the repo or a file is missing, or a file is broken, the bundled
weights/ folder of the same name is used instead, with a notice that says why. Every Hub request is bounded
by VIT_HUB_TIMEOUT seconds, and so is the wait for all of them together: no long retry stall at start-up.
"""

import logging
import os
import re
import threading
import time
from pathlib import Path

from huggingface_hub import HfApi, get_token, snapshot_download
from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled,
                                    RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

from .bundle import FILES as MODEL_FILES, LOADED, REQUIRED, ModelBundle, bundled_folders, load_folder

MODELS_VARIABLE = "VIT_MODELS"        # e.g. "someone/vit-mnist,someone/vit-mnist-tiny@v2"
TIMEOUT_VARIABLE = "VIT_HUB_TIMEOUT"  # seconds to wait for the Hub before using the bundled copy
DEFAULT_TIMEOUT = 10.0
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")

logger = logging.getLogger(__name__)


class PushError(Exception):
    """Pushing cannot work; the message says why and what to do, and never contains the token."""


def parse_spec(spec: str) -> tuple[str, str]:
    """'owner/name' or 'owner/name@revision' -> (repo_id, revision); the revision defaults to main."""
    repo_id, at, revision = spec.strip().partition("@")
    if not REPO_ID.fullmatch(repo_id) or (at and not revision):
        raise ValueError(f"{spec!r} is not owner/name or owner/name@revision")
    return repo_id, revision or "main"


def model_name(repo_id: str) -> str:
    """The name the app shows: the repo name without a leading 'vit-' (someone/vit-mnist -> mnist)."""
    return repo_id.split("/")[1].removeprefix("vit-")


def hub_timeout() -> float:
    """Seconds to wait for the Hub: $VIT_HUB_TIMEOUT, default 10."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    try:
        return float(text) if text and float(text) > 0 else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds") from None


# -- push ---------------------------------------------------------------------------------------------------

def check_push_access(repo_id: str, *, private: bool = False, revision: str | None = None) -> str:
    """Check the token, create the repo (and branch) if needed, check write access; returns the user name."""
    api = HfApi()
    if get_token() is None:
        raise PushError("no Hugging Face token found: set HF_TOKEN to a token with write access "
                        "or run `hf auth login`")
    try:
        user = api.whoami()["name"]
    except HfHubHTTPError as error:
        if error.response is not None and error.response.status_code == 401:
            raise PushError("the Hugging Face token was rejected (401 Unauthorized): set HF_TOKEN to a valid "
                            "token with write access or run `hf auth login --force`") from None
        raise PushError(f"cannot check the Hugging Face token ({_reason(error)})") from None
    except Exception as error:  # connection refused, timeout, offline mode
        raise PushError(f"cannot reach the Hub at {api.endpoint} to check the token ({_reason(error)})") from None
    try:
        api.create_repo(repo_id, private=private or None, exist_ok=True)
        api.auth_check(repo_id, write=True)
        is_private = api.repo_info(repo_id).private
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
    except Exception as error:
        raise PushError(f"the token of {user} cannot push to {repo_id} ({_reason(error)}): use a token with "
                        f"write access to the {repo_id.split('/')[0]} namespace") from None
    if private and not is_private:
        raise PushError(f"a private repo was asked for, but {repo_id} already exists and is public: make it "
                        "private on the Hub first or choose another repo")
    return user


def push_folder(folder: str | Path, repo_id: str, *, revision: str | None = None,
                commit_message: str | None = None) -> str:
    """Upload a model folder's files exactly as written, the model card included; returns the commit URL."""
    folder = Path(folder)
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        raise PushError(f"{folder} is not a complete model folder: {', '.join(missing)} missing")
    try:
        commit = HfApi().upload_folder(repo_id=repo_id, folder_path=folder, allow_patterns=list(MODEL_FILES),
                                       revision=revision, commit_message=commit_message or f"Upload {folder.name}")
    except Exception as error:
        raise PushError(f"pushing {folder} to {repo_id} failed ({_reason(error)})") from None
    return commit.commit_url


# -- pull ---------------------------------------------------------------------------------------------------

def load_models(specs: list[str] | None = None, *, weights_dir: str | Path | None = None) -> list[ModelBundle]:
    """Hub models from `specs` (default: $VIT_MODELS), each falling back to weights/NAME, then the other bundled ones.

    A malformed spec raises ValueError; everything the Hub or a download can get wrong becomes a fallback.
    """
    if specs is None:
        specs = [spec for spec in os.environ.get(MODELS_VARIABLE, "").split(",") if spec.strip()]
    targets = [parse_spec(spec) for spec in specs]
    bundled = bundled_folders(weights_dir) if weights_dir is not None else bundled_folders()
    timeout = hub_timeout()
    bundles, names = [], set()
    for (repo_id, revision), fetched in zip(targets, _fetch_all(targets, timeout)):
        name, source = model_name(repo_id), f"{repo_id}@{revision}"
        if name in names:
            logger.warning("%s: %s is a second model named %s; left out", name, source, name)
            continue
        names.add(name)
        try:
            if isinstance(fetched, BaseException):
                raise fetched
            folder, unreachable = fetched
            try:
                bundle = load_folder(folder, name, source)
            except ValueError as error:  # the message names the file; drop the long cache path
                raise ValueError(str(error).replace(f"{folder}{os.sep}", "").replace(f"{folder}: ", "")) from None
            where = f"the local cache ({_reason(unreachable, timeout)})" if unreachable else "the Hub"
            stale = unreachable is not None and not isinstance(unreachable, OfflineModeIsEnabled)  # maybe stale
            logger.log(logging.WARNING if stale else logging.INFO, "%s: %s (commit %s) from %s",
                       name, source, folder.name[:7], where)
        except Exception as error:
            reason = _reason(error, timeout)
            bundle = _load_bundled(name, bundled.get(name), f"Could not fetch {source} from the Hub ({reason})")
            if bundle is None:
                continue
            bundle.notice = f"Could not fetch {source} from the Hub ({reason}); using the bundled copy."
        bundles.append(bundle)
    for name, folder in bundled.items():
        if name not in names and (bundle := _load_bundled(name, folder)) is not None:
            bundles.append(bundle)
    return bundles


def _fetch(repo_id: str, revision: str, timeout: float) -> tuple[Path, BaseException | None]:
    """Download the model files into the HF cache; (snapshot folder, why the cache was used or None)."""
    unreachable = None
    try:  # one bounded request first: snapshot_download's own repo_info has no timeout
        HfApi().repo_info(repo_id, revision=revision, timeout=timeout)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise  # the Hub answered: a cached copy of a repo that is gone is not used
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        if status < 500 and status not in (408, 429):
            raise  # the Hub answered: e.g. 401 for a bad token
        unreachable = error
    except Exception as error:  # offline mode, connection refused, timeout
        unreachable = error
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=list(LOADED),
                                   etag_timeout=timeout, local_files_only=unreachable is not None)
    except Exception:
        if unreachable is not None:  # nothing cached: the reason the Hub was not asked says more
            raise unreachable from None
        raise
    return Path(folder), unreachable


def _fetch_all(targets: list[tuple[str, str]], timeout: float) -> list:
    """Fetch all targets at once, each result a _fetch tuple or an exception; gives up after `timeout` seconds."""
    results: list = [TimeoutError()] * len(targets)

    def fetch(index: int, repo_id: str, revision: str) -> None:
        try:
            results[index] = _fetch(repo_id, revision, timeout)
        except Exception as error:
            results[index] = error

    # daemon threads: a request the client left without a timeout cannot keep the app from starting or exiting
    threads = [threading.Thread(target=fetch, args=(index, *target), daemon=True, name=f"vit-hub-{target[0]}")
               for index, target in enumerate(targets)]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(results)


def _load_bundled(name: str, folder: Path | None, failure: str | None = None) -> ModelBundle | None:
    """The bundled folder, logging where the model came from; None (logged) when there is none or it is broken."""
    if folder is None:
        logger.warning("%s: %s, and there is no bundled copy; left out", name, failure)
        return None
    try:
        bundle = load_folder(folder, name)
    except ValueError as error:
        also = f"{failure}, and " if failure else ""
        logger.error("%s: %sthe bundled folder is broken (%s); left out", name, also, error)
        return None
    if failure:
        logger.warning("%s: %s; using the bundled folder %s", name, failure, folder)
    else:
        logger.info("%s: bundled folder %s", name, folder)
    return bundle


def _reason(error: BaseException | None, timeout: float | None = None) -> str:
    """A few words for a notice or a log line: why the Hub (or a file from it) could not be used."""
    kind = type(error).__name__
    if isinstance(error, GatedRepoError):
        return "the repo is gated"
    if isinstance(error, RepositoryNotFoundError):
        return "repo not found"
    if isinstance(error, RevisionNotFoundError):
        return "revision not found"
    if isinstance(error, RemoteEntryNotFoundError):
        return "file not found"
    if isinstance(error, LocalEntryNotFoundError):
        return "the Hub could not be reached and the files are not in the local cache"
    if isinstance(error, OfflineModeIsEnabled):
        return "offline mode, HF_HUB_OFFLINE is set"
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason_phrase}".strip()
    if isinstance(error, TimeoutError) or "Timeout" in kind:
        return f"no answer within {timeout:g} s" if timeout else "timed out"
    if "Connect" in kind:
        return f"cannot connect to {HfApi().endpoint}"
    return str(error).strip().split("\n")[0] or kind
