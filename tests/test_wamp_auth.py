"""WAMP authentication: the wamp_auth settings, the core's StaticAuthenticator, and the flow."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from broker.cli import main
from broker.config import Settings, build_authenticator, load_settings
from broker.core.auth import (
    AllowAll,
    Credentials,
    Identity,
    Principal,
    RealmPolicy,
    StaticAuthenticator,
    derive_key,
)
from broker.core.broker import Broker
from broker.subprotocols.base import AdapterContext
from broker.subprotocols.wamp.auth import AuthFailure, AuthFlow, ChallengeToSend, WampIdentity
from broker.subprotocols.wamp.messages import Abort, Authenticate, Challenge, Hello, Welcome
from tests.fakes import FakeClock
from tests.test_wamp_session import Client, Harness

try:
    from autobahn.wamp import auth as autobahn_auth
except ImportError:  # the independent computation below stands in
    autobahn_auth = None

TOML = """
realms = ["realm1", "other"]

[wamp_auth.realm1]
anonymous = false

[[wamp_auth.realm1.principals]]
authid = "joe"
authrole = "frontend"
method = "ticket"
ticket = "secret!!!"

[[wamp_auth.realm1.principals]]
authid = "client1"
authrole = "backend"
method = "wampcra"
secret = "secret123"

[[wamp_auth.realm1.principals]]
authid = "client2"
authrole = "backend"
method = "wampcra"
secret = "secret123"
salt = "salt123"
iterations = 100
keylen = 16

[[wamp_auth.realm1.principals]]
authid = "peter"
authrole = "user"
method = "ticket"
ticket = "peter-ticket"

[[wamp_auth.realm1.principals]]
authid = "peter"
authrole = "user"
method = "wampcra"
secret = "peter-secret"
"""

# Computed by autobahn 26.10.2: auth.derive_key("secret123", "salt123", 100, 16).
AUTOBAHN_DERIVED = b"DpHHRlQ6UNULJlP9J8WkPw=="


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("WSBROKER_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.toml"
    path.write_text(text)
    return path


def sign(secret: str, challenge: dict[str, Any]) -> str:
    """The client's WAMP-CRA signature, by autobahn when installed, else by hand."""
    key = secret.encode()
    if autobahn_auth is not None:
        if "salt" in challenge:
            key = autobahn_auth.derive_key(
                key, challenge["salt"], challenge["iterations"], challenge["keylen"]
            )
        signed: bytes = autobahn_auth.compute_wcs(key, challenge["challenge"].encode())
        return signed.decode()
    return sign_by_hand(secret, challenge)


