"""Authentication: anonymous, WAMP-Ticket and WAMP-CRA (plain and salted secrets), with the
authid and authrole the router assigns.

WAMP spec, Advanced Profile "Authentication", "Ticket-based Authentication",
"Challenge Response Authentication". The principals come from the environment (see
conftest.py); without them these tests skip.
"""

from __future__ import annotations

import json

import pytest

from conformance.aio import async_test
from conformance.wamp import wire
from conformance.wamp.clients import Credentials, Refused, auth
from conformance.wamp.rawwamp import RawWamp
from conformance.wamp.support import Server, peers

DENIED = ("wamp.error.not_authorized", "wamp.error.authentication_failed")


def hello_details(method: str, authid: str) -> dict[str, object]:
    return {"authmethods": [method], "authid": authid}


async def expect_denied(peer: RawWamp) -> None:
    """The router refuses the session: ABORT with a not-authorized reason."""
    reply = await peer.recv()
    assert reply[0] == wire.ABORT, reply
    assert reply[2] in DENIED, reply


@async_test
async def test_anonymous_when_asked_for(server: Server) -> None:
    realm = server.auth.realm or server.realm
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        reply = await peer.hello(realm, {"authmethods": ["anonymous"]})
        assert reply[0] == wire.WELCOME, reply
        assert reply[2].get("authmethod") == "anonymous", reply


@async_test
async def test_ticket_authenticates_with_authid_and_role(server: Server, ser: str) -> None:
    creds = server.auth.need_ticket()
    async with peers(server) as p:
        c = await p.autobahn(ser, realm=server.auth.realm, credentials=creds)
        assert c.details.authid == creds.authid
        assert c.details.authmethod == "ticket"
        if server.auth.ticket_role:
            assert c.details.authrole == server.auth.ticket_role


@async_test
async def test_ticket_message_flow(server: Server) -> None:
    """HELLO authmethods [ticket] → CHALLENGE [4, "ticket", {}] → AUTHENTICATE [5, ticket, {}]
    → WELCOME naming the authid, authrole and authmethod."""
    creds = server.auth.need_ticket()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        challenge = await peer.hello(
            server.auth.need_realm(), hello_details("ticket", creds.authid)
        )
        assert challenge[0] == wire.CHALLENGE, challenge
        assert challenge[1] == "ticket", challenge
        assert isinstance(challenge[2], dict), challenge
        peer.send([wire.AUTHENTICATE, creds.secret, {}])
        welcome = await peer.expect(wire.WELCOME)
        assert welcome[2].get("authid") == creds.authid, welcome
        assert welcome[2].get("authmethod") == "ticket", welcome
        if server.auth.ticket_role:
            assert welcome[2].get("authrole") == server.auth.ticket_role, welcome


@async_test
async def test_wrong_ticket_is_refused(server: Server) -> None:
    creds = server.auth.need_ticket()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        challenge = await peer.hello(
            server.auth.need_realm(), hello_details("ticket", creds.authid)
        )
        assert challenge[0] == wire.CHALLENGE, challenge
        peer.send([wire.AUTHENTICATE, creds.secret + "-wrong", {}])
        await expect_denied(peer)


@async_test
async def test_unknown_principal_is_refused(server: Server, uid: str) -> None:
    """An authid the router does not know gets no session (ABORT at HELLO, or after
    AUTHENTICATE: a router may challenge to hide which principals exist)."""
    server.auth.need_ticket()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        reply = await peer.hello(server.auth.need_realm(), hello_details("ticket", f"nobody-{uid}"))
        if reply[0] == wire.CHALLENGE:
            peer.send([wire.AUTHENTICATE, "anything", {}])
            reply = await peer.recv()
        assert reply[0] == wire.ABORT, reply
        assert reply[2] in (*DENIED, "wamp.error.no_such_principal"), reply


@async_test
async def test_autobahn_wrong_ticket_is_refused(server: Server) -> None:
    creds = server.auth.need_ticket()
    async with peers(server) as p:
        with pytest.raises(Refused) as info:
            await p.autobahn(
                realm=server.auth.realm,
                credentials=Credentials("ticket", creds.authid, creds.secret + "-wrong"),
            )
        assert info.value.reason in DENIED


