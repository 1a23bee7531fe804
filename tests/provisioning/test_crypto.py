"""Profile encryption, checked against the real ``openssl`` command, the reference's vectors and http_ece."""

from __future__ import annotations

import subprocess

import http_ece
import pytest

from acs.provisioning import crypto
from tests.provisioning.samples import VECTOR_IKM, VECTOR_PASSPHRASE, VECTOR_SALT, sample

PLAIN = sample("minimal-profile.xml")


def openssl_decrypt(data: bytes, passphrase: str, digest: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", "enc", "-d", "-aes-256-cbc", "-md", digest, "-pass", f"pass:{passphrase}"],
        input=data,
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("digest", crypto.DIGESTS)
def test_openssl_decrypts_what_the_acs_encrypts(digest):
    encrypted = crypto.openssl_encrypt(PLAIN, "pass phrase 1234", digest)
    assert encrypted.startswith(b"Salted__")
    done = openssl_decrypt(encrypted, "pass phrase 1234", digest)
    assert done.returncode == 0, done.stderr
    assert done.stdout == PLAIN
    assert crypto.openssl_encrypt(PLAIN, "pass phrase 1234", digest) != encrypted  # a fresh salt each time


@pytest.mark.parametrize("digest", crypto.DIGESTS)
def test_the_wrong_passphrase_or_digest_fails_in_openssl_and_here(digest):
    # A wrong key shows as bad PKCS#7 padding, except once in ~256 salts where the garbage ends in
    # a valid pad: a fixed salt keeps the test deterministic (callers check what they decrypted).
    encrypted = crypto.openssl_encrypt(PLAIN, "right", digest, salt=b"\x00" * 8)
    wrong = openssl_decrypt(encrypted, "wrong", digest)
    assert wrong.returncode != 0 or wrong.stdout != PLAIN
    with pytest.raises(crypto.DecryptionError, match="wrong passphrase or wrong digest"):
        crypto.openssl_decrypt(encrypted, "wrong", digest)
    other = "md5" if digest == "sha256" else "sha256"
    with pytest.raises(crypto.DecryptionError):
        crypto.openssl_decrypt(encrypted, "right", other)


@pytest.mark.parametrize(
    ("name", "digest"),
    [("minimal-profile.aes256cbc-md5.cfg", "md5"), ("minimal-profile.aes256cbc-sha256.cfg", "sha256")],
)
def test_the_reference_vectors_made_by_openssl_decrypt_and_re_encrypt_byte_for_byte(name, digest):
    vector = sample(name)
    assert crypto.openssl_decrypt(vector, VECTOR_PASSPHRASE, digest) == PLAIN
    assert crypto.openssl_encrypt(PLAIN, VECTOR_PASSPHRASE, digest, salt=vector[8:16]) == vector


@pytest.mark.parametrize("size", [0, 1, 4078, 4079, 4080, 20000])
def test_aes128gcm_is_read_by_an_independent_rfc8188_implementation(size):
    data = bytes(i % 251 for i in range(size))
    body = crypto.aes128gcm_encrypt(data, "ikm-of-the-phone")
    assert http_ece.decrypt(body, key=b"ikm-of-the-phone", version="aes128gcm") == data
    assert crypto.aes128gcm_decrypt(body, "ikm-of-the-phone") == data
    # and the other way round (http_ece writes no record at all for empty content, which RFC 8188
    # does not allow: every body ends with a final record)
    if not data:
        return
    theirs = http_ece.encrypt(data, salt=None, key=b"ikm-of-the-phone", version="aes128gcm", rs=100)
    assert crypto.aes128gcm_decrypt(theirs, "ikm-of-the-phone") == data


@pytest.mark.parametrize(
    ("name", "record_size"), [("minimal-profile.aes128gcm", 4096), ("minimal-profile.rs64.aes128gcm", 64)]
)
def test_aes128gcm_matches_the_reference_vectors(name, record_size):
    vector = sample(name)
    assert crypto.aes128gcm_decrypt(vector, VECTOR_IKM) == PLAIN
    assert crypto.aes128gcm_encrypt(PLAIN, VECTOR_IKM, salt=VECTOR_SALT, record_size=record_size) == vector


def test_aes128gcm_with_the_wrong_key_or_a_cut_body_fails_clearly():
    body = crypto.aes128gcm_encrypt(PLAIN * 40, "right", record_size=256)
    with pytest.raises(crypto.DecryptionError, match="wrong key"):
        crypto.aes128gcm_decrypt(body, "wrong")
    with pytest.raises(crypto.DecryptionError, match="truncated"):
        crypto.aes128gcm_decrypt(body[: 21 + 3 * 256], "right")  # three whole records, no final one
    with pytest.raises(Exception, match=r"(?i)tag|decrypt"):
        http_ece.decrypt(body, key=b"wrong", version="aes128gcm")


def test_keys_never_show_in_errors():
    encrypted = crypto.openssl_encrypt(PLAIN, "TopSecret-99", "sha256")
    with pytest.raises(crypto.DecryptionError) as caught:
        crypto.openssl_decrypt(encrypted, "TopSecret-98", "sha256")
    assert "TopSecret" not in str(caught.value)
    with pytest.raises(ValueError, match="empty"):
        crypto.openssl_encrypt(PLAIN, "", "sha256")
