"""Which adapter serves a connection: by offered subprotocol token, else by path."""

from __future__ import annotations

from dataclasses import dataclass

from broker.subprotocols.base import AdapterFactory, PathCheck


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """An adapter's name, the tokens it speaks and the paths that pick it with no header."""

    name: str
    tokens: tuple[str, ...]
    factory: AdapterFactory
    paths: tuple[str, ...] = ()
    path_check: PathCheck | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen adapter, the token to echo (None: no header) and the protocol it speaks."""

    spec: AdapterSpec
    token: str | None
    protocol: str | None


class Registry:
    """Adapters by token and by path; the fallback serves clients that offer nothing we speak."""

    def __init__(self) -> None:
        self._by_token: dict[str, AdapterSpec] = {}
        self._by_path: dict[str, tuple[AdapterSpec, str | None]] = {}
        self._fallback: AdapterSpec | None = None

    def register(self, spec: AdapterSpec, *, fallback: bool = False) -> None:
        for token in spec.tokens:
            if token in self._by_token:
                raise ValueError(f"subprotocol {token!r} is already registered")
            self._by_token[token] = spec
        for path in spec.paths:
            self._by_path[path] = (spec, spec.tokens[0] if spec.tokens else None)
        if fallback:
            self._fallback = spec

    def route_path(self, path: str, spec: AdapterSpec, token: str) -> None:
        """Make a path pick `spec`, as if the client had offered `token`."""
        self._by_path[path] = (spec, token)

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self._by_token)

    def select(self, offered: list[str], path: str) -> Selection | None:
        """The first offered token we speak; else the path's adapter; else the fallback."""
        for token in offered:
            spec = self._by_token.get(token)
            if spec is not None:
                return Selection(spec, token, token)
        by_path = self._by_path.get(path.rstrip("/") or "/")
        if by_path is not None:
            return Selection(by_path[0], None, by_path[1])
        if self._fallback is not None:
            return Selection(self._fallback, None, None)
        return None
