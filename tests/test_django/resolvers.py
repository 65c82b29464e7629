"""Resolvers the test settings name by dotted path."""

from __future__ import annotations

from ainisa_middleware import Business, StaticResolver

SECRET = "django-test-secret"
PRO = Business(id="biz_pro", secrets=(SECRET,))

TOKENS = Business(id="biz_tok", secrets=(SECRET,), proofs=frozenset({"token"}))

#: What ``settings.AINISA["RESOLVER"]`` points at.
resolver = StaticResolver({"wid_pro": PRO, "wid_tok": TOKENS})


class NeedsArguments:
    """A resolver class that cannot be built from a dotted path alone."""

    def __init__(self, mapping: dict[str, Business]) -> None:
        self.mapping = mapping

    def resolve(self, widget_id: str) -> Business | None:
        return self.mapping.get(widget_id)
