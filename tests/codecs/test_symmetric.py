"""The Symmetric Encryption ``.enc`` format, the cipher registry and Ruby's YAML key config."""

from __future__ import annotations

import base64
import logging
import os
import struct

import pytest

from rjbatch.codecs import (
    Cipher,
    DecryptionError,
    EncryptionConfigError,
    decrypt_bytes,
    encrypt_bytes,
    get_ciphers,
    load_encryption_config,
    open_read,
    open_write,
    read_lines,
    set_ciphers,
    write_lines,
)
from rjbatch.codecs.symmetric import MAGIC, parse_header

VECTOR_HEX = (
    "40456e430760100032333435363738393a3b3c3d3e3f40413000ba99174afe0e1a23e97ccb897c0670f754"
    "891d161a2637a4e81130dd49aa76c4a7a7df370a5660ce90e00e1d53fd92c68269db600b009cb61aa66716"
    "45d7032c"
)


def vector_cipher() -> Cipher:
    return Cipher(key=bytes(range(32)), iv=bytes(range(100, 116)), version=7, cipher_name="aes-256-cbc")


def other_cipher(version: int = 8) -> Cipher:
    return Cipher(key=b"K" * 32, iv=b"I" * 16, version=version)


# --------------------------------------------------------------------------- the file format


def test_the_ruby_test_vector_decrypts_exactly():
    assert decrypt_bytes(bytes.fromhex(VECTOR_HEX), ciphers=[vector_cipher()]) == b"hello\n"


@pytest.mark.usefixtures("ciphers")
def test_the_ruby_written_fixture_reads_as_lines(fixtures):
    assert list(read_lines(fixtures / "ruby_vector.txt.enc")) == ["hello"]


@pytest.mark.usefixtures("ciphers")
@pytest.mark.parametrize(("compress", "flags"), [(True, 0xE0), (False, 0x60)])
def test_written_header_has_rubys_default_layout(compress, flags):
    blob = encrypt_bytes(b"data", compress=compress)
    assert blob[:4] == MAGIC and blob[4] == 7 and blob[5] == flags
    assert struct.unpack_from("<H", blob, 6)[0] == 16  # clear-text random IV
    assert struct.unpack_from("<H", blob, 24)[0] == 48  # 32-byte key, encrypted and padded
    header, length = parse_header(blob)
    assert length == 74 and header.compressed is compress
    assert (len(blob) - 74) % 16 == 0


@pytest.mark.usefixtures("ciphers")
@pytest.mark.parametrize("compress", [True, False])
def test_an_empty_plaintext_is_just_the_74_byte_header(compress):
    blob = encrypt_bytes(b"", compress=compress)
    assert len(blob) == 74
    assert decrypt_bytes(blob) == b""


@pytest.mark.usefixtures("ciphers")
@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("size", [1, 15, 16, 17, 100_000])
def test_bytes_round_trip(compress, size):
    data = os.urandom(size)
    assert decrypt_bytes(encrypt_bytes(data, compress=compress)) == data


@pytest.mark.usefixtures("ciphers")
def test_each_encryption_uses_a_fresh_key_and_iv():
    a, b = encrypt_bytes(b"same"), encrypt_bytes(b"same")
    assert a[6:74] != b[6:74] and a != b


def test_a_wrong_key_is_a_decryption_error_not_garbage():
    blob = bytes.fromhex(VECTOR_HEX)
    wrong = Cipher(key=bytes(range(1, 33)), iv=bytes(range(100, 116)), version=7)
    with pytest.raises(DecryptionError, match="key version 7"):
        decrypt_bytes(blob, ciphers=[wrong])


def test_a_file_needing_an_unconfigured_version_says_which(fixtures):
    with pytest.raises(DecryptionError, match=r"version 7.*configured versions: 8"):
        decrypt_bytes(bytes.fromhex(VECTOR_HEX), ciphers=[other_cipher(8)])


@pytest.mark.usefixtures("ciphers")
def test_tampered_compressed_ciphertext_is_detected():
    blob = bytearray(encrypt_bytes(b"x" * 10_000 + os.urandom(2000), compress=True))
    blob[100] ^= 0x01
    with pytest.raises(DecryptionError):
        decrypt_bytes(bytes(blob))


