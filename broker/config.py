"""Broker settings: one pydantic-settings model read from defaults, a TOML file, env and flags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from broker.core.auth import (
    AllowAll,
    Authenticator,
    Principal,
    RealmPolicy,
    StaticAuthenticator,
)

_CRA_ONLY = ("secret", "salt", "iterations", "keylen")


class WampPrincipal(BaseModel):
    """One WAMP login: `authid` joins as `authrole` with a ticket, or by WAMP-CRA with a secret.

    method "ticket" takes `ticket`; method "wampcra" takes `secret`, and for a salted secret also
    `salt`, `iterations` and `keylen` (PBKDF2-HMAC-SHA256, as autobahn's `derive_key`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    authid: str = Field(min_length=1, description="The name the client gives in HELLO.")
    authrole: str = Field(min_length=1, description="The role WELCOME grants it.")
    method: Literal["ticket", "wampcra"] = Field(description="How it proves who it is.")
    ticket: SecretStr | None = Field(None, min_length=1, description="method ticket: the ticket.")
    secret: SecretStr | None = Field(
        None, min_length=1, description="method wampcra: the shared secret."
    )
    salt: str | None = Field(None, min_length=1, description="wampcra: salt of a salted secret.")
    iterations: int = Field(1000, ge=1, le=10_000_000, description="wampcra: PBKDF2 iterations.")
    keylen: int = Field(32, ge=1, le=1024, description="wampcra: PBKDF2 key length in bytes.")

    @model_validator(mode="after")
    def _fields_of_method(self) -> WampPrincipal:
        given = self.model_fields_set
        if self.method == "ticket":
            if self.ticket is None:
                raise ValueError(f"ticket is required for method 'ticket' (authid {self.authid!r})")
            if wrong := [name for name in _CRA_ONLY if name in given]:
                raise ValueError(f"{', '.join(wrong)}: only for method 'wampcra', not 'ticket'")
            return self
        if self.secret is None:
            raise ValueError(f"secret is required for method 'wampcra' (authid {self.authid!r})")
        if "ticket" in given:
            raise ValueError("ticket: only for method 'ticket', not 'wampcra'")
        if self.salt is None and (unsalted := [n for n in ("iterations", "keylen") if n in given]):
            raise ValueError(f"{', '.join(unsalted)}: only with a salt")
        return self

    def principal(self) -> Principal:
        """The core's view of this login."""
        shown = self.ticket if self.method == "ticket" else self.secret
        assert shown is not None  # the validator saw to it
        return Principal(
            self.authid,
            self.authrole,
            self.method,
            shown.get_secret_value(),
            self.salt,
            self.iterations,
            self.keylen,
        )


class WampRealmAuth(BaseModel):
    """Who may join one realm over WAMP: anonymous clients (as which role) and principals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    anonymous: bool = Field(True, description="Let clients join without authenticating.")
    anonymous_authrole: str = Field(
        "anonymous", min_length=1, description="The role anonymous clients get."
    )
    principals: list[WampPrincipal] = Field([], description="Logins by ticket or WAMP-CRA.")

    @model_validator(mode="after")
    def _unique(self) -> WampRealmAuth:
        seen: set[tuple[str, str]] = set()
        for principal in self.principals:
            login = (principal.authid, principal.method)
            if login in seen:
                raise ValueError(
                    f"principals: authid {principal.authid!r} has method "
                    f"{principal.method!r} more than once"
                )
            seen.add(login)
        return self

    def policy(self) -> RealmPolicy:
        """The core's view of this realm's logins."""
        return RealmPolicy(
            self.anonymous,
            self.anonymous_authrole,
            tuple(principal.principal() for principal in self.principals),
        )


class Settings(BaseSettings):
    """Everything the broker can be told; defaults run a complete broker on one machine."""

    model_config = SettingsConfigDict(
        env_prefix="WSBROKER_",
        extra="forbid",
        validate_default=True,
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to listen on (0: any free port).")
    data_dir: Path = Field(Path("data"), description="Directory for persistent state.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level of log lines written."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")

    realms: list[str] = Field(["realm1"], min_length=1, description="Realms (isolated namespaces).")
    default_realm: str = Field("realm1", description="Realm used when a client names none.")
    wamp_path_subprotocol: Literal[
        "wamp.2.json", "wamp.2.msgpack", "wamp.2.json.batched", "wamp.2.msgpack.batched"
    ] = Field(
        "wamp.2.json",
        description="What a client that offers no subprotocol on the path /wamp speaks.",
    )
    wamp_auth: dict[str, WampRealmAuth] = Field(
        {},
        description=(
            "WAMP authentication per realm, a table per realm name (as JSON in env and flags): "
            "anonymous, anonymous_authrole, principals (authid, authrole, method ticket|wampcra, "
            "ticket | secret [salt, iterations, keylen]). Realms not named: anonymous only."
        ),
    )

    tls_cert: Path | None = Field(
        None, description="PEM certificate chain; with tls_key, serve wss://."
    )
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")

    max_connections: int = Field(10_000, ge=1, description="Open connections; past it, HTTP 503.")
    max_message_size: int = Field(
        1 << 20, ge=125, description="Largest WebSocket message in bytes, after decompression."
    )
    handshake_timeout: float = Field(10.0, gt=0, description="Seconds to finish the HTTP upgrade.")
    ping_interval: float = Field(20.0, ge=0, description="Seconds between server pings (0: none).")
    ping_timeout: float = Field(
        20.0, gt=0, description="Seconds to wait for a pong before closing."
    )
    idle_timeout: float = Field(
        0.0, ge=0, description="Close a connection that sends no message for this long (0: never)."
    )
    close_timeout: float = Field(
        5.0, gt=0, description="Seconds to wait for the peer's close frame."
    )
    compression: bool = Field(True, description="Offer permessage-deflate (RFC 7692) when asked.")
    outgoing_soft_limit: int = Field(
        256 * 1024,
        ge=0,
        description="Queued bytes past which QoS 0 messages to a client are dropped.",
    )
    outgoing_hard_limit: int = Field(
        4 * 1024 * 1024, ge=1, description="Queued bytes past which a slow client is disconnected."
    )
    retained_max_messages: int = Field(100_000, ge=0, description="Retained messages per realm.")
    sys_interval: float = Field(
        10.0, ge=0, description="Seconds between $SYS/broker/... updates (0: never)."
    )
    mqtt_max_keepalive: int = Field(
        65535, ge=1, le=65535, description="Longest MQTT keep alive granted, in seconds."
    )
    mqtt_receive_maximum: int = Field(
        100, ge=1, le=65535, description="Unacknowledged QoS 1/2 publishes a client may send."
    )
    mqtt_max_inflight: int = Field(
        20, ge=1, le=65535, description="QoS 1/2 messages in flight to one MQTT client at most."
    )
    mqtt_max_packet_size: int | None = Field(
        None,
        ge=64,
        le=268_435_455,
        description="Largest MQTT packet accepted, in bytes (default: max_message_size - 1).",
    )
    mqtt_topic_alias_maximum: int = Field(
        10, ge=0, le=65535, description="Topic aliases an MQTT 5 client may set up."
    )
    mqtt_max_queued_messages: int = Field(
        1000, ge=0, description="QoS 1/2 messages kept per session beyond those in flight."
    )
    mqtt_max_session_expiry: int = Field(
        86_400, ge=0, description="Longest MQTT session expiry interval granted, in seconds."
    )
    stomp_max_frame_size: int = Field(
        1 << 20, ge=1024, description="Largest STOMP frame accepted (headers and body), bytes."
    )
    stomp_max_headers: int = Field(100, ge=8, description="Headers one STOMP frame may carry.")
    stomp_max_header_length: int = Field(
        8192, ge=256, description="Longest STOMP header line (name and value), in bytes."
    )
    stomp_max_frame_rate: int = Field(
        20_000,
        ge=0,
        description="STOMP frames one client may send per second; past it, ERROR (0: no limit).",
    )
    stomp_heartbeat_min: int = Field(
        1000,
        ge=0,
        description="Shortest STOMP heart-beat interval the server agrees to, in milliseconds.",
    )
    stomp_max_subscriptions: int = Field(
        1000, ge=1, description="Subscriptions one STOMP connection may hold."
    )
    stomp_max_transaction_frames: int = Field(
        10_000, ge=1, description="SENDs and ACKs one STOMP transaction may hold until COMMIT."
    )
    queue_max_count: int = Field(10_000, ge=1, description="Work queues (/queue/...) per realm.")
    queue_max_backlog: int = Field(
        100_000, ge=0, description="Messages a /queue holds waiting for a consumer."
    )
    queue_max_unacked: int = Field(
        1000,
        ge=1,
        description="Messages one queue consumer may hold unacknowledged (STOMP prefetch cap).",
    )

    @field_validator("wamp_auth", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        # Flags arrive as text; the environment source decodes JSON by itself.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not valid JSON: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.default_realm not in self.realms:
            raise ValueError(
                f"default_realm {self.default_realm!r} is not one of realms {self.realms}"
            )
        if unknown := [name for name in self.wamp_auth if name not in self.realms]:
            raise ValueError(
                f"wamp_auth names realms {unknown} that are not among realms {self.realms}"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both or neither")
        if self.mqtt_max_packet_size is not None and (
            self.mqtt_max_packet_size >= self.max_message_size
        ):
            # Else a packet just over the MQTT limit meets the WebSocket one first: close 1009
            # where MQTT 5 promises DISCONNECT 0x95.
            raise ValueError("mqtt_max_packet_size must be below max_message_size")
        if self.outgoing_soft_limit > self.outgoing_hard_limit:
            raise ValueError("outgoing_soft_limit must not exceed outgoing_hard_limit")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags arrive as init kwargs, so: flags > environment > TOML file > defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def mqtt_packet_limit(self) -> int:
        """The MQTT Maximum Packet Size in force: below the WebSocket message limit."""
        return self.mqtt_max_packet_size or self.max_message_size - 1

    @property
    def scheme(self) -> str:
        return "wss" if self.tls_cert is not None else "ws"


def build_authenticator(settings: Settings) -> Authenticator:
    """The core's login hook for these settings: AllowAll unless authentication is configured."""
    if not settings.wamp_auth:
        return AllowAll()
    return StaticAuthenticator(
        {name: realm.policy() for name, realm in settings.wamp_auth.items()},
        default_realm=settings.default_realm,
    )


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build settings from flags (None means not given), environment, TOML file and defaults."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")
    given = {k: v for k, v in flags.items() if v is not None}
    if config_file is None:
        return Settings(**given)

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    return FileSettings(**given)
