"""WeCom callback crypto: the message signature and the AES envelope (消息加解密).

Every callback carries ``msg_signature = sha1(sorted(token, timestamp, nonce, encrypted))`` and an
AES-256-CBC ciphertext (key = base64(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7
padding to 32-byte blocks). The plaintext is ``16 random bytes | 4-byte big-endian length | msg |
receive id``; for a self-built app the receive id is the CorpID.

The envelope is sealed and opened by wechatpy's enterprise crypto (``wechatpy.enterprise.crypto``,
on the ``cryptography`` backend); this module adds what the callback endpoint needs around it: the
signature is always checked first and compared in constant time, malformed ciphertexts are refused
before they reach the cipher, and every failure is one of the ``CryptoError`` classes below.
``encrypt`` exists for the fake WeCom server, the tests and the benchmark.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException

_RANDOM_PREFIX = 16


class CryptoError(Exception):
    """Base class: the callback cannot be trusted or read."""


class SignatureMismatch(CryptoError):
    """The signature does not match: not from WeCom, or a different token."""


class ReceiverMismatch(CryptoError):
    """Decrypted fine, but addressed to another corp (receive id is not our CorpID)."""


class DecryptionFailed(CryptoError):
    """The ciphertext does not decrypt to a well-formed envelope (wrong EncodingAESKey?)."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    parts = sorted((token, timestamp, nonce, encrypted))
    return hashlib.sha1("".join(parts).encode()).hexdigest()


def aes_key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("EncodingAESKey is not valid base64") from exc
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes (43 characters)")
    return key


class _Envelope(PrpCrypto):  # type: ignore[misc]  # wechatpy ships no type information
    """wechatpy's envelope, with the random prefix from ``os.urandom`` (wechatpy draws it with
    ``random.sample``) or, for reproducible tests, a given one."""

    def __init__(self, key: bytes, random_prefix: bytes | None = None) -> None:
        super().__init__(key)
        self._prefix = random_prefix

    def get_random_string(self) -> bytes:
        return self._prefix if self._prefix is not None else os.urandom(_RANDOM_PREFIX)


class WeComCrypto:
    """Verify, decrypt and (for fakes and tests) encrypt WeCom callback payloads."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id
        self._key = aes_key(encoding_aes_key)
        self._envelope = _Envelope(self._key)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypted)
        # Bytes, not str: compare_digest refuses str with non-ASCII characters (a TypeError, not a 403).
        if not hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode()):
            raise SignatureMismatch("msg_signature does not match")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside an envelope (after checking it is addressed to us)."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailed("ciphertext is not valid base64") from exc
        if not data or len(data) % 16:
            raise DecryptionFailed(f"ciphertext length {len(data)} is not a multiple of the AES block size")
        try:
            message: str = self._envelope.decrypt(encrypted, self.receive_id)
        except InvalidCorpIdException as exc:
            raise ReceiverMismatch("receive id in the envelope is not this corp id") from exc
        except (ValueError, IndexError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
            raise DecryptionFailed(f"not a WeCom envelope (is wecom.encoding_aes_key right?): {exc}") from exc
        return message.encode()

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt(self, message: bytes, *, random_prefix: bytes | None = None) -> str:
        if random_prefix is not None and len(random_prefix) != _RANDOM_PREFIX:
            raise ValueError("random prefix must be 16 bytes")
        envelope = self._envelope if random_prefix is None else _Envelope(self._key, random_prefix)
        encrypted: bytes = envelope.encrypt(message, self.receive_id)
        return encrypted.decode()

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)