def sign_by_hand(secret: str, challenge: dict[str, Any]) -> str:
    key = secret.encode()
    if "salt" in challenge:
        raw = hashlib.pbkdf2_hmac(
            "sha256", key, challenge["salt"].encode(), challenge["iterations"], challenge["keylen"]
        )
        key = base64.b64encode(raw)
    mac = hmac.new(key, challenge["challenge"].encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class AuthHarness(Harness):
    """Harness whose broker authenticates as `settings` say."""

    def __init__(self, settings: Settings) -> None:
        self.clock = FakeClock()
        self.settings = settings
        self.broker = Broker(
            realms=settings.realms,
            clock=self.clock,
            authenticator=build_authenticator(settings),
        )
        self.context = AdapterContext(self.broker, settings)

    def hello(self, realm: str = "realm1", **details: Any) -> Client:
        client = self.client()
        client.send(Hello(realm, {"roles": {"subscriber": {}}, **details}))
        return client


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(write(tmp_path, TOML))


@pytest.fixture
def harness(settings: Settings) -> AuthHarness:
    return AuthHarness(settings)


def welcomed(client: Client) -> dict[str, Any]:
    welcome: Welcome = client.one(Welcome)
    return welcome.details


def challenged(client: Client, method: str) -> dict[str, Any]:
    challenge: Challenge = client.one(Challenge)
    assert challenge.authmethod == method
    return challenge.extra


def aborted(client: Client) -> Abort:
    abort: Abort = client.one(Abort)
    assert client.link.closed is not None
    return abort


# --- configuration ---------------------------------------------------------------------------


def test_toml_configures_principals_per_realm(settings: Settings) -> None:
    realm1 = settings.wamp_auth["realm1"]
    assert realm1.anonymous is False
    assert realm1.anonymous_authrole == "anonymous"
    assert [(p.authid, p.method) for p in realm1.principals][:3] == [
        ("joe", "ticket"),
        ("client1", "wampcra"),
        ("client2", "wampcra"),
    ]
    salted = realm1.principals[2]
    assert (salted.salt, salted.iterations, salted.keylen) == ("salt123", 100, 16)
    assert realm1.principals[1].iterations == 1000  # defaults, unused without a salt
    assert realm1.principals[1].keylen == 32
    assert "secret123" not in repr(settings)  # secrets stay out of logs
    assert "other" not in settings.wamp_auth


def test_nothing_configured_means_allow_all() -> None:
    settings = load_settings()
    assert settings.wamp_auth == {}
    assert isinstance(build_authenticator(settings), AllowAll)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[wamp_auth.nowhere]\nanonymous = false\n", r"wamp_auth names realms \['nowhere'\]"),
        ('[wamp_auth.realm1]\nanonymous = "maybe"\n', r"wamp_auth\.realm1\.anonymous"),
        ("[wamp_auth.realm1]\nopen = true\n", r"wamp_auth\.realm1\.open"),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "ticket"\n',
            "ticket is required for method 'ticket'",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "wampcra"\n',
            "secret is required for method 'wampcra'",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nticket = "t"\n',
            r"principals\.0\.method",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nmethod = "ticket"\nticket = "t"\n',
            r"principals\.0\.authrole",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\n'
            'method = "cryptosign"\n',
            r"principals\.0\.method",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nrole = "r"\nauthrole = "r"\n'
            'method = "ticket"\nticket = "t"\n',
            r"principals\.0\.role",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "ticket"\n'
            'ticket = "t"\nsalt = "s"\n',
            "salt: only for method 'wampcra'",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "wampcra"\n'
            'secret = "s"\niterations = 10\n',
            "iterations: only with a salt",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "wampcra"\n'
            'secret = "s"\nsalt = "x"\nkeylen = 0\n',
            r"principals\.0\.keylen",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "ticket"\n'
            'ticket = ""\n',
            r"principals\.0\.ticket",
        ),
        (
            '[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "r"\nmethod = "ticket"\n'
            'ticket = "t"\n[[wamp_auth.realm1.principals]]\nauthid = "a"\nauthrole = "q"\n'
            'method = "ticket"\nticket = "u"\n',
            "authid 'a' has method 'ticket' more than once",
        ),
    ],
)
def test_invalid_wamp_auth_names_the_field(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        load_settings(write(tmp_path, text))


def test_env_and_flag_take_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSBROKER_WAMP_AUTH", '{"realm1": {"anonymous": false}}')
    assert load_settings().wamp_auth["realm1"].anonymous is False
    flag = '{"realm1": {"anonymous_authrole": "guest"}}'
    settings = load_settings(wamp_auth=flag)
    assert settings.wamp_auth["realm1"].anonymous is True
    assert settings.wamp_auth["realm1"].anonymous_authrole == "guest"
    with pytest.raises(ValidationError, match="wamp_auth"):
        load_settings(wamp_auth="{nope")


def test_cli_flag_takes_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--wamp-auth", '{"nowhere": {}}']) == 2
    assert "wamp_auth names realms ['nowhere']" in capsys.readouterr().err


# --- the core's StaticAuthenticator ----------------------------------------------------------


def test_derive_key_matches_autobahn() -> None:
    assert derive_key("secret123", "salt123", 100, 16) == AUTOBAHN_DERIVED
    if autobahn_auth is not None:
        assert derive_key("pässword", "s", 7, 40) == autobahn_auth.derive_key(
            "pässword", "s", 7, 40
        )


def test_plain_logins_go_to_the_fallback(settings: Settings) -> None:
    # MQTT and STOMP log in without a method: configured WAMP principals change nothing for them.
    core = build_authenticator(settings)
    identity = core.authenticate(Credentials("mqtt", "peer", username="x", password=b"y"))
    assert identity == Identity(user="x")


def test_password_is_a_ticket_under_another_name(settings: Settings) -> None:
    core = build_authenticator(settings)

    def login(user: str, password: bytes) -> Identity | None:
        return core.authenticate(
            Credentials("stomp", "peer", user, password, realm="realm1", method="password")
        )

    assert login("joe", b"secret!!!") == Identity("joe", "realm1", "frontend")
    assert login("joe", b"wrong") is None
    assert login("client1", b"secret123") is None  # a WAMP-CRA principal has no ticket
    assert login("nobody", b"secret!!!") is None


def test_decoy_secrets_are_stable_and_unguessable() -> None:
    salted = Principal("a", "r", "wampcra", "s", "salt", 50, 20)
    core = StaticAuthenticator({"realm1": RealmPolicy(principals=(salted,))})
    decoy = core.secret("realm1", "nobody", "wampcra")
    assert decoy is not None
    assert decoy == core.secret("realm1", "nobody", "wampcra")
    assert (decoy.role, decoy.iterations, decoy.keylen) == ("r", 50, 20)
    assert decoy.salt is not None
    assert decoy.salt != core.secret("realm1", "else", "wampcra").salt  # type: ignore[union-attr]
    assert core.methods("realm1", "nobody") == frozenset()
    assert core.methods("realm1", None) == {"wampcra"}
    assert core.secret("realm1", "a", "ticket") is None


# --- anonymous -------------------------------------------------------------------------------


def test_anonymous_by_default_as_before() -> None:
    harness = AuthHarness(Settings(realms=["realm1"]))
    details = welcomed(harness.hello())
    assert (details["authrole"], details["authmethod"], details["authprovider"]) == (
        "anonymous",
        "anonymous",
        "static",
    )


def test_anonymous_role_is_configurable() -> None:
    settings = Settings(wamp_auth={"realm1": {"anonymous_authrole": "guest"}})
    details = welcomed(AuthHarness(settings).hello(authmethods=["anonymous"]))
    assert details["authrole"] == "guest"


def test_anonymous_does_not_take_the_authid_it_names() -> None:
    harness = AuthHarness(Settings())
    client = harness.hello(authmethods=["anonymous"], authid="joe")
    details = welcomed(client)
    assert details["authid"] != "joe"  # anyone could claim it: the session id stands in


@pytest.mark.parametrize("details", [{}, {"authmethods": ["anonymous"]}])
def test_anonymous_refused_when_disabled(harness: AuthHarness, details: dict[str, Any]) -> None:
    abort = aborted(harness.hello(**details))
    assert abort.reason == "wamp.error.no_auth_method"
    assert "realm1" in abort.details["message"]


def test_other_realms_stay_anonymous(harness: AuthHarness) -> None:
    assert welcomed(harness.hello("other"))["authrole"] == "anonymous"
    client = harness.hello("other", authmethods=["ticket"], authid="joe")
    assert aborted(client).reason == "wamp.error.no_auth_method"


# --- ticket ----------------------------------------------------------------------------------


def test_ticket_success(harness: AuthHarness) -> None:
    client = harness.hello(authmethods=["ticket"], authid="joe")
    assert challenged(client, "ticket") == {}
    client.send(Authenticate("secret!!!", {}))
    details = welcomed(client)
    assert (details["authid"], details["authrole"]) == ("joe", "frontend")
    assert (details["authmethod"], details["authprovider"]) == ("ticket", "static")


def test_wrong_ticket_and_unknown_authid_fail_alike(harness: AuthHarness) -> None:
    wrong = harness.hello(authmethods=["ticket"], authid="joe")
    challenged(wrong, "ticket")
    wrong.send(Authenticate("guess", {}))
    unknown = harness.hello(authmethods=["ticket"], authid="nobody")
    challenged(unknown, "ticket")
    unknown.send(Authenticate("secret!!!", {}))
    first, second = aborted(wrong), aborted(unknown)
    assert first.reason == second.reason == "wamp.error.authentication_failed"
    assert first.details == second.details


def test_ticket_needs_an_authid(harness: AuthHarness) -> None:
    abort = aborted(harness.hello(authmethods=["ticket"]))
    assert abort.reason == "wamp.error.no_auth_method"
    assert "need an authid" in abort.details["message"]


# --- WAMP-CRA --------------------------------------------------------------------------------


def test_wampcra_success_and_challenge_contents(harness: AuthHarness) -> None:
    client = harness.hello(authmethods=["wampcra"], authid="client1")
    extra = challenged(client, "wampcra")
    assert set(extra) == {"challenge"}
    challenge = json.loads(extra["challenge"])
    assert set(challenge) == {
        "authid",
        "authrole",
        "authmethod",
        "authprovider",
        "nonce",
        "timestamp",
        "session",
    }
    assert (challenge["authid"], challenge["authrole"]) == ("client1", "backend")
    assert (challenge["authmethod"], challenge["authprovider"]) == ("wampcra", "static")
    assert len(challenge["nonce"]) >= 32
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", challenge["timestamp"])
    assert type(challenge["session"]) is int
    assert 1 <= challenge["session"] <= 2**53
    client.send(Authenticate(sign("secret123", extra), {}))
    details = welcomed(client)
    assert (details["authid"], details["authrole"]) == ("client1", "backend")
    assert (details["authmethod"], details["authprovider"]) == ("wampcra", "static")


def test_wampcra_salted_as_autobahn_derives(harness: AuthHarness) -> None:
    client = harness.hello(authmethods=["wampcra"], authid="client2")
    extra = challenged(client, "wampcra")
    assert (extra["salt"], extra["iterations"], extra["keylen"]) == ("salt123", 100, 16)
    signature = sign("secret123", extra)
    assert signature == sign_by_hand("secret123", extra)
    client.send(Authenticate(signature, {}))
    assert welcomed(client)["authid"] == "client2"


def test_wampcra_salted_secret_signed_unsalted_fails(harness: AuthHarness) -> None:
    client = harness.hello(authmethods=["wampcra"], authid="client2")
    extra = challenged(client, "wampcra")
    client.send(Authenticate(sign("secret123", {"challenge": extra["challenge"]}), {}))
    assert aborted(client).reason == "wamp.error.authentication_failed"


def test_wampcra_wrong_secret_and_unknown_authid_fail_alike(harness: AuthHarness) -> None:
    wrong = harness.hello(authmethods=["wampcra"], authid="client1")
    wrong.send(Authenticate(sign("guess", challenged(wrong, "wampcra")), {}))
    unknown = harness.hello(authmethods=["wampcra"], authid="nobody")
    extra = challenged(unknown, "wampcra")
    # A made-up authid's challenge looks like the realm's first WAMP-CRA principal's (client1).
    assert set(extra) == {"challenge"}
    assert json.loads(extra["challenge"])["authrole"] == "backend"
    unknown.send(Authenticate(sign("secret123", extra), {}))
    first, second = aborted(wrong), aborted(unknown)
    assert first.reason == second.reason == "wamp.error.authentication_failed"
    assert first.details == second.details


def test_a_challenge_is_valid_once(harness: AuthHarness) -> None:
    first = harness.hello(authmethods=["wampcra"], authid="client1")
    extra = challenged(first, "wampcra")
    signature = sign("secret123", extra)
    first.send(Authenticate(signature, {}))
    welcomed(first)
    # A replayed signature does not meet a new challenge: a new nonce, a new session id.
    second = harness.hello(authmethods=["wampcra"], authid="client1")
    assert challenged(second, "wampcra")["challenge"] != extra["challenge"]
    second.send(Authenticate(signature, {}))
    assert aborted(second).reason == "wamp.error.authentication_failed"


def test_the_flow_takes_one_answer_per_challenge(harness: AuthHarness) -> None:
    flow = AuthFlow(harness.broker, "realm1", {"authmethods": ["ticket"], "authid": "joe"}, "p")
    assert isinstance(flow.start(), ChallengeToSend)
    assert isinstance(flow.authenticate("secret!!!", {}), WampIdentity)
    again = flow.authenticate("secret!!!", {})
    assert isinstance(again, AuthFailure)
    assert again.reason == "wamp.error.authentication_failed"


# --- negotiation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "method"),
    [
        (["wampcra", "ticket"], "wampcra"),
        (["ticket", "wampcra"], "ticket"),
        (["cryptosign", "ticket"], "ticket"),
        (["anonymous", "wampcra"], "wampcra"),  # anonymous is off in realm1
    ],
)
def test_first_offered_method_the_authid_has(
    harness: AuthHarness, offered: list[str], method: str
) -> None:
    challenged(harness.hello(authmethods=offered, authid="peter"), method)