@pytest.mark.usefixtures("ciphers")
def test_tampering_with_the_last_blocks_breaks_the_padding():
    blob = bytearray(encrypt_bytes(b"plain text, not compressed", compress=False))
    blob[-17] ^= 0x01  # flips the last padding byte of the plaintext
    with pytest.raises(DecryptionError, match="bad padding"):
        decrypt_bytes(bytes(blob))


@pytest.mark.usefixtures("ciphers")
def test_truncated_ciphertext_is_detected(tmp_path):
    blob = encrypt_bytes(b"some data " * 100, compress=False)
    with pytest.raises(DecryptionError, match="cut short"):
        decrypt_bytes(blob[:-5])
    (tmp_path / "t.txt.enc").write_bytes(encrypt_bytes(b"a\n" * 5000)[:-16])
    with pytest.raises(DecryptionError):
        list(read_lines(tmp_path / "t.txt.enc"))


@pytest.mark.usefixtures("ciphers")
def test_a_header_cut_short_is_detected():
    with pytest.raises(DecryptionError, match="header is cut short"):
        decrypt_bytes(bytes.fromhex(VECTOR_HEX)[:40])


@pytest.mark.usefixtures("ciphers")
def test_a_zero_byte_enc_file_is_an_error_not_empty(tmp_path):
    (tmp_path / "z.txt.enc").write_bytes(b"")
    with pytest.raises(DecryptionError, match=r"z\.txt\.enc: the encryption header is missing"):
        list(read_lines(tmp_path / "z.txt.enc"))


@pytest.mark.usefixtures("ciphers")
def test_encrypt_bytes_writes_what_the_stream_writer_writes(tmp_path):
    data = b"same format both ways\n" * 100
    for compress in (True, False):
        blob = encrypt_bytes(data, compress=compress)
        (tmp_path / "b.enc").write_bytes(blob)
        with open_read(tmp_path / "b.enc") as f:
            assert f.read() == data
    with open_write(tmp_path / "s.bin.enc") as f:
        f.write(data)
    assert decrypt_bytes((tmp_path / "s.bin.enc").read_bytes()) == data


@pytest.mark.usefixtures("ciphers")
def test_gcm_files_from_symmetric_encryption_5_are_refused_clearly():
    blob = MAGIC + bytes((7, 0x08 | 0x40)) + struct.pack("<H", 12) + b"\0" * 12
    with pytest.raises(DecryptionError, match="AES-GCM"):
        decrypt_bytes(blob)


def test_a_key_field_with_its_own_header_is_read():
    # SymmetricEncryption.randomize_iv = true: the key field is a nested @EnC blob
    master = vector_cipher()
    file_key, file_iv, key_iv = os.urandom(32), os.urandom(16), os.urandom(16)
    nested = MAGIC + bytes((7, 0x40)) + struct.pack("<H", 16) + key_iv + master.encrypt(file_key, key_iv)
    body = Cipher(key=file_key, iv=file_iv).encrypt(b"nested key\n")
    blob = (
        MAGIC + bytes((7, 0x60)) + struct.pack("<H", 16) + file_iv
        + struct.pack("<H", len(nested)) + nested + body
    )
    assert len(nested) == 72
    assert decrypt_bytes(blob, ciphers=[master]) == b"nested key\n"


def test_a_cipher_name_in_the_header_overrides_the_masters():
    master = vector_cipher()
    file_key, file_iv = os.urandom(16), os.urandom(16)
    body = Cipher(key=file_key, iv=file_iv, cipher_name="aes-128-cbc").encrypt(b"aes-128 data")
    enc_key = master.encrypt(file_key)
    blob = (
        MAGIC + bytes((7, 0x70)) + struct.pack("<H", 16) + file_iv
        + struct.pack("<H", len(enc_key)) + enc_key
        + struct.pack("<H", 11) + b"aes-128-cbc" + body
    )
    assert decrypt_bytes(blob, ciphers=[master]) == b"aes-128 data"


def test_a_legacy_file_without_header_uses_the_primary_key_and_iv():
    master = vector_cipher()
    assert decrypt_bytes(master.encrypt(b"old style"), ciphers=[master]) == b"old style"


# --------------------------------------------------------------------------- the registry


