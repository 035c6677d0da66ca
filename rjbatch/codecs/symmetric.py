"""The Symmetric Encryption file format (``.enc``), byte-compatible with Ruby's gem.

A file is a header (magic ``@EnC``, key version, flags, the per-file IV in clear, the per-file
key encrypted with the configured "master" cipher) followed by AES-CBC ciphertext with PKCS#7
padding, optionally of gzip-compressed plaintext. See docs/codecs.md for what a wrong key or a
tampered file looks like, and what cannot be detected (CBC has no MAC).

Keys: a process-wide list of ``Cipher`` s. The first encrypts; each file is decrypted by the
cipher whose version is in its header. Keys never appear in ``repr`` or in error messages.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher as _CryptoCipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes

from .blocks import BlockReader, Readable
from .errors import DecryptionError, EncryptionConfigError

log = logging.getLogger("rjbatch.codecs")

MAGIC = b"@EnC"
FLAG_COMPRESSED = 0x80
FLAG_IV = 0x40
FLAG_KEY = 0x20
FLAG_CIPHER_NAME = 0x10
FLAG_AUTH_TAG = 0x08  # Symmetric Encryption 5.0 (AES-GCM), not supported
FLAG_CHUNKED = 0x04  # Symmetric Encryption 5.0 (AES-GCM), not supported

KEY_SIZES = {"aes-128-cbc": 16, "aes-192-cbc": 24, "aes-256-cbc": 32}
BLOCK = 16
_READ_SIZE = 1 << 18
_MAX_HEADER = 3 * (2 + 0xFFFF) + 16  # three length-prefixed fields at most

CONFIG_ENV_VAR = "RJBATCH_ENCRYPTION_CONFIG"
ENVIRONMENT_ENV_VARS = ("RJBATCH_ENCRYPTION_ENV", "RAILS_ENV", "RACK_ENV")


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode("ascii")  # YAML turned a digits-only key into a number
    raise EncryptionConfigError(f"{what} must be bytes or a string, not {type(value).__name__}")


@dataclass(frozen=True, repr=False, eq=False)
class Cipher:
    """One configured key: AES-CBC key + IV + the version byte that names it in file headers."""

    key: bytes
    iv: bytes
    version: int = 0
    cipher_name: str = "aes-256-cbc"

    def __post_init__(self) -> None:
        name = str(self.cipher_name).lower()
        object.__setattr__(self, "cipher_name", name)
        object.__setattr__(self, "key", _as_bytes(self.key, "key"))
        object.__setattr__(self, "iv", _as_bytes(self.iv, "iv"))
        if name not in KEY_SIZES:
            raise EncryptionConfigError(
                f"cipher {name!r} is not supported (supported: {', '.join(sorted(KEY_SIZES))})"
            )
        if len(self.key) != KEY_SIZES[name]:
            raise EncryptionConfigError(
                f"{name} needs a {KEY_SIZES[name]}-byte key, got {len(self.key)} bytes"
                f" (version {self.version})"
            )
        if len(self.iv) != BLOCK:
            raise EncryptionConfigError(
                f"{name} needs a 16-byte iv, got {len(self.iv)} bytes (version {self.version})"
            )
        if not isinstance(self.version, int) or not 0 <= self.version <= 255:
            raise EncryptionConfigError(f"cipher version must be 0..255, got {self.version!r}")

    def __repr__(self) -> str:  # never show the key
        return f"Cipher(version={self.version}, cipher_name={self.cipher_name!r}, key=<hidden>)"

    def encrypt(self, data: bytes, iv: bytes | None = None) -> bytes:
        """AES-CBC + PKCS#7 with this key (the master IV unless one is given): the key-field primitive."""
        return _cbc_encrypt(self.key, iv or self.iv, data)

    def decrypt(self, data: bytes, iv: bytes | None = None) -> bytes:
        """Inverse of ``encrypt``; raises ``ValueError`` on bad padding (the caller words it)."""
        return _cbc_decrypt(self.key, iv or self.iv, data)


