"""The Ed25519 keys of the access tokens: auth signs with a private key, the others verify.

Only auth holds the private key (JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE, PKCS#8 PEM); every
service verifies with public keys (JWT_PUBLIC_KEY or JWT_PUBLIC_KEY_FILE), so a compromised
service can read tokens but not mint them. The verification text is one or more PEM blocks, each
a public key (`BEGIN PUBLIC KEY`) or an X.509 certificate (`BEGIN CERTIFICATE`) of which only the
public key is used: the chart generates the key pair with Helm, which can make a certificate
from a private key but cannot print its public key. Several blocks let a new key be published
before auth signs with it (rotation without refusing the tokens already issued).

Every key is named by its RFC 7638 JWK thumbprint, which tokens carry as `kid`, so a verifier
picks the key a token names and refuses a token whose key it does not know.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "EdDSA"
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


class InvalidKeyError(ValueError):
    """A key setting holds something other than the Ed25519 PEM it should."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 thumbprint of the key's JWK: the `kid` of the tokens it verifies."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True)
class SigningKey:
    """Auth's private key and its `kid`."""

    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyError(f"not a PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidKeyError(f"the private key is {type(key).__name__}, not Ed25519")
        return cls(key, key_id(key.public_key()))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def verifying_keys(text: str) -> dict[str, Ed25519PublicKey]:
    """The public keys of every PEM block of `text` (public keys or certificates), by kid."""
    keys: dict[str, Ed25519PublicKey] = {}
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise InvalidKeyError("no PEM block (BEGIN PUBLIC KEY or BEGIN CERTIFICATE) found")
    for block in blocks:
        key = _public_key(block.group(1), block.group(0).encode())
        keys[key_id(key)] = key
    return keys


def read_setting(value: str | None, file: Path | None, name: str) -> str | None:
    """A key given either inline (`name`) or as a file (`name`_FILE); both at once is an error."""
    if value and file is not None:
        raise InvalidKeyError(f"set {name} or {name}_FILE, not both")
    if file is None:
        return value or None
    try:
        return file.read_text()
    except OSError as exc:
        raise InvalidKeyError(f"{name}_FILE cannot be read: {exc}") from exc


def generate_pem_pair() -> tuple[str, str]:
    """A new key pair as (PKCS#8 private PEM, public PEM): the devstack's and the tests'."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem.decode(), public_pem.decode()


def _public_key(kind: str, pem: bytes) -> Ed25519PublicKey:
    if kind not in ("CERTIFICATE", "PUBLIC KEY"):
        raise InvalidKeyError(f"a {kind} block is not a public key or a certificate")
    try:
        key: object
        if kind == "CERTIFICATE":
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(f"unreadable {kind} block ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidKeyError(f"the {kind} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