def test_the_first_cipher_encrypts_and_all_decrypt(monkeypatch):
    monkeypatch.delenv("RJBATCH_ENCRYPTION_CONFIG", raising=False)
    try:
        set_ciphers([vector_cipher()])
        old = encrypt_bytes(b"written with version 7")
        set_ciphers([other_cipher(8), vector_cipher()])  # key rotation: 8 is new, 7 still reads
        new = encrypt_bytes(b"written with version 8")
        assert new[4] == 8
        assert decrypt_bytes(old) == b"written with version 7"
        assert decrypt_bytes(new) == b"written with version 8"
        assert [c.version for c in get_ciphers()] == [8, 7]
    finally:
        set_ciphers(None)


def test_no_configured_keys_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("RJBATCH_ENCRYPTION_CONFIG", raising=False)
    set_ciphers(None)
    with pytest.raises(EncryptionConfigError, match="RJBATCH_ENCRYPTION_CONFIG"):
        encrypt_bytes(b"x")
    with pytest.raises(EncryptionConfigError, match="no encryption keys"):
        write_lines(tmp_path / "x.txt.enc", ["a"])
    assert not (tmp_path / "x.txt.enc").exists()


def test_the_environment_variable_names_a_config_file(monkeypatch, tmp_path):
    config = tmp_path / "se.yml"
    config.write_text(DEV_CONFIG)
    monkeypatch.setenv("RJBATCH_ENCRYPTION_CONFIG", str(config))
    monkeypatch.setenv("RAILS_ENV", "test")
    set_ciphers(None)
    (cipher,) = get_ciphers()
    assert (cipher.version, cipher.cipher_name, cipher.key) == (2, "aes-128-cbc", b"ABCDEF1234567890")
    assert decrypt_bytes(encrypt_bytes(b"via env")) == b"via env"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": b"short", "iv": b"I" * 16}, "32-byte key"),
        ({"key": b"K" * 32, "iv": b"I" * 8}, "16-byte iv"),
        ({"key": b"K" * 32, "iv": b"I" * 16, "version": 256}, "0..255"),
        ({"key": b"K" * 32, "iv": b"I" * 16, "cipher_name": "des-cbc"}, "not supported"),
    ],
)
def test_invalid_ciphers_are_refused(kwargs, message):
    with pytest.raises(EncryptionConfigError, match=message):
        Cipher(**kwargs)


def test_keys_never_show_in_repr_or_logs(caplog, tmp_path, monkeypatch):
    secret = b"S3cr3tK3y-0123456789abcdefABCDEF"
    cipher = Cipher(key=secret, iv=b"I" * 16, version=3)
    assert "S3cr3t" not in repr(cipher) and "S3cr3t" not in str([cipher])
    caplog.set_level(logging.DEBUG, logger="rjbatch")
    config = tmp_path / "se.yml"
    config.write_text(f"production:\n  ciphers:\n    - key: {secret.decode()}\n      iv: IIIIIIIIIIIIIIII\n      version: 3\n")
    set_ciphers(load_encryption_config(config, "production"))
    try:
        decrypt_bytes(encrypt_bytes(b"x"))
    finally:
        set_ciphers(None)
    assert "S3cr3t" not in caplog.text


# --------------------------------------------------------------------------- the YAML config

DEV_CONFIG = """\
development: &development_defaults
  ciphers:
    - key: 1234567890ABCDEF
      iv: 1234567890ABCDEF
      cipher_name: aes-128-cbc
      version: 1
test:
  ciphers:
    - key: ABCDEF1234567890
      iv: ABCDEF1234567890
      cipher_name: aes-128-cbc
      version: 2
"""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_literal_ascii_keys_as_in_the_dev_config(tmp_path):
    path = tmp_path / "se.yml"
    path.write_text(DEV_CONFIG)
    (cipher,) = load_encryption_config(path, "development")
    assert (cipher.key, cipher.iv, cipher.version, cipher.cipher_name) == (
        b"1234567890ABCDEF", b"1234567890ABCDEF", 1, "aes-128-cbc"
    )


def test_the_environment_defaults_from_rails_env(tmp_path, monkeypatch):
    path = tmp_path / "se.yml"
    path.write_text(DEV_CONFIG)
    monkeypatch.delenv("RJBATCH_ENCRYPTION_ENV", raising=False)
    monkeypatch.setenv("RAILS_ENV", "test")
    assert load_encryption_config(path)[0].version == 2


