"""The reference's Cisco MPP sample profiles and encrypted test vectors (``../shared/reference``)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "cisco-mpp-samples"
#: the passphrase the reference's AES-256-CBC vectors were made with (`openssl enc -k`)
VECTOR_PASSPHRASE = "SecretPhrase1234"
#: the RFC 8188 vectors' input keying material and salt
VECTOR_IKM = bytes(range(16))
VECTOR_SALT = bytes(range(0xA0, 0xB0))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