def _pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes((n,)) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1] if data else 0
    if not 1 <= n <= BLOCK or data[-n:] != bytes((n,)) * n:
        raise ValueError("bad PKCS#7 padding")
    return data[:-n]


def _cbc_encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    enc = _CryptoCipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(_pad(data)) + enc.finalize()


def _cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    if not data or len(data) % BLOCK:
        raise ValueError("not a whole number of blocks")
    dec = _CryptoCipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return _unpad(dec.update(data) + dec.finalize())


# --------------------------------------------------------------------------- cipher registry

_lock = threading.Lock()
_ciphers: tuple[Cipher, ...] | None = None
_env_cache: dict[tuple[str, str, float], tuple[Cipher, ...]] = {}


def set_ciphers(ciphers: Iterable[Cipher] | None) -> None:
    """Set the process-wide keys: the first encrypts, all decrypt. ``None`` clears them."""
    global _ciphers
    if ciphers is None:
        with _lock:
            _ciphers = None
        return
    items = tuple(ciphers)
    if not items:
        raise EncryptionConfigError("set_ciphers() needs at least one Cipher")
    for c in items:
        if not isinstance(c, Cipher):
            raise EncryptionConfigError(f"set_ciphers() takes Cipher objects, not {type(c).__name__}")
    with _lock:
        _ciphers = items
    log.debug("encryption keys set: versions %s", [c.version for c in items])


def get_ciphers() -> list[Cipher]:
    """The configured keys; falls back to the file named by ``RJBATCH_ENCRYPTION_CONFIG``."""
    with _lock:
        if _ciphers is not None:
            return list(_ciphers)
    path = os.environ.get(CONFIG_ENV_VAR)
    if not path:
        raise EncryptionConfigError(
            "no encryption keys configured: call set_ciphers([...]) "
            "(rjbatch.configure(ciphers=...)) or set RJBATCH_ENCRYPTION_CONFIG to a "
            "Symmetric Encryption YAML file"
        )
    env = _default_environment()
    try:
        mtime = os.stat(path).st_mtime
    except OSError as exc:
        raise EncryptionConfigError(
            f"{CONFIG_ENV_VAR} names {path!r}, which cannot be read: {exc.strerror}"
        ) from None
    cache_key = (path, env, mtime)
    with _lock:
        cached = _env_cache.get(cache_key)
    if cached is None:
        cached = tuple(load_encryption_config(path, env))
        with _lock:
            _env_cache[cache_key] = cached
    return list(cached)


def primary_cipher() -> Cipher:
    """The cipher that encrypts new files."""
    return get_ciphers()[0]


def cipher_for_version(version: int, ciphers: list[Cipher] | None = None) -> Cipher:
    """Ruby's rule: the cipher with that version; version 0 falls back to the primary."""
    ciphers = ciphers if ciphers is not None else get_ciphers()
    for c in ciphers:
        if c.version == version:
            return c
    if version == 0:
        return ciphers[0]
    raise DecryptionError(
        f"no key with version {version} is configured (configured versions: "
        f"{', '.join(str(c.version) for c in ciphers)})"
    )


# --------------------------------------------------------------------------- header


@dataclass
class Header:
    """A parsed ``@EnC`` header; ``encrypted_key`` is still encrypted with the master cipher."""

    version: int
    flags: int
    iv: bytes | None = None
    encrypted_key: bytes | None = None
    cipher_name: str | None = None

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED)


class _Incomplete(Exception):
    pass