def test_a_missing_environment_lists_the_ones_present(tmp_path):
    path = tmp_path / "se.yml"
    path.write_text(DEV_CONFIG)
    with pytest.raises(EncryptionConfigError, match="no environment 'production'.*development, test"):
        load_encryption_config(path, "production")


def test_binary_keys_written_by_ruby_psych(tmp_path):
    key, iv = os.urandom(32), os.urandom(16)
    path = tmp_path / "se.yml"
    path.write_text(
        f"---\nproduction:\n  ciphers:\n  - key: !binary |-\n      {_b64(key)}\n"
        f"    iv: !binary |-\n      {_b64(iv)}\n    version: 5\n"
    )
    (cipher,) = load_encryption_config(path, "production")
    assert (cipher.key, cipher.iv, cipher.version) == (key, iv, 5)


def test_encrypted_key_with_a_key_encrypting_key(tmp_path):
    dek, kek = Cipher(key=os.urandom(32), iv=os.urandom(16), version=4), Cipher(key=os.urandom(32), iv=os.urandom(16))
    path = tmp_path / "se.yml"
    path.write_text(
        "production:\n  ciphers:\n"
        f"    - encrypted_key: !!binary {_b64(kek.encrypt(dek.key))}\n"
        f"      iv: !!binary {_b64(dek.iv)}\n      version: 4\n"
        "      key_encrypting_key:\n"
        f"        key: !!binary {_b64(kek.key)}\n        iv: !!binary {_b64(kek.iv)}\n"
    )
    (cipher,) = load_encryption_config(path, "production")
    assert cipher.key == dek.key
    blob = encrypt_bytes(b"round trip", cipher=cipher)
    assert decrypt_bytes(blob, ciphers=[dek]) == b"round trip"


def test_key_file_with_a_chain_of_key_encrypting_keys(tmp_path):
    # the layout Ruby's file keystore generates: DEK file ← KEK (encrypted in the YAML) ← KEKEK file
    dek, kek, kekek = (os.urandom(32) for _ in range(3))
    dek_iv, kek_iv, kekek_iv = (os.urandom(16) for _ in range(3))
    dek_file, kekek_file = tmp_path / "app_production_v3.encrypted_key", tmp_path / "app_production_v3.kekek"
    dek_file.write_bytes(Cipher(key=kek, iv=kek_iv).encrypt(dek))
    kekek_file.write_bytes(kekek)
    for f in (dek_file, kekek_file):
        os.chmod(f, 0o600)
    path = tmp_path / "se.yml"
    path.write_text(
        "production:\n  ciphers:\n  - keystore: file\n    cipher_name: aes-256-cbc\n    version: 3\n"
        f"    key_filename: {dek_file}\n    iv: !binary |-\n      {_b64(dek_iv)}\n"
        "    key_encrypting_key:\n"
        f"      encrypted_key: !binary |-\n        {_b64(Cipher(key=kekek, iv=kekek_iv).encrypt(kek))}\n"
        f"      iv: !binary |-\n        {_b64(kek_iv)}\n"
        "      key_encrypting_key:\n"
        f"        key_filename: {kekek_file}\n        iv: !binary |-\n          {_b64(kekek_iv)}\n"
    )
    (cipher,) = load_encryption_config(path, "production")
    assert (cipher.key, cipher.iv, cipher.version) == (dek, dek_iv, 3)


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    key_file = tmp_path / "k.key"
    key_file.write_bytes(os.urandom(32))
    os.chmod(key_file, 0o644)
    path = tmp_path / "se.yml"
    path.write_text(f"production:\n  ciphers:\n  - key_filename: {key_file}\n    iv: IIIIIIIIIIIIIIII\n")
    with pytest.raises(EncryptionConfigError, match="mode 0644; expected 0600 or 0400"):
        load_encryption_config(path, "production")


