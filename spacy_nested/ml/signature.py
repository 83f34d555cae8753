"""Give a ``**kwargs`` function the explicit signature that spaCy's config validation reads.

Registered functions are validated against ``inspect.signature`` and their type hints, and
``**kwargs`` is dropped from that schema. The architectures and factories whose arguments
are read off a class (a head's settings, a detector's own settings) take ``**kwargs`` and
get the real parameter list here, so each setting is written once, where it is used.
"""
import inspect
from typing import Any, Callable, List, Optional, TypeVar

Func = TypeVar("Func", bound=Callable[..., Any])


def with_signature(
    func: Func, params: List[inspect.Parameter], returns: Any, *, name: str, doc: str, module: Optional[str] = None
) -> Func:
    """``func`` renamed ``name``, documented by ``doc``, with ``params`` as its signature and type hints."""
    func.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    func.__annotations__ = {**{p.name: p.annotation for p in params}, "return": returns}
    func.__name__ = func.__qualname__ = name
    func.__module__ = module or func.__module__
    func.__doc__ = doc
    return func