def parse_header(buf: bytes) -> tuple[Header, int] | None:
    """Parse a header at the start of ``buf``: ``(header, length)``, or None when there is none.

    Raises ``_Incomplete`` when ``buf`` holds only part of a header.
    """
    if len(buf) < 6 or not buf.startswith(MAGIC):
        if len(buf) < 6 and MAGIC.startswith(buf[:4]):
            raise _Incomplete
        return None
    version, flags = buf[4], buf[5]
    pos = 6

    def field() -> bytes:
        nonlocal pos
        if len(buf) < pos + 2:
            raise _Incomplete
        (n,) = struct.unpack_from("<H", buf, pos)
        if len(buf) < pos + 2 + n:
            raise _Incomplete
        value = bytes(buf[pos + 2 : pos + 2 + n])
        pos += 2 + n
        return value

    header = Header(version=version, flags=flags)
    if flags & FLAG_IV:
        header.iv = field()
    if flags & FLAG_KEY:
        header.encrypted_key = field()
    if flags & FLAG_CIPHER_NAME:
        header.cipher_name = field().decode("ascii", "replace")
    return header, pos


def build_header(version: int, *, compressed: bool, iv: bytes, encrypted_key: bytes) -> bytes:
    """The header Ruby writes by default: flags 0x60 (or 0xE0 when compressed)."""
    flags = FLAG_IV | FLAG_KEY | (FLAG_COMPRESSED if compressed else 0)
    return (
        MAGIC
        + bytes((version, flags))
        + struct.pack("<H", len(iv))
        + iv
        + struct.pack("<H", len(encrypted_key))
        + encrypted_key
    )


def _decrypt_key_field(
    field: bytes, master: Cipher, ciphers: list[Cipher], file_name: str | None
) -> bytes:
    iv = master.iv
    cipher = master
    if field.startswith(MAGIC):  # randomize_iv: the key field is itself a small @EnC blob
        try:
            parsed = parse_header(field)
        except _Incomplete:
            parsed = None
        if parsed is None:
            raise DecryptionError("the encrypted key field has a damaged header", file_name=file_name)
        nested, n = parsed
        cipher = cipher_for_version(nested.version, ciphers)
        iv = nested.iv or cipher.iv
        field = field[n:]
    try:
        return cipher.decrypt(field, iv)
    except ValueError:
        raise DecryptionError(
            f"the file key cannot be decrypted with key version {cipher.version} "
            "(wrong key, or the header was tampered with)",
            file_name=file_name,
        ) from None


# --------------------------------------------------------------------------- reader / writer


_BAD_PAD = "bad padding at the end of the ciphertext (wrong key, tampered with, or cut short)"


def _resolve_header(
    buf: bytes, ciphers: list[Cipher], file_name: str | None
) -> tuple[bytes, bytes, bool, int, Header | None]:
    """(data key, IV, compressed, header length, header) for the file starting with ``buf``.

    Raises ``_Incomplete`` when ``buf`` holds only part of the header.
    """
    if not buf:
        raise _Incomplete
    parsed = parse_header(buf)
    if parsed is None:
        # No header (legacy): the whole stream is encrypted with the primary key and IV.
        master = ciphers[0]
        return master.key, master.iv, False, 0, None
    header, n = parsed
    if header.flags & (FLAG_AUTH_TAG | FLAG_CHUNKED):
        raise DecryptionError(
            "written with AES-GCM (Symmetric Encryption 5.0), which is not supported",
            file_name=file_name,
        )
    try:
        master = cipher_for_version(header.version, ciphers)
    except DecryptionError as exc:
        raise DecryptionError(exc.reason, file_name=file_name) from None
    name = (header.cipher_name or master.cipher_name).lower()
    if name not in KEY_SIZES:
        raise DecryptionError(f"cipher {name!r} is not supported", file_name=file_name)
    if header.encrypted_key is not None:
        key = _decrypt_key_field(header.encrypted_key, master, ciphers, file_name)
    else:
        key = master.key
    if len(key) != KEY_SIZES[name]:
        raise DecryptionError(
            f"the file key decrypted with key version {master.version} has {len(key)} bytes, "
            f"{name} needs {KEY_SIZES[name]} (wrong key?)",
            file_name=file_name,
        )
    iv = header.iv if header.iv is not None else master.iv
    if len(iv) != BLOCK:
        raise DecryptionError(f"the header's IV has {len(iv)} bytes, not 16", file_name=file_name)
    return key, iv, header.compressed, n, header


