"""Where batch files live and how: outside the web root, under generated names, encrypted.

Files are stored under ``MEDIA_ROOT/batches/<uuid hex>`` (never the client's name), encrypted
with AES-256-GCM in chunks of 64 KiB so that a large file never sits in memory: a file key is
derived per file (HKDF-SHA256 of ``BATCH_FILE_KEY`` with a random salt from the header), each
chunk's nonce is its index and the last chunk is marked in the associated data, so reordered,
altered or truncated files fail to decrypt. Raw uploads are deleted after
``BATCH_RAW_RETENTION_DAYS`` by a periodic task.
"""

from __future__ import annotations

import base64
import io
import os
import struct
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MAGIC = b"PBF1"
SALT_LEN = 16
CHUNK = 64 * 1024
_LEN = struct.Struct(">I")


class CorruptFile(Exception):
    """The stored file does not decrypt: altered, truncated or under another key."""


def storage_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "batches"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def new_name() -> str:
    return uuid.uuid4().hex


def path_for(name: str) -> Path:
    """The path of a stored name; refuses anything but a generated hex name."""
    if not name or len(name) != 32 or any(c not in "0123456789abcdef" for c in name):
        raise ValueError("not a stored batch file name")
    return storage_dir() / name


def _master_key() -> bytes:
    key = base64.b64decode(settings.BATCH_FILE_KEY)
    if len(key) != 32:
        raise ValueError("BATCH_FILE_KEY must be 32 bytes, base64-encoded")
    return key


def _file_key(salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"portal.batches.file")
    return AESGCM(hkdf.derive(_master_key()))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(index: int, final: bool) -> bytes:
    return MAGIC + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


class EncryptedWriter:
    """Write plaintext in, encrypted chunks out. ``close()`` writes the final chunk; ``discard()``
    removes the partial file. Use as a context manager (an exception discards)."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = open(path, "xb")
        os.chmod(path, 0o600)
        salt = os.urandom(SALT_LEN)
        self._aead = _file_key(salt)
        self._fh.write(MAGIC + salt)
        self._buf = bytearray()
        self._index = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._buf += data
        while len(self._buf) > CHUNK:
            self._emit(bytes(self._buf[:CHUNK]), final=False)
            del self._buf[:CHUNK]
        return len(data)

    def _emit(self, plain: bytes, *, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index), plain, _aad(self._index, final))
        self._fh.write(_LEN.pack(len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        if self.closed:
            return
        self._emit(bytes(self._buf), final=True)
        self._buf.clear()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self.closed = True

    def discard(self) -> None:
        if not self.closed:
            self._fh.close()
            self.closed = True
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> EncryptedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()


class DecryptingReader(io.RawIOBase):
    """A readable (and rewindable) stream of the plaintext of a stored file. ``plain_read`` counts
    the plaintext bytes handed out so far (for the progress bar)."""

    def __init__(self, path: Path):
        super().__init__()
        self._path = path
        self._open()

    def _open(self) -> None:
        self._fh = open(self._path, "rb")
        head = self._fh.read(len(MAGIC) + SALT_LEN)
        if len(head) != len(MAGIC) + SALT_LEN or not head.startswith(MAGIC):
            self._fh.close()
            raise CorruptFile("bad header")
        self._aead = _file_key(head[len(MAGIC) :])
        self._index = 0
        self._pending = b""
        self._done = False
        self.plain_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if offset != 0 or whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only a rewind to the start is supported")
        self._fh.close()
        self._open()
        return 0

    def tell(self) -> int:
        return self.plain_read

    def _next_chunk(self) -> bytes:
        size_bytes = self._fh.read(_LEN.size)
        if len(size_bytes) != _LEN.size:
            raise CorruptFile("truncated")
        (size,) = _LEN.unpack(size_bytes)
        if size > CHUNK + 16:
            raise CorruptFile("chunk too large")
        sealed = self._fh.read(size)
        if len(sealed) != size:
            raise CorruptFile("truncated")
        for final in (False, True):
            try:
                plain = self._aead.decrypt(_nonce(self._index), sealed, _aad(self._index, final))
            except InvalidTag:
                continue
            self._index += 1
            if final:
                if self._fh.read(1):
                    raise CorruptFile("data after the final chunk")
                self._done = True
            return plain
        raise CorruptFile("chunk does not authenticate")

    def readinto(self, buffer) -> int:
        while not self._pending and not self._done:
            self._pending = self._next_chunk()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.plain_read += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def open_plaintext(name: str) -> io.BufferedReader:
    """The decrypted content of stored file ``name`` as a buffered binary stream."""
    return io.BufferedReader(DecryptingReader(path_for(name)), buffer_size=CHUNK)


def writer(name: str) -> EncryptedWriter:
    return EncryptedWriter(path_for(name))


def delete(name: str) -> None:
    if name:
        path_for(name).unlink(missing_ok=True)


def exists(name: str) -> bool:
    return bool(name) and path_for(name).exists()
