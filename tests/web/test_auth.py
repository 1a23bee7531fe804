"""CPE authentication: Digest (RFC 7616 and RFC 2069) and Basic, with stateless nonces."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from acs.web.auth import Authenticator, DigestAuth, UnknownUsers, parse_authorization
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


def test_each_challenge_has_its_own_nonce_and_it_lives_a_minute() -> None:
    auth = Authenticator(secret=b"k" * 32)  # the default lifetime
    nonces = {auth.nonce(now=1_000_000) for _ in range(100)}
    assert len(nonces) == 100  # phones challenged in the same second never share nonce counts
    nonce = auth.nonce(now=1_000_000)
    assert auth.nonce_state(nonce, now=1_000_060) == "fresh"
    assert auth.nonce_state(nonce, now=1_000_061) == "stale"
    assert auth.nonce_expires(nonce) == 1_000_061
    assert auth.nonce_state(nonce.replace(".", ".0", 1)) == "bad"  # the random part is signed too
    assert auth.nonce_state("é" + nonce) == "bad"


def test_an_answer_is_bound_to_the_request_target_and_with_auth_int_to_the_body() -> None:
    (challenge,) = AUTH.challenges()
    header = answer(challenge.decode())  # for /acs
    creds = parse_authorization(header.encode())
    assert creds is not None and creds.nonce_count() == 1
    assert AUTH.check(creds, "pw", b"POST", tls=False, uri="/acs") == "ok"
    assert AUTH.check(creds, "pw", b"POST", tls=False, uri="/other") == "denied"
    assert AUTH.check(creds, "pw", b"POST", tls=False, uri="http://acs.example:7547/acs") == "ok"
    client = DigestAuth("phone", "pw", qop="auth-int")
    assert client.challenge([challenge.decode()])
    header = client.authorization("POST", "/acs", b"<body/>")
    assert header is not None and "qop=auth-int" in header
    creds = parse_authorization(header.encode())
    assert creds is not None
    assert AUTH.check(creds, "pw", b"POST", tls=False, uri="/acs", body=b"<body/>") == "ok"
    assert AUTH.check(creds, "pw", b"POST", tls=False, uri="/acs", body=b"<other/>") == "denied"
    assert AUTH.check(creds, "pw", b"POST", tls=False, uri="/acs") == "denied"  # no body to check
    only_auth = Authenticator(secret=b"k" * 32, qops=("auth",))
    assert only_auth.check(creds, "pw", b"POST", tls=False, body=b"<body/>") == "denied"  # not offered


def test_nonce_counts_as_the_store_compares_them() -> None:
    (challenge,) = AUTH.challenges()
    client = DigestAuth("phone", "pw")
    assert client.challenge([challenge.decode()])
    counts = [parse_authorization(client.authorization("POST", "/").encode()).nonce_count() for _ in range(3)]
    assert counts == [1, 2, 3]
    rfc_2069 = answer(challenge.decode().replace('qop="auth,auth-int", ', ""))
    assert parse_authorization(rfc_2069.encode()).nonce_count() == 0  # one request per nonce
    basic = "Basic " + base64.b64encode(b"phone:pw").decode()
    assert parse_authorization(basic.encode()).nonce_count() is None


def test_unknown_user_names_are_remembered_bounded_and_forgotten_when_credentials_change() -> None:
    now = [0.0]
    unknown = UnknownUsers(size=3, ttl=60, recheck=1, clock=lambda: now[0])
    assert "a" not in unknown and unknown.due()
    unknown.looked_up("a", False, revision=1)
    assert "a" in unknown and not unknown.due()  # just looked up
    for name in "bcd":
        unknown.looked_up(name, False, revision=1)
    assert len(unknown) == 3 and "a" not in unknown  # the oldest went
    now[0] = 1.5
    assert unknown.due() and not unknown.due()  # once per second
    unknown.looked_up("b", False, revision=2)  # credentials changed somewhere: start again
    assert len(unknown) == 1 and "c" not in unknown and "b" in unknown
    unknown.looked_up("b", True, revision=2)  # a device has it now
    assert "b" not in unknown
    unknown.looked_up("e", False, revision=2)
    now[0] = 62
    assert "e" not in unknown and len(unknown) == 0  # past its ttl