class DecryptReader(BlockReader):
    """Streams the plaintext of an ``.enc`` stream (still gzip when ``.compressed`` is true).

    The header is read and the file key decrypted on construction, so a wrong key fails at
    open time. Padding is checked at EOF; a bad pad is a ``DecryptionError``.
    """

    def __init__(
        self,
        raw: Readable,
        *,
        ciphers: list[Cipher] | None = None,
        file_name: str | None = None,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._name = file_name
        ciphers = ciphers if ciphers is not None else get_ciphers()
        buf = b""
        while True:
            try:
                key, iv, self.compressed, n, self.header = _resolve_header(buf, ciphers, file_name)
                break
            except _Incomplete:
                chunk = raw.read(_READ_SIZE)
                if not chunk:
                    problem = "cut short" if buf else "missing: the file is empty"
                    raise DecryptionError(
                        f"the encryption header is {problem}", file_name=file_name
                    ) from None
                buf += chunk
                if len(buf) > _MAX_HEADER + _READ_SIZE:
                    raise DecryptionError(
                        "the encryption header is damaged", file_name=file_name
                    ) from None
        pending = buf[n:]
        self._name = file_name
        self._decryptor = _CryptoCipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpadder = padding.PKCS7(128).unpadder()
        self._pending = pending
        self._seen_ciphertext = False
        self._raw_done = False

    def _next(self) -> bytes:
        while not self._raw_done:
            if self._pending:
                chunk, self._pending = self._pending, b""
            else:
                chunk = self._raw.read(_READ_SIZE)
            if chunk:
                self._seen_ciphertext = True
                out = self._unpadder.update(self._decryptor.update(chunk))
                if out:
                    return out
                continue
            self._raw_done = True
            if not self._seen_ciphertext:
                return b""  # header only: an empty file
            try:
                tail = self._decryptor.finalize()
            except ValueError:
                raise DecryptionError(
                    "the ciphertext is cut short (not a whole number of blocks)",
                    file_name=self._name,
                ) from None
            try:
                return self._unpadder.update(tail) + self._unpadder.finalize()
            except ValueError:
                raise DecryptionError(_BAD_PAD, file_name=self._name) from None
        return b""


class EncryptWriter(io.RawIOBase):
    """Writes the ``.enc`` format: header, then CBC ciphertext of (optionally gzipped) data.

    Nothing written at all means no ciphertext block: the file is just the header, as in Ruby.
    ``close()`` writes the final block but leaves ``raw`` open (its owner closes it).
    """

    def __init__(
        self, raw: BinaryIO, *, compress: bool = True, cipher: Cipher | None = None
    ) -> None:
        super().__init__()
        master = cipher or primary_cipher()
        self._raw = raw
        key = os.urandom(KEY_SIZES[master.cipher_name])
        iv = os.urandom(BLOCK)
        raw.write(
            build_header(master.version, compressed=compress, iv=iv, encrypted_key=master.encrypt(key))
        )
        self._encryptor = _CryptoCipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._padder = padding.PKCS7(128).padder()
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31) if compress else None
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed EncryptWriter")
        n = len(b)
        if not n:
            return 0
        self._written += n
        data = self._gzip.compress(b) if self._gzip else bytes(b)
        if data:
            out = self._encryptor.update(self._padder.update(data))
            if out:
                self._raw.write(out)
        return n

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._written:
                data = self._gzip.flush() if self._gzip else b""
                out = self._encryptor.update(self._padder.update(data) + self._padder.finalize())
                self._raw.write(out + self._encryptor.finalize())
        finally:
            super().close()


def _gunzip_all(data: bytes, file_name: str | None = None) -> bytes:
    """Inflate every gzip member of ``data`` (our gz rule: read all members)."""
    out = []
    while data:
        d = zlib.decompressobj(31)
        try:
            out.append(d.decompress(data))
        except zlib.error:
            raise DecryptionError(
                "the decrypted data is not valid gzip (wrong key or tampered with)",
                file_name=file_name,
            ) from None
        if not d.eof:
            raise DecryptionError("the compressed data is cut short", file_name=file_name)
        data = d.unused_data.lstrip(b"\0")
    return b"".join(out)


