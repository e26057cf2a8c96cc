#!/usr/bin/env python3
"""Independent implementation of edge-otp's code derivation, written from its description in
docs/security.md (section "Codes"), to produce the known-answer vectors in crates/otp-core/src/code.rs.

HMAC-SHA256(pepper, "edge-otp/code/v1" || lp(instance) || lp(recipient digits) ||
lp(challenge id) || lp(alphabet) || u8(length) || u32be(counter)), lp(x) = u32be(len x) || x;
bytes below 256 - 256 % |alphabet| are kept, index = byte % |alphabet|, blocks until long enough.
"""
import hmac, hashlib, struct

def lp(b): return struct.pack(">I", len(b)) + b

def derive(pepper, instance, digits, cid, alphabet, length):
    out, counter, limit = "", 0, 256 - 256 % len(alphabet)
    while len(out) < length:
        msg = b"edge-otp/code/v1" + lp(instance) + lp(digits) + lp(cid) + lp(alphabet) + bytes([length]) + struct.pack(">I", counter)
        for b in hmac.new(pepper, msg, hashlib.sha256).digest():
            if b < limit and len(out) < length:
                out += chr(alphabet[b % len(alphabet)])
        counter += 1
    return out

if __name__ == "__main__":
    p = b"test-pepper-0123456789abcdef-xyz"
    inst, d, cid = b"9f1c2d3e-0000-4000-8000-000000000001", b"20123456789", b"a0b5df6a-b491-4190-80a5-38d85a2a4836"
    print("DIGITS6", derive(p, inst, d, cid, b"0123456789", 6))
    print("DU10", derive(p, inst, d, cid, b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10))
    print("LINK", derive(p, inst, d, cid, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 8))
    print("LOWER4", derive(p, inst, d, cid, b"abcdefghijklmnopqrstuvwxyz", 4))
