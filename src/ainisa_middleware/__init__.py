"""Trust who your Ainisa chat visitors are.

The core names live here and import only the standard library; each host has
its adapter: :mod:`ainisa_middleware.asgi`, :mod:`ainisa_middleware.wsgi`,
:mod:`ainisa_middleware.django`.
"""

from __future__ import annotations

from .errors import ConfigurationError, RequestError
from .models import AinisaUser, Business, Status
from .resolvers import AsyncResolver, CachedResolver, Resolver, StaticResolver
from .signing import user_hash, verify_user_hash
from .tokens import user_token

__all__ = [
    "AinisaUser",
    "AsyncResolver",
    "Business",
    "CachedResolver",
    "ConfigurationError",
    "RequestError",
    "Resolver",
    "StaticResolver",
    "Status",
    "__version__",
    "user_hash",
    "user_token",
    "verify_user_hash",
]

__version__ = "0.1.0"