def encrypt_bytes(data: bytes, compress: bool = True, *, cipher: Cipher | None = None) -> bytes:
    """A complete ``.enc`` blob (header, random key and IV) for ``data``: for encrypted slices.

    The same bytes ``EncryptWriter`` would write, made in one pass (this runs once per slice).
    """
    master = cipher or primary_cipher()
    key = os.urandom(KEY_SIZES[master.cipher_name])
    iv = os.urandom(BLOCK)
    header = build_header(master.version, compressed=compress, iv=iv, encrypted_key=master.encrypt(key))
    if not data:
        return header
    body = zlib.compress(data, 6, wbits=31) if compress else bytes(data)
    return header + _cbc_encrypt(key, iv, body)


def decrypt_bytes(data: bytes, *, ciphers: list[Cipher] | None = None) -> bytes:
    """Inverse of ``encrypt_bytes``; also reads any ``.enc`` file content written by Ruby."""
    ciphers = ciphers if ciphers is not None else get_ciphers()
    try:
        key, iv, compressed, n, _ = _resolve_header(data, ciphers, None)
    except _Incomplete:
        if not data:
            return b""
        raise DecryptionError("the encryption header is cut short") from None
    body = data[n:]
    if not body:
        return b""
    if len(body) % BLOCK:
        raise DecryptionError("the ciphertext is cut short (not a whole number of blocks)")
    try:
        plain = _cbc_decrypt(key, iv, body)
    except ValueError:
        raise DecryptionError(_BAD_PAD) from None
    return _gunzip_all(plain) if compressed else plain


# --------------------------------------------------------------------------- YAML config

_ERB_TAG = re.compile(r"<%(=|#)?(.*?)-?%>", re.S)
_ERB_ENV = re.compile(
    r"""\s*ENV(?:\[\s*(['"])(?P<a>\w+)\1\s*\]|\.fetch\(\s*(['"])(?P<b>\w+)\3\s*"""
    r"""(?:,\s*(['"])(?P<default>.*?)\5\s*)?\))\s*(?:\|\|\s*(['"])(?P<alt>.*?)\7\s*)?"""
)


def _render_erb(text: str, path: str) -> str:
    """Ruby passes the config through ERB; support the ENV look-ups configs actually use."""

    def sub(m: re.Match[str]) -> str:
        kind, body = m.group(1), m.group(2)
        if kind == "#":
            return ""
        if kind == "=":
            e = _ERB_ENV.fullmatch(body)
            if e:
                name = e.group("a") or e.group("b")
                value = os.environ.get(name)
                if value is None:
                    value = e.group("default") if e.group("default") is not None else e.group("alt")
                if value is None:
                    if e.group("b"):
                        raise EncryptionConfigError(
                            f"{path}: environment variable {name} is not set (ENV.fetch)"
                        )
                    value = ""
                return value
        raise EncryptionConfigError(
            f"{path}: unsupported ERB tag {m.group(0).strip()[:60]!r} (only ENV look-ups are supported)"
        )

    return _ERB_TAG.sub(sub, text)


def _yaml_loader() -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        raise EncryptionConfigError(
            "reading a Symmetric Encryption config needs PyYAML (pip install pyyaml)"
        ) from None

    class Loader(yaml.SafeLoader):
        pass

    def binary(loader: Any, node: Any) -> bytes:
        return base64.b64decode("".join(loader.construct_scalar(node).split()))

    Loader.add_constructor("!binary", binary)  # Psych writes binary strings as `!binary`
    def text(loader: Any, node: Any) -> str:
        return str(loader.construct_scalar(node))  # what SafeLoader does with a plain string

    Loader.add_constructor("!ruby/string:ActiveSupport::SafeBuffer", text)
    return yaml, Loader


