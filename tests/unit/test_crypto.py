"""Credentials at rest: Fernet round trip, key rotation, clear errors."""

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bridge.crypto import SecretBox
from bridge.errors import ConfigurationError, CryptoError


def test_round_trip_hides_plaintext() -> None:
    box = SecretBox(SecretStr(Fernet.generate_key().decode()))
    token = box.encrypt_json({"api_key": "wsp_abc"})
    assert "wsp_abc" not in token
    assert box.decrypt_json(token) == {"api_key": "wsp_abc"}


def test_rotation_first_key_encrypts_all_decrypt() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox(SecretStr(old)).encrypt("s3cret")
    ring = SecretBox(SecretStr(f"{new},{old}"))
    assert ring.decrypt(token) == "s3cret"
    rotated = ring.rotate(token)
    assert SecretBox(SecretStr(new)).decrypt(rotated) == "s3cret"


def test_wrong_key_is_a_crypto_error_without_plaintext() -> None:
    token = SecretBox(SecretStr(Fernet.generate_key().decode())).encrypt("s3cret")
    other = SecretBox(SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(CryptoError) as info:
        other.decrypt(token)
    assert "s3cret" not in str(info.value)
    with pytest.raises(CryptoError):
        other.rotate(token)


@pytest.mark.parametrize("key", ["", "not-a-key", " , "])
def test_bad_key_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ConfigurationError, match="BRIDGE_SECRET_KEY"):
        SecretBox(SecretStr(key))


def test_non_object_json_is_refused() -> None:
    box = SecretBox(SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(CryptoError):
        box.decrypt_json(box.encrypt("[1, 2]"))