def test_skips_methods_the_authid_lacks(harness: AuthHarness) -> None:
    client = harness.hello(authmethods=["wampcra", "ticket"], authid="joe")
    challenged(client, "ticket")


def test_a_method_the_authid_lacks_fails_like_an_unknown_authid(harness: AuthHarness) -> None:
    client = harness.hello(authmethods=["wampcra"], authid="joe")
    extra = challenged(client, "wampcra")
    client.send(Authenticate(sign("secret!!!", extra), {}))
    assert aborted(client).reason == "wamp.error.authentication_failed"


def test_anonymous_first_when_offered_first_and_allowed() -> None:
    settings = Settings(
        wamp_auth={
            "realm1": {
                "principals": [
                    {"authid": "joe", "authrole": "r", "method": "ticket", "ticket": "t"}
                ]
            }
        }
    )
    harness = AuthHarness(settings)
    anonymous = harness.hello(authmethods=["anonymous", "ticket"], authid="joe")
    assert welcomed(anonymous)["authmethod"] == "anonymous"
    ticket = harness.hello(authmethods=["ticket", "anonymous"], authid="joe")
    challenged(ticket, "ticket")


def test_no_offered_method_is_accepted(harness: AuthHarness) -> None:
    abort = aborted(harness.hello(authmethods=["cryptosign", "scram"], authid="peter"))
    assert abort.reason == "wamp.error.no_auth_method"
    assert "'cryptosign', 'scram'" in abort.details["message"]


