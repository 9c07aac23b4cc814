"""Encryption of credentials and order secrets at rest (Fernet, key rotation).

`BRIDGE_SECRET_KEY` is a Fernet key or a comma-separated list of them during rotation:
the first encrypts, every one decrypts. Nothing here logs or echoes plaintext.
"""

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from bridge.errors import ConfigurationError, CryptoError


class SecretBox:
    """Encrypt and decrypt small secrets with the configured Fernet key ring."""

    def __init__(self, secret_key: SecretStr) -> None:
        raw = [k.strip() for k in secret_key.get_secret_value().split(",") if k.strip()]
        if not raw:
            msg = "BRIDGE_SECRET_KEY: empty"
            raise ConfigurationError(msg)
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in raw])
        except ValueError:
            msg = "BRIDGE_SECRET_KEY: not a Fernet key (urlsafe base64 of 32 bytes)"
            raise ConfigurationError(msg) from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            msg = "stored secret cannot be decrypted with any configured key"
            raise CryptoError(msg) from None

    def encrypt_json(self, value: dict[str, Any]) -> str:
        return self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        value = json.loads(self.decrypt(token))
        if not isinstance(value, dict):
            msg = "stored secret is not a JSON object"
            raise CryptoError(msg)
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the first (newest) key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            msg = "stored secret cannot be decrypted with any configured key"
            raise CryptoError(msg) from None
