"""Profile encryption as Cisco MPP phones decrypt it: ``openssl enc -aes-256-cbc`` and RFC 8188.

AES-256-CBC (``Profile_Rule [--key PHRASE] ...``): the phone expects exactly what
``openssl enc -e -aes-256-cbc -k PHRASE`` writes: ``Salted__``, an 8-byte random
salt, then the ciphertext with PKCS#7 padding. Key and IV come from OpenSSL's
``EVP_BytesToKey`` with one iteration and no PBKDF2 (``openssl enc`` without
``-pbkdf2``, as in Cisco's command): ``D1 = H(pass || salt)``,
``Di = H(D(i-1) || pass || salt)``, key = the first 32 bytes, IV = the next 16.
The digest ``H`` is what ``-md`` names; OpenSSL's default changed from MD5 to
SHA-256 in 1.1.0, and Cisco documents firmware "tested against openssl-0.9.7c"
(MD5) and later "openssl-1.1.1d" (SHA-256). Which one a phone wants is therefore a
setting per model and firmware (``acs.provisioning.store``); see
docs/cisco-mpp.md, "Encryption".

RFC 8188 ``aes128gcm`` (``Content-Encoding: aes128gcm``, MPP 11.2(3)+, keyed by the
phone's ``IKM_HTTP_Encrypt_Content``): header = salt (16) || record size (uint32) ||
idlen (1) || keyid, then records of AES-128-GCM. How the phone turns the IKM string
into bytes is not documented; the reference's choice, kept here, is the string's
UTF-8 bytes.

A wrong CBC key or digest is caught by the PKCS#7 padding check, which random garbage
passes about once in 256: a caller that decrypts (a report upload) also checks that it got
XML or gzip. Secrets never appear in exceptions or reprs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: the key-derivation digests ``openssl enc -md`` takes that Cisco phones may expect
DIGESTS = ("md5", "sha256")
MAGIC = b"Salted__"
#: the record size the ACS writes: one record holds any real profile
DEFAULT_RECORD_SIZE = 4096
_TAG = 16


class DecryptionError(ValueError):
    """Data that does not decrypt with the key (and digest) given: wrong key, or not encrypted so."""


def _secret(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def _check_digest(digest: str) -> None:
    if digest not in DIGESTS:
        raise ValueError(f"key-derivation digest {digest!r} is not supported; use md5 or sha256")


def evp_bytes_to_key(passphrase: str | bytes, salt: bytes, digest: str = "sha256") -> tuple[bytes, bytes]:
    """OpenSSL's ``EVP_BytesToKey`` (one iteration) for AES-256-CBC: (32-byte key, 16-byte IV)."""
    _check_digest(digest)
    secret = _secret(passphrase)
    derived, block = b"", b""
    while len(derived) < 48:
        block = hashlib.new(digest, block + secret + salt).digest()
        derived += block
    return derived[:32], derived[32:48]


def openssl_encrypt(
    data: bytes, passphrase: str | bytes, digest: str = "sha256", *, salt: bytes | None = None
) -> bytes:
    """``openssl enc -e -aes-256-cbc -md DIGEST -k PASSPHRASE`` of ``data`` (a fresh salt each time)."""
    if not passphrase:
        raise ValueError("an empty passphrase encrypts nothing; set a key")
    salt = os.urandom(8) if salt is None else salt
    if len(salt) != 8:
        raise ValueError("the salt of openssl enc is 8 bytes")
    key, iv = evp_bytes_to_key(passphrase, salt, digest)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return MAGIC + salt + encryptor.update(padded) + encryptor.finalize()


def openssl_decrypt(data: bytes, passphrase: str | bytes, digest: str = "sha256") -> bytes:
    """``openssl enc -d -aes-256-cbc -md DIGEST -k PASSPHRASE``; DecryptionError when it does not fit."""
    if not data.startswith(MAGIC) or len(data) < 32 or (len(data) - 16) % 16:
        raise DecryptionError("not openssl enc output: no 'Salted__' header or a truncated body")
    key, iv = evp_bytes_to_key(passphrase, data[8:16], digest)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise DecryptionError(f"bad padding: wrong passphrase or wrong digest (tried {digest})") from None


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    # one block of HKDF-Expand (RFC 5869) is enough for 16 and 12 bytes
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:length]


def _aes128gcm_keys(ikm: bytes, salt: bytes) -> tuple[bytes, bytes]:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()  # HKDF-Extract
    cek = _hkdf_expand(prk, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = _hkdf_expand(prk, b"Content-Encoding: nonce\x00", 12)
    return cek, nonce


def _nonce(base: bytes, counter: int) -> bytes:
    return (int.from_bytes(base, "big") ^ counter).to_bytes(12, "big")


def aes128gcm_encrypt(
    data: bytes,
    key: str | bytes,
    *,
    salt: bytes | None = None,
    record_size: int = DEFAULT_RECORD_SIZE,
    keyid: bytes = b"",
) -> bytes:
    """RFC 8188 ``aes128gcm`` content encoding of ``data`` with input keying material ``key``."""
    ikm = _secret(key)
    if not ikm:
        raise ValueError("an empty key encrypts nothing; set a key")
    if record_size < 18 or record_size >= 2**32:
        raise ValueError("record size must be at least 18 and below 2**32")
    if len(keyid) > 255:
        raise ValueError("keyid is at most 255 bytes")
    salt = os.urandom(16) if salt is None else salt
    if len(salt) != 16:
        raise ValueError("the salt of aes128gcm is 16 bytes")
    cek, base = _aes128gcm_keys(ikm, salt)
    aead = AESGCM(cek)
    chunk = record_size - _TAG - 1  # plaintext per record, before its delimiter
    out = [salt, struct.pack("!IB", record_size, len(keyid)), keyid]
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    for counter, piece in enumerate(pieces):
        delimiter = b"\x02" if counter == len(pieces) - 1 else b"\x01"
        out.append(aead.encrypt(_nonce(base, counter), piece + delimiter, None))
    return b"".join(out)


def aes128gcm_decrypt(data: bytes, key: str | bytes) -> bytes:
    """Decode an RFC 8188 ``aes128gcm`` body; DecryptionError for a wrong key or a damaged body."""
    from cryptography.exceptions import InvalidTag

    if len(data) < 21:
        raise DecryptionError("too short for an aes128gcm body (header is 21 bytes at least)")
    salt, (record_size, idlen) = data[:16], struct.unpack("!IB", data[16:21])
    start = 21 + idlen
    if record_size < 18:
        raise DecryptionError(f"record size {record_size} in the header is below 18")
    cek, base = _aes128gcm_keys(_secret(key), salt)
    aead = AESGCM(cek)
    body = data[start:]
    records = [body[i : i + record_size] for i in range(0, len(body), record_size)]
    if not records:
        # RFC 8188 ends every body with a final record, even for empty content
        raise DecryptionError("no records after the aes128gcm header: truncated body")
    out = []
    for counter, record in enumerate(records):
        try:
            plain = aead.decrypt(_nonce(base, counter), record, None)
        except InvalidTag:
            raise DecryptionError(
                f"record {counter} does not authenticate: wrong key or damaged body"
            ) from None
        stripped = plain.rstrip(b"\x00")
        last = counter == len(records) - 1
        if not stripped or stripped[-1:] != (b"\x02" if last else b"\x01"):
            raise DecryptionError(f"record {counter} has a wrong delimiter: truncated or reordered body")
        out.append(stripped[:-1])
    return b"".join(out)
