//! Keyed MACs and the encodings around them, shared by every signature this crate checks.
//!
//! `Hmac::new_from_slice` returns a `Result` although HMAC accepts keys of any length; keying
//! through the fixed-size block key instead (RFC 2104: hash a long key, zero-pad a short one)
//! gives the same MAC without an `expect` on every signing path.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Standard base64 that decodes with or without `=` padding and always encodes it.
pub(crate) const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Both SHA-1 and SHA-256 have 64-byte blocks.
const BLOCK: usize = 64;

fn block_key<D: Digest>(key: &[u8]) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        let digest = D::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// An HMAC-SHA256 keyed with `key`, ready for `update` and `verify_slice`.
pub(crate) fn sha256_mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new(&block_key::<Sha256>(key).into())
}

/// An HMAC-SHA1 keyed with `key` (only Twilio still signs with it).
pub(crate) fn sha1_mac(key: &[u8]) -> Hmac<Sha1> {
    <Hmac<Sha1> as KeyInit>::new(&block_key::<Sha1>(key).into())
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = sha256_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Equality of two byte strings in constant time for their length (the one compare every
/// code, MAC, token hash and poll secret check goes through).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Decodes hex of either case; `None` for an odd length or a non-hex character.
pub(crate) fn hex_decode(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 4231 test cases 1 (short key) and 6 (131-byte key, hashed first).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], &[b"Hi There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// RFC 2202 test cases 1 and 6 (80-byte key, hashed first).
    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let mut mac = sha1_mac(&[0x0b; 20]);
        mac.update(b"Hi There");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        let mut mac = sha1_mac(&[0xaa; 80]);
        mac.update(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn block_keyed_mac_equals_slice_keyed_mac() {
        for len in [0, 1, 31, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ours = hmac_sha256(&key, &[b"msg"]);
            let mut theirs = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            theirs.update(b"msg");
            assert_eq!(
                ours.as_slice(),
                theirs.finalize().into_bytes().as_slice(),
                "{len}"
            );
        }
    }

    #[test]
    fn hex_decodes_both_cases_and_refuses_junk() {
        assert_eq!(hex_decode("00ffAb"), Some(vec![0x00, 0xff, 0xab]));
        assert_eq!(hex_decode(""), Some(vec![]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("é1"), None);
    }
}
