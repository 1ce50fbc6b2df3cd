"""The `wsbroker` command: `wsbroker serve [options]`."""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from broker import __version__
from broker.config import Settings, load_settings

# The everyday options come first in --help; every other setting follows.
_EVERYDAY = ("host", "port", "data_dir", "log_level", "log_format")


_METAVARS: dict[Any, str] = {Path: "PATH", float: "SECONDS", int: "N", str: "TEXT"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is list


def _is_bool(annotation: Any) -> bool:
    return annotation is bool


def _choices(annotation: Any) -> tuple[Any, ...] | None:
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else None


def _strip_optional(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _add_setting(group: argparse._ArgumentGroup, name: str) -> None:
    field = Settings.model_fields[name]
    annotation = _strip_optional(field.annotation)
    env = f"WSBROKER_{name.upper()}"
    default = field.default
    shown = ",".join(default) if isinstance(default, list) else default
    help_text = f"{field.description} [env {env}; default: {shown}]"
    if _is_bool(annotation):
        group.add_argument(
            _flag(name), action=argparse.BooleanOptionalAction, default=None, help=help_text
        )
    elif _is_list(annotation):
        group.add_argument(
            _flag(name),
            type=lambda value: [item.strip() for item in value.split(",") if item.strip()],
            default=None,
            metavar="A,B",
            help=help_text,
        )
    elif (choices := _choices(annotation)) is not None:
        group.add_argument(_flag(name), choices=choices, default=None, help=help_text)
    else:
        metavar = _METAVARS.get(annotation, "VALUE")
        group.add_argument(_flag(name), default=None, metavar=metavar, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsbroker",
        description="Pub/sub broker for MQTT, STOMP, WAMP and plain messages over WebSocket.",
    )
    parser.add_argument("--version", action="version", version=f"wsbroker {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the broker",
        description=(
            "Run the broker. Each setting comes from its flag, else its WSBROKER_ environment "
            "variable, else the TOML file given with --config, else its default."
        ),
    )
    serve.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings")
    everyday = serve.add_argument_group("everyday options")
    for name in _EVERYDAY:
        _add_setting(everyday, name)
    more = serve.add_argument_group("all other settings")
    for name in Settings.model_fields:
        if name not in _EVERYDAY:
            _add_setting(more, name)
    return parser


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "settings"
        lines.append(f"invalid setting {field}: {problem['msg']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {name: getattr(args, name) for name in Settings.model_fields}
    try:
        settings = load_settings(args.config, **flags)
    except ValidationError as exc:
        print(f"wsbroker: {_describe(exc)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"wsbroker: {exc}", file=sys.stderr)
        return 2

    from broker import logs
    from broker.app import run

    logs.configure(settings.log_level, settings.log_format)
    try:
        run(settings)
    except OSError as exc:
        print(f"wsbroker: cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
