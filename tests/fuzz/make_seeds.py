#!/usr/bin/env python3
"""Writes the seed corpus for the `decode_args` fuzz target (format: src/ffi/fuzzing.rs).

Seeds are laid out for LP64 little-endian (x86_64/aarch64 Linux), where CK_ULONG and
pointers are 8 bytes. On other platforms they are still valid inputs, only less
meaningful. Run from this directory: python3 make_seeds.py
"""
import os
import struct

# Indices into ATTR_TYPES and MECHANISMS in src/ffi/fuzzing.rs.
A = dict(CLASS=0, KEY_TYPE=1, TOKEN=2, PRIVATE=3, SENSITIVE=4, EXTRACTABLE=5, SIGN=6,
         DECRYPT=7, LABEL=8, ID=9, VALUE=10, VALUE_LEN=11, MODULUS_BITS=12, EC_PARAMS=13,
         ALLOWED_MECHANISMS=14, PRIVATE_EXPONENT=15, WRAP_TEMPLATE=16, VENDOR=17)
M = dict(AES_GCM=0, AES_CCM=1, RSA_PKCS_PSS=2, SHA256_RSA_PKCS_PSS=3, RSA_PKCS_OAEP=4,
         AES_CTR=5, ECDH1_DERIVE=6, AES_CBC=7, AES_CBC_PAD=8, DES3_CBC=9, ECDSA=10,
         EC_KEY_PAIR_GEN=11, AES_KEY_GEN=12)

def ul(v):
    return struct.pack("<Q", v)

PTR = ul(0x00007FFF_DEAD_0000)  # a pointer that leads nowhere: must never be followed
NULL = ul(0)
P256 = bytes.fromhex("06082a8648ce3d030107")

def attr(name, value):
    return bytes([A[name], len(value)]) + value

def null_attr(name, length=None):
    return bytes([A[name], 0xFE]) if length is None else bytes([A[name], 0xFF, length])

def seed(attrs, mech, param=None, null_len=None, misaligned=False):
    head = len(attrs) | (0x40 if misaligned else 0)
    body = b"".join(attrs) + bytes([M[mech]])
    if null_len is not None:
        body += bytes([1, null_len])
    elif param is None:
        body += bytes([0])
    else:
        body += bytes([2]) + param
    return bytes([head]) + body

true, false = b"\x01", b"\x00"
seeds = {
    "ec_keypair": seed([attr("CLASS", ul(3)), attr("KEY_TYPE", ul(3)), attr("TOKEN", true),
                        attr("SIGN", true), attr("EC_PARAMS", P256), attr("LABEL", b"ec1")],
                       "EC_KEY_PAIR_GEN"),
    "aes_key_gcm_v240_header": seed([attr("CLASS", ul(4)), attr("VALUE_LEN", ul(32)),
                                     attr("SENSITIVE", true), attr("EXTRACTABLE", false)],
                                    "AES_GCM", PTR + ul(12) + ul(96) + PTR + ul(20) + ul(128)),
    "gcm_without_iv_bits": seed([], "AES_GCM", PTR + ul(12) + NULL + ul(0) + ul(128)),
    "gcm_null_iv_with_len": seed([], "AES_GCM", NULL + ul(12) + ul(96) + NULL + ul(0) + ul(128)),
    "pss_sha256": seed([attr("ID", b"\x02")], "SHA256_RSA_PKCS_PSS", ul(0x250) + ul(2) + ul(32)),
    "oaep_label": seed([], "RSA_PKCS_OAEP", ul(0x220) + ul(1) + ul(1) + PTR + ul(5)),
    "ecdh_derive": seed([attr("CLASS", ul(4)), attr("VALUE_LEN", ul(16))], "ECDH1_DERIVE",
                        ul(1) + ul(0) + NULL + ul(65) + PTR),
    "cbc_iv": seed([attr("ALLOWED_MECHANISMS", ul(0x1082) + ul(0x1085))], "AES_CBC_PAD", bytes(16)),
    "ccm": seed([], "AES_CCM", ul(64) + PTR + ul(13) + NULL + ul(0) + ul(16)),
    "ctr": seed([], "AES_CTR", ul(32) + bytes(16)),
    "duplicate_inconsistent": seed([attr("TOKEN", true), attr("TOKEN", false)], "ECDSA"),
    "duplicate_same": seed([attr("LABEL", b"a"), attr("LABEL", b"a")], "ECDSA"),
    "bad_bool_and_ulong": seed([attr("PRIVATE", b"\x02"), attr("MODULUS_BITS", b"\x00\x08")],
                               "AES_KEY_GEN"),
    "null_value_with_len": seed([null_attr("LABEL", 4), null_attr("ID")], "ECDSA"),
    "null_param_with_len": seed([null_attr("VALUE")], "AES_GCM", null_len=48),
    "misaligned_template": seed([attr("TOKEN", true)], "ECDSA", misaligned=True),
    "vendor_and_raw_types": seed([attr("VENDOR", b"xyz"),
                                  bytes([0xF0]) + ul(0x1234) + bytes([2]) + b"hi"],
                                 "ECDSA"),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "decode_args")
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {out}")