def _symbol_keys(value: Any) -> Any:
    """Psych can write symbol keys as ``:ciphers``; treat them as plain names."""
    if isinstance(value, dict):
        return {
            (k[1:] if isinstance(k, str) and k.startswith(":") else k): _symbol_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_symbol_keys(v) for v in value]
    return value


def _default_environment() -> str:
    for var in ENVIRONMENT_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return "development"


def load_encryption_config(path: str | os.PathLike[str], environment: str | None = None) -> list[Cipher]:
    """Read the ciphers of one environment of a Ruby ``symmetric-encryption.yml``.

    Resolves literal keys, ``encrypted_key`` / ``key_filename`` / ``key_env_var`` through their
    chain of key-encrypting keys, and the deprecated ``private_rsa_key`` form. The environment
    defaults to ``RJBATCH_ENCRYPTION_ENV``, ``RAILS_ENV``, ``RACK_ENV``, then ``development``.
    Returns the ciphers; pass them to ``set_ciphers`` to use them.
    """
    path = os.fspath(path)
    environment = environment or _default_environment()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise EncryptionConfigError(f"{path}: cannot read encryption config: {exc.strerror}") from None
    yaml, Loader = _yaml_loader()
    try:
        doc = yaml.load(_render_erb(text, path), Loader=Loader)
    except yaml.YAMLError as exc:
        raise EncryptionConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    doc = _symbol_keys(doc)
    if not isinstance(doc, dict) or environment not in doc:
        envs = ", ".join(map(str, doc)) if isinstance(doc, dict) else "none"
        raise EncryptionConfigError(
            f"{path}: no environment {environment!r} in the config (found: {envs})"
        )
    section = doc[environment]
    if not isinstance(section, dict):
        raise EncryptionConfigError(f"{path}: environment {environment!r} is not a mapping")
    rsa_key = section.get("private_rsa_key")
    entries = section.get("ciphers")
    if entries is None:  # old (v1-v3) format: the section itself is the single cipher
        entries = [{k: v for k, v in section.items() if k != "private_rsa_key"}]
    if not isinstance(entries, list) or not entries:
        raise EncryptionConfigError(f"{path}: {environment}.ciphers must be a non-empty list")
    ciphers = []
    for i, entry in enumerate(entries):
        where = f"{path}: {environment}.ciphers[{i}]"
        if not isinstance(entry, dict):
            raise EncryptionConfigError(f"{where} is not a mapping")
        key, iv, name = _resolve_key(entry, "aes-256-cbc", where, rsa_key)
        version = entry.get("version", 0)
        try:
            ciphers.append(Cipher(key=key, iv=iv, version=int(version), cipher_name=name))
        except EncryptionConfigError as exc:
            raise EncryptionConfigError(f"{where}: {exc}") from None
    log.debug("loaded %d encryption keys from %s (%s)", len(ciphers), path, environment)
    return ciphers


