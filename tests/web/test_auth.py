"""CPE authentication: Digest (RFC 7616 and RFC 2069) and Basic, with stateless nonces."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from acs.web.auth import Authenticator, parse_authorization
from tests.web.test_serve import authorization

AUTH = Authenticator(realm="acs", secret=b"k" * 32, nonce_ttl=300)


def answer(challenge: str, password: str = "pw", method: str = "POST") -> str:
    return authorization(challenge, "phone", password, method, "/acs")


def check(header: str, password: str = "pw", *, tls: bool = False, auth: Authenticator = AUTH) -> str:
    creds = parse_authorization(header.encode())
    assert creds is not None
    return auth.check(creds, password, b"POST", tls=tls)


def test_digest_with_qop_auth() -> None:
    (challenge,) = AUTH.challenges()
    header = answer(challenge.decode())
    assert "qop=auth" in header
    assert check(header) == "ok"
    assert check(header, password="other") == "denied"


def test_digest_without_qop_rfc_2069() -> None:
    challenge = AUTH.challenges()[0].decode().replace('qop="auth,auth-int", ', "")
    assert check(answer(challenge)) == "ok"


def test_digest_sha256_and_wrong_method() -> None:
    challenge = AUTH.challenges()[0].decode().replace("algorithm=MD5", "algorithm=SHA-256")
    assert check(answer(challenge)) == "ok"
    assert check(answer(challenge, method="GET")) == "denied"


def test_old_nonce_is_stale_and_a_forged_one_denied() -> None:
    old = AUTH.nonce(now=1_000_000)
    assert AUTH.nonce_state(old) == "stale"
    stale_challenge = f'Digest realm="acs", qop="auth", nonce="{old}"'
    assert check(answer(stale_challenge)) == "stale"
    other_server = Authenticator(realm="acs", secret=b"x" * 32)
    assert check(answer(other_server.challenges()[0].decode())) == "denied"
    assert check(answer('Digest realm="acs", qop="auth", nonce="abc.def"')) == "denied"
    wrong_realm = AUTH.challenges()[0].decode().replace('realm="acs"', 'realm="other"')
    assert check(answer(wrong_realm)) == "denied"
    assert "stale=true" in AUTH.challenges(stale=True)[0].decode()


def test_nonces_from_one_worker_are_good_on_another_sharing_the_secret() -> None:
    twin = Authenticator(realm="acs", secret=b"k" * 32)
    assert check(answer(AUTH.challenges()[0].decode()), auth=twin) == "ok"


def test_basic_only_over_tls_unless_allowed() -> None:
    header = "Basic " + base64.b64encode(b"phone:pw").decode()
    assert check(header) == "denied"
    assert check(header, tls=True) == "ok"
    assert check(header, password="x", tls=True) == "denied"
    assert check(header, auth=Authenticator(secret=b"k" * 32, allow_basic=True)) == "ok"
    assert [c.split()[0] for c in AUTH.challenges(tls=True)] == [b"Digest", b"Basic"]


def test_unreadable_authorization_headers() -> None:
    assert parse_authorization(None) is None
    assert parse_authorization(b"Bearer abc") is None
    assert parse_authorization(b"Basic !!!notbase64") is None
    assert parse_authorization(b"Basic " + base64.b64encode(b"no-colon")) is None
    assert parse_authorization(b'Digest realm="acs"') is None  # no username/response
    creds = parse_authorization(b'Digest username="a\\"b", realm="acs", response="00", nonce=x')
    assert creds is not None
    assert creds.username == 'a"b'


@given(st.binary(max_size=300))
def test_any_header_is_refused_or_read_never_crashes(header: bytes) -> None:
    creds = parse_authorization(header)
    if creds is not None:
        assert AUTH.check(creds, "pw", b"POST", tls=False) in ("ok", "stale", "denied")
