"""Signed export manifests for evidence.

Ed25519 rather than HMAC: a court or defence expert must be able to check a
manifest without holding a secret that could also forge one. The private key
is generated once into data_dir (mode 0600); the public key is published at
GET /api/evidence/signing-key and inside every manifest.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.evidence import canonical_json

KEY_FILE = "evidence_signing_ed25519.pem"


def load_or_create_key(data_dir: Path) -> Ed25519PrivateKey:
    path = data_dir / KEY_FILE
    if path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    key = Ed25519PrivateKey.generate()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(key: Ed25519PrivateKey, manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest plus `signature` over its canonical JSON (sorted keys, no spaces)."""
    sig = key.sign(canonical_json(manifest))
    return {**manifest, "signature": {"algorithm": "Ed25519", "public_key": public_key_b64(key), "value": base64.b64encode(sig).decode(),
                                      "signed": "canonical JSON of the manifest without 'signature' (sorted keys, separators ',' ':', UTF-8)"}}


def check(signed: dict[str, Any], public_key: str | None = None) -> bool:
    body = {k: v for k, v in signed.items() if k != "signature"}
    sig = signed.get("signature") or {}
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key or sig["public_key"]))
        pub.verify(base64.b64decode(sig["value"]), canonical_json(body))
    except (InvalidSignature, KeyError, ValueError):
        return False
    return True