@async_test
async def test_wampcra_authenticates_with_authid_and_role(server: Server, ser: str) -> None:
    creds = server.auth.need_cra()
    async with peers(server) as p:
        c = await p.autobahn(ser, realm=server.auth.realm, credentials=creds)
        assert c.details.authid == creds.authid
        assert c.details.authmethod == "wampcra"
        if server.auth.cra_role:
            assert c.details.authrole == server.auth.cra_role


@async_test
async def test_wampcra_message_flow(server: Server) -> None:
    """CHALLENGE [4, "wampcra", {"challenge": <JSON string>}]; the challenge names the
    authid, authrole, authmethod, a nonce and a timestamp; AUTHENTICATE with the
    HMAC-SHA256 of it (Base64) gets WELCOME."""
    creds = server.auth.need_cra()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        challenge = await peer.hello(
            server.auth.need_realm(), hello_details("wampcra", creds.authid)
        )
        assert challenge[0] == wire.CHALLENGE, challenge
        assert challenge[1] == "wampcra", challenge
        text = challenge[2]["challenge"]
        assert "salt" not in challenge[2], challenge
        body = json.loads(text)
        assert body["authid"] == creds.authid, body
        assert body["authmethod"] == "wampcra", body
        assert body.get("nonce"), body
        assert body.get("timestamp"), body
        signature = auth.compute_wcs(creds.secret, text)
        peer.send([wire.AUTHENTICATE, signature.decode("ascii"), {}])
        welcome = await peer.expect(wire.WELCOME)
        assert welcome[2].get("authid") == creds.authid, welcome
        assert welcome[2].get("authmethod") == "wampcra", welcome


@async_test
async def test_wampcra_wrong_secret_is_refused(server: Server) -> None:
    creds = server.auth.need_cra()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        challenge = await peer.hello(
            server.auth.need_realm(), hello_details("wampcra", creds.authid)
        )
        assert challenge[0] == wire.CHALLENGE, challenge
        signature = auth.compute_wcs(creds.secret + "-wrong", challenge[2]["challenge"])
        peer.send([wire.AUTHENTICATE, signature.decode("ascii"), {}])
        await expect_denied(peer)


@async_test
async def test_wampcra_salted_secret(server: Server, ser: str) -> None:
    """A salted user's CHALLENGE carries salt, iterations and keylen; the client derives the
    key with PBKDF2 and signs with it."""
    salted = server.auth.need_salted()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        challenge = await peer.hello(
            server.auth.need_realm(), hello_details("wampcra", salted.user)
        )
        assert challenge[0] == wire.CHALLENGE, challenge
        assert challenge[1] == "wampcra", challenge
        extra = challenge[2]
        assert extra.get("salt") == salted.salt, extra
        assert extra.get("iterations") == salted.iterations, extra
        assert extra.get("keylen") == salted.keylen, extra
        key = auth.derive_key(salted.secret, salted.salt, salted.iterations, salted.keylen)
        peer.send([wire.AUTHENTICATE, auth.compute_wcs(key, extra["challenge"]).decode(), {}])
        welcome = await peer.expect(wire.WELCOME)
        assert welcome[2].get("authid") == salted.user, welcome
        assert welcome[2].get("authrole") == salted.role, welcome
        # And through autobahn-python, which derives the key itself.
        c = await p.autobahn(
            ser,
            realm=server.auth.realm,
            credentials=Credentials("wampcra", salted.user, salted.secret),
        )
        assert c.details.authid == salted.user


@async_test
async def test_salted_user_signing_with_the_plain_secret_is_refused(server: Server) -> None:
    salted = server.auth.need_salted()
    async with peers(server) as p:
        peer = await p.raw(realm=None)
        challenge = await peer.hello(
            server.auth.need_realm(), hello_details("wampcra", salted.user)
        )
        assert challenge[0] == wire.CHALLENGE, challenge
        signature = auth.compute_wcs(salted.secret, challenge[2]["challenge"])
        peer.send([wire.AUTHENTICATE, signature.decode("ascii"), {}])
        await expect_denied(peer)


@async_test
async def test_authenticated_session_in_session_meta(server: Server) -> None:
    """wamp.session.get shows the authenticated principal's authid, authrole and authmethod."""
    creds = server.auth.need_ticket()
    async with peers(server) as p:
        c = await p.autobahn(realm=server.auth.realm, credentials=creds)
        other = await p.autobahn(realm=server.auth.realm)
        info = await other.call("wamp.session.get", c.id)
        assert info["authid"] == creds.authid, info
        assert info["authmethod"] == "ticket", info
        assert info["authrole"] == c.details.authrole, info
