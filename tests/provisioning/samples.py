"""Cisco MPP sample profiles and encrypted test vectors: ``tests/data/cisco-mpp-samples`` (its SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "cisco-mpp-samples"
#: the passphrase the AES-256-CBC vectors were made with (`openssl enc -k`)
VECTOR_PASSPHRASE = "SecretPhrase1234"
#: the RFC 8188 vectors' input keying material and salt
VECTOR_IKM = bytes(range(16))
VECTOR_SALT = bytes(range(0xA0, 0xB0))


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()
