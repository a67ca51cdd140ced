"""The models the app serves, loaded once at start-up and then only read, by every visitor and every caller.

The app's tabs and its public API (api.py) name a model by its menu name and look it up here; the Compare tab's
zoo is registered here too. Pictures cached per model (`cached`) are forgotten when the models change.
"""

import functools

import numpy as np

from .bundle import ModelBundle

_models: dict[str, ModelBundle] = {}
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
    """The model of that menu name; the default model for an unknown or missing name."""
    return _models.get(name) or next(iter(_models.values()))


def model_names() -> list[str]:
    return list(_models)


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
