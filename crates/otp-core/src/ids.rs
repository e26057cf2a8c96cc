//! Challenge identifiers: random version-4 UUIDs, made from bytes the caller supplies.

/// Formats 16 random bytes as a version-4, variant-1 UUID (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-...`).
pub fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hyphenated(&bytes)
}

/// Formats 16 bytes as a lowercase hyphenated UUID, as they are.
pub fn hyphenated(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// True for a canonical lowercase or uppercase hyphenated UUID of 36 characters.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn sets_version_and_variant_bits() {
        assert_eq!(uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert!(is_uuid(&uuid_v4([7; 16])));
    }

    #[test]
    fn recognises_only_canonical_uuids() {
        assert!(is_uuid("a0b5df6a-b491-4190-80a5-38d85a2a4836"));
        assert!(!is_uuid("a0b5df6a-b491-4190-80a5-38d85a2a483"));
        assert!(!is_uuid("a0b5df6ab4914190-80a5-38d85a2a48366"));
        assert!(!is_uuid("g0b5df6a-b491-4190-80a5-38d85a2a4836"));
    }
}