def _resolve_key(
    cfg: dict[str, Any], default_name: str, where: str, rsa_key: Any = None
) -> tuple[bytes, bytes, str]:
    """Resolve one cipher (or key-encrypting-key) entry to ``(key, iv, cipher_name)``."""
    name = str(cfg.get("cipher_name") or cfg.get("cipher") or default_name).lower()
    kek_cfg = cfg.get("key_encrypting_key")
    kek: Cipher | None = None
    if isinstance(kek_cfg, dict):
        kk, kiv, kname = _resolve_key(kek_cfg, name, f"{where}.key_encrypting_key")
        try:
            kek = Cipher(key=kk, iv=kiv, cipher_name=kname)
        except EncryptionConfigError as exc:
            raise EncryptionConfigError(f"{where}.key_encrypting_key: {exc}") from None
    elif kek_cfg is not None:
        raise EncryptionConfigError(f"{where}: key_encrypting_key must be a mapping")
    rsa = _rsa_decryptor(rsa_key, where) if rsa_key else None

    def unwrap(data: bytes, what: str) -> bytes:
        if rsa is not None:
            return rsa(data, what)
        if kek is None:
            return data
        try:
            return kek.decrypt(data)
        except ValueError:
            raise EncryptionConfigError(
                f"{where}: {what} cannot be decrypted with its key_encrypting_key (wrong key?)"
            ) from None

    if cfg.get("key") is not None:
        key = _as_bytes(cfg["key"], f"{where}.key")
    elif cfg.get("encrypted_key") is not None:
        if kek is None and rsa is None:
            raise EncryptionConfigError(f"{where}: encrypted_key needs a key_encrypting_key")
        key = unwrap(_binary_or_base64(cfg["encrypted_key"], f"{where}.encrypted_key"), "encrypted_key")
    elif cfg.get("key_filename"):
        key = unwrap(_read_key_file(str(cfg["key_filename"]), where), f"key file {cfg['key_filename']}")
    elif cfg.get("key_env_var"):
        var = str(cfg["key_env_var"])
        if kek is None:
            raise EncryptionConfigError(f"{where}: key_env_var needs a key_encrypting_key")
        value = os.environ.get(var)
        if not value:
            raise EncryptionConfigError(
                f"{where}: environment variable {var} must hold the encrypted key (base64)"
            )
        try:
            data = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise EncryptionConfigError(f"{where}: environment variable {var} is not base64") from None
        key = unwrap(data, f"the key in ${var}")
    elif cfg.get("keystore") in ("aws", "gcp", "heroku", ":aws", ":gcp", ":heroku"):
        raise EncryptionConfigError(
            f"{where}: the {str(cfg['keystore']).lstrip(':')} keystore (cloud KMS) is not supported"
        )
    else:
        raise EncryptionConfigError(
            f"{where}: no key (expected key, encrypted_key, key_filename or key_env_var)"
        )

    if cfg.get("iv") is not None:
        iv = _as_bytes(cfg["iv"], f"{where}.iv")
    elif cfg.get("iv_filename"):
        iv = unwrap(_read_key_file(str(cfg["iv_filename"]), where), f"iv file {cfg['iv_filename']}")
    else:
        raise EncryptionConfigError(f"{where}: no iv (expected iv or iv_filename)")
    return key, iv, name


def _binary_or_base64(value: Any, what: str) -> bytes:
    """``!binary`` values arrive as bytes; a plain string is taken as base64 (older configs)."""
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode("".join(str(value).split()), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionConfigError(f"{what} is neither !binary nor base64") from None


def _read_key_file(file_name: str, where: str) -> bytes:
    """Read a key file with Ruby's rules: mode 0600 or 0400, owned by the current user."""
    try:
        st = os.stat(file_name)
    except OSError:
        raise EncryptionConfigError(f"{where}: key file {file_name!r} not found") from None
    mode = st.st_mode & 0o7777
    if mode not in (0o600, 0o400):
        raise EncryptionConfigError(
            f"{where}: key file {file_name!r} has mode {mode:04o}; expected 0600 or 0400"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise EncryptionConfigError(
            f"{where}: key file {file_name!r} must be owned by the current user"
        )
    with open(file_name, "rb") as f:
        return f.read()


def _rsa_decryptor(pem: Any, where: str) -> Callable[[bytes, str], bytes]:
    """Symmetric Encryption v3 configs wrap keys with an RSA key (PKCS#1 v1.5)."""
    from cryptography.hazmat.primitives.asymmetric import padding as apadding
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(_as_bytes(pem, "private_rsa_key"), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, RSAPrivateKey):  # unreadable, or another kind of key (EC, ...)
        raise EncryptionConfigError(f"{where}: private_rsa_key is not a usable PEM RSA key")

    def decrypt(data: bytes, what: str) -> bytes:
        try:
            return key.decrypt(data, apadding.PKCS1v15())
        except ValueError:
            raise EncryptionConfigError(
                f"{where}: {what} cannot be decrypted with private_rsa_key"
            ) from None

    return decrypt