@pytest.mark.parametrize(
    "details", [{"authmethods": "ticket"}, {"authmethods": [1]}, {"authid": 7}]
)
def test_malformed_auth_details(harness: AuthHarness, details: dict[str, Any]) -> None:
    assert aborted(harness.hello(**details)).reason == "wamp.error.protocol_violation"


def test_allow_all_offers_only_anonymous() -> None:
    harness = AuthHarness(Settings())
    abort = aborted(harness.hello(authmethods=["ticket"], authid="joe"))
    assert abort.reason == "wamp.error.no_auth_method"


# --- autobahn's own client, over a socket ----------------------------------------------------


async def autobahn_join(port: int, authid: str, method: str, answer: Any) -> tuple[Any, ...]:
    """Join realm1 as autobahn-python does: ("joined", authid, role, method) or ("left", why)."""
    import asyncio

    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.asyncio.websocket import WampWebSocketClientFactory
    from autobahn.wamp.types import ComponentConfig

    done: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()

    class Session(ApplicationSession):
        def onConnect(self) -> None:
            self.join("realm1", [method], authid)

        def onChallenge(self, challenge: Any) -> str:
            return str(answer(challenge))

        def onJoin(self, details: Any) -> None:
            done.set_result(("joined", details.authid, details.authrole, details.authmethod))
            self.leave()

        def onLeave(self, details: Any) -> None:
            if not done.done():
                done.set_result(("left", details.reason))
            self.disconnect()

    factory = WampWebSocketClientFactory(
        lambda: Session(ComponentConfig("realm1")), url=f"ws://127.0.0.1:{port}/ws"
    )
    transport, _ = await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port)
    try:
        return await asyncio.wait_for(done, 5)
    finally:
        transport.close()


@pytest.mark.skipif(autobahn_auth is None, reason="autobahn is not installed")
@pytest.mark.anyio
async def test_autobahn_client_ticket_and_salted_wampcra(settings: Settings) -> None:
    from tests.conftest import running_broker

    def cra(secret: str) -> Any:
        return lambda challenge: sign(secret, challenge.extra)

    async with running_broker(realms=settings.realms, wamp_auth=settings.wamp_auth) as listener:
        port = listener.addresses[0][1]
        ticket = await autobahn_join(port, "joe", "ticket", lambda _: "secret!!!")
        assert ticket == ("joined", "joe", "frontend", "ticket")
        salted = await autobahn_join(port, "client2", "wampcra", cra("secret123"))
        assert salted == ("joined", "client2", "backend", "wampcra")
        wrong = await autobahn_join(port, "client2", "wampcra", cra("secret124"))
        assert wrong == ("left", "wamp.error.authentication_failed")