def test_key_from_an_environment_variable(tmp_path, monkeypatch):
    dek, kek = os.urandom(32), Cipher(key=os.urandom(32), iv=os.urandom(16))
    monkeypatch.setenv("MYAPP_PRODUCTION_V2", _b64(kek.encrypt(dek)))
    path = tmp_path / "se.yml"
    path.write_text(
        "production:\n  ciphers:\n  - key_env_var: MYAPP_PRODUCTION_V2\n    iv: IIIIIIIIIIIIIIII\n    version: 2\n"
        f"    key_encrypting_key:\n      key: !binary {_b64(kek.key)}\n      iv: !binary {_b64(kek.iv)}\n"
    )
    assert load_encryption_config(path, "production")[0].key == dek
    monkeypatch.delenv("MYAPP_PRODUCTION_V2")
    with pytest.raises(EncryptionConfigError, match="MYAPP_PRODUCTION_V2"):
        load_encryption_config(path, "production")


def test_erb_env_lookups_are_rendered(tmp_path, monkeypatch):
    monkeypatch.setenv("SE_KEY", "K" * 32)
    path = tmp_path / "se.yml"
    path.write_text(
        "<%# a comment %>\nproduction:\n  ciphers:\n  - key: <%= ENV['SE_KEY'] %>\n"
        "    iv: <%= ENV.fetch(\"SE_IV\", \"IIIIIIIIIIIIIIII\") %>\n"
    )
    (cipher,) = load_encryption_config(path, "production")
    assert (cipher.key, cipher.iv) == (b"K" * 32, b"I" * 16)
    path.write_text("production:\n  ciphers:\n  - key: <%= Rails.application.secret %>\n")
    with pytest.raises(EncryptionConfigError, match="unsupported ERB tag"):
        load_encryption_config(path, "production")


def test_the_old_single_cipher_format(tmp_path):
    path = tmp_path / "se.yml"
    path.write_text("development:\n  key: 1234567890ABCDEF\n  iv: 1234567890ABCDEF\n  cipher: aes-128-cbc\n")
    (cipher,) = load_encryption_config(path, "development")
    assert cipher.cipher_name == "aes-128-cbc" and cipher.version == 0


def test_rsa_wrapped_key_and_iv_files_of_version_3_configs(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
    key, iv = os.urandom(32), os.urandom(16)
    for name, value in (("k.key", key), ("k.iv", iv)):
        (tmp_path / name).write_bytes(private.public_key().encrypt(value, padding.PKCS1v15()))
        os.chmod(tmp_path / name, 0o400)
    indented = "\n".join("    " + line for line in pem.splitlines())
    path = tmp_path / "se.yml"
    path.write_text(
        f"release:\n  private_rsa_key: |\n{indented}\n  ciphers:\n"
        f"  - key_filename: {tmp_path / 'k.key'}\n    iv_filename: {tmp_path / 'k.iv'}\n"
        "    cipher_name: aes-256-cbc\n    version: 1\n"
    )
    (cipher,) = load_encryption_config(path, "release")
    assert (cipher.key, cipher.iv) == (key, iv)


def test_cloud_keystores_are_refused_clearly(tmp_path):
    path = tmp_path / "se.yml"
    path.write_text("production:\n  ciphers:\n  - keystore: aws\n    iv: IIIIIIIIIIIIIIII\n")
    with pytest.raises(EncryptionConfigError, match="aws keystore"):
        load_encryption_config(path, "production")


def test_a_wrong_key_encrypting_key_is_reported(tmp_path):
    kek = Cipher(key=os.urandom(32), iv=os.urandom(16))
    wrong = os.urandom(32)
    path = tmp_path / "se.yml"
    path.write_text(
        "production:\n  ciphers:\n"
        f"  - encrypted_key: !!binary {_b64(kek.encrypt(os.urandom(32)))}\n    iv: IIIIIIIIIIIIIIII\n"
        f"    key_encrypting_key:\n      key: !!binary {_b64(wrong)}\n      iv: !!binary {_b64(kek.iv)}\n"
    )
    with pytest.raises(EncryptionConfigError, match="cannot be decrypted"):
        load_encryption_config(path, "production")


@pytest.mark.usefixtures("ciphers")
def test_an_enc_stream_opened_directly(tmp_path):
    (tmp_path / "d.bin.enc").write_bytes(encrypt_bytes(b"\x00\x01binary", compress=False))
    with open_read(tmp_path / "d.bin.enc") as f:
        assert f.read() == b"\x00\x01binary"
