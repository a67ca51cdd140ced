"""The models the app serves: those loaded at start-up, read by every visitor and every caller, and the models one
visitor made (trained or taught in the app), kept for a while under a name only that visitor is given.

The app's tabs and its public API (api.py) name a model by its menu name and look it up here; the Compare tab's
zoo is registered here too. Pictures cached per model (`cached`) are forgotten when the models change.
"""

import functools
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bundle import ModelBundle

# A visitor's own model is kept this long after it was last looked up, and at most this many at once (the oldest
# is forgotten first), so that a Space's memory stays bounded however many visitors train.
OWN_MODEL_SECONDS = 3600
MAX_OWN_MODELS = 16


@dataclass
class _Own:
    bundle: ModelBundle
    folder: Path | None  # its model folder, deleted when it is forgotten
    used: float          # time.monotonic() of its last look-up


_models: dict[str, ModelBundle] = {}
_own: dict[str, _Own] = {}
_own_lock = threading.Lock()
_zoo: list[ModelBundle] = []  # the Compare tab's models: one recipe, one change each (not in the model menu)
_caches: list = []


def use_models(bundles: list[ModelBundle]) -> None:
    """Register the models to serve (the first is the default) and forget what was cached for others."""
    _models.clear()
    _models.update((bundle.name, bundle) for bundle in bundles)
    for cache in _caches:
        cache.cache_clear()


def use_zoo(bundles: list[ModelBundle]) -> None:
    """Register the zoo the Compare tab shows, and forget what was cached for another."""
    _zoo[:] = bundles
    for cache in _caches:
        cache.cache_clear()


def zoo() -> list[ModelBundle]:
    """The zoo, in the order the Compare tab shows it (empty until it is registered)."""
    return list(_zoo)


def zoo_member(name: str | None) -> ModelBundle:
    """The zoo's model of that name; the zoo's first for an unknown one."""
    return next((b for b in _zoo if b.name == name), _zoo[0])


def bundle(name: str | None) -> ModelBundle:
    """The model of that menu name (a served one, or a visitor's own); the default model for an unknown or missing
    name, or for a visitor's model that was forgotten."""
    return _models.get(name) or _own_model(name) or next(iter(_models.values()))


def model_names() -> list[str]:
    """The models every visitor is offered (a visitor's own models are not among them)."""
    return list(_models)


def is_known(name: str | None) -> bool:
    """Whether a name is a served model or a visitor's own model still kept."""
    return name in _models or _own_model(name) is not None


def own_name(label: str) -> str:
    """A new name for a visitor's own model: the label and a random part nobody else can guess, so that only the
    visitor (or program) it is given to can use the model."""
    return f"{label}-{secrets.token_hex(8)}"


def own_folder(label: str) -> Path:
    """A new model folder's path for a visitor's own model, named by own_name(label), inside a scratch folder made
    for it alone: the folder keep_own_model is given and deletes when it forgets the model (a zip of the model may
    sit beside it there)."""
    return Path(tempfile.mkdtemp(prefix="vit-own-")) / own_name(label)


def keep_own_model(model: ModelBundle, folder: Path | None = None) -> None:
    """Keep a model a visitor made under its name (`own_name`) for OWN_MODEL_SECONDS after its last use; the
    oldest beyond MAX_OWN_MODELS is forgotten, and its folder deleted."""
    with _own_lock:
        _forget_expired()
        _own[model.name] = _Own(model, folder, time.monotonic())
        while len(_own) > MAX_OWN_MODELS:
            _forget(min(_own, key=lambda name: _own[name].used))


def _own_model(name: str | None) -> ModelBundle | None:
    with _own_lock:
        _forget_expired()
        kept = _own.get(name)
        if kept is None:
            return None
        kept.used = time.monotonic()
        return kept.bundle


def _forget_expired() -> None:
    now = time.monotonic()
    for name in [name for name, kept in _own.items() if now - kept.used > OWN_MODEL_SECONDS]:
        _forget(name)


def _forget(name: str) -> None:
    kept = _own.pop(name)
    if kept.folder is not None:
        shutil.rmtree(kept.folder, ignore_errors=True)


def cached(maxsize: int | None = 64):
    """lru_cache for results that depend only on a model (by name) and a few choices; cleared by use_models and
    use_zoo.

    The cached arrays are shared by every visitor, so they are made read-only.
    """
    def decorate(function):
        @functools.lru_cache(maxsize=maxsize)
        def memo(*args):
            result = function(*args)
            for value in result if isinstance(result, tuple) else (result,):
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
            return result
        _caches.append(memo)
        return functools.wraps(function)(memo)
    return decorate
