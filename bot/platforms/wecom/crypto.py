"""WeCom callback crypto: the message signature and the AES envelope (消息加解密).

Every callback carries ``msg_signature = sha1(sorted(token, timestamp, nonce, encrypted))`` and an
AES-256-CBC ciphertext (key = base64(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7
padding to 32-byte blocks). The plaintext is ``16 random bytes | 4-byte big-endian length | msg |
receive id``; for a self-built app the receive id is the CorpID.

The signature is always checked before anything is decrypted, and it is compared in constant time.
``encrypt`` exists for the fake WeCom server, the tests and the benchmark.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_SIZE = 32  # WeCom pads to 32 bytes, not to the AES block size of 16
_RANDOM_PREFIX = 16
_LENGTH_FIELD = 4


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


class WeComCrypto:
    """Verify, decrypt and (for fakes and tests) encrypt WeCom callback payloads."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id
        self._key = aes_key(encoding_aes_key)
        self._cipher = Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

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
        decryptor = self._cipher.decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        pad = padded[-1]
        if not 1 <= pad <= BLOCK_SIZE or padded[-pad:] != bytes([pad]) * pad:
            raise DecryptionFailed("bad padding (is wecom.encoding_aes_key right?)")
        plain = padded[:-pad]
        if len(plain) < _RANDOM_PREFIX + _LENGTH_FIELD:
            raise DecryptionFailed("envelope too short")
        (length,) = struct.unpack(">I", plain[_RANDOM_PREFIX : _RANDOM_PREFIX + _LENGTH_FIELD])
        start = _RANDOM_PREFIX + _LENGTH_FIELD
        if start + length > len(plain):
            raise DecryptionFailed("declared message length exceeds the envelope")
        message, receive_id = plain[start : start + length], plain[start + length :]
        if not hmac.compare_digest(receive_id, self.receive_id.encode()):
            raise ReceiverMismatch("receive id in the envelope is not this corp id")
        return message

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> bytes:
        self.verify(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt(self, message: bytes, *, random_prefix: bytes | None = None) -> str:
        prefix = random_prefix if random_prefix is not None else os.urandom(_RANDOM_PREFIX)
        if len(prefix) != _RANDOM_PREFIX:
            raise ValueError("random prefix must be 16 bytes")
        plain = prefix + struct.pack(">I", len(message)) + message + self.receive_id.encode()
        pad = BLOCK_SIZE - len(plain) % BLOCK_SIZE
        encryptor = self._cipher.encryptor()
        data = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
        return base64.b64encode(data).decode()

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)
