//! Country calling codes (ITU-T E.164) of recipients, for the per-instance country allowlist
//! and per-prefix velocity caps that stop SMS pumping.
//!
//! The table holds every assigned code, geographic and non-geographic (the same set as
//! libphonenumber's metadata, plus ITU's assigned-but-unused 379, 991 and 997). Assigned codes
//! form a prefix code, so the first table entry among a number's first 1, 2 or 3 digits is its
//! calling code. Assumed: the number is already in E.164 form; nothing here checks that the
//! digits after the code are a real national number. Shared codes stay shared: `1` is all of
//! the NANP (US, Canada, Caribbean), `7` is Russia and Kazakhstan; an allowlist entry longer
//! than a calling code (`1876`) narrows it to that prefix.

/// Every assigned calling code, sorted as strings (binary search), with its regions.
const CODES: &[&str] = &[
    "1",   // NANP: US, CA and the Caribbean and Pacific members
    "20",  // EG
    "211", // SS
    "212", // MA, EH
    "213", // DZ
    "216", // TN
    "218", // LY
    "220", // GM
    "221", // SN
    "222", // MR
    "223", // ML
    "224", // GN
    "225", // CI
    "226", // BF
    "227", // NE
    "228", // TG
    "229", // BJ
    "230", // MU
    "231", // LR
    "232", // SL
    "233", // GH
    "234", // NG
    "235", // TD
    "236", // CF
    "237", // CM
    "238", // CV
    "239", // ST
    "240", // GQ
    "241", // GA
    "242", // CG
    "243", // CD
    "244", // AO
    "245", // GW
    "246", // IO
    "247", // AC
    "248", // SC
    "249", // SD
    "250", // RW
    "251", // ET
    "252", // SO
    "253", // DJ
    "254", // KE
    "255", // TZ
    "256", // UG
    "257", // BI
    "258", // MZ
    "260", // ZM
    "261", // MG
    "262", // RE, YT
    "263", // ZW
    "264", // NA
    "265", // MW
    "266", // LS
    "267", // BW
    "268", // SZ
    "269", // KM
    "27",  // ZA
    "290", // SH, TA
    "291", // ER
    "297", // AW
    "298", // FO
    "299", // GL
    "30",  // GR
    "31",  // NL
    "32",  // BE
    "33",  // FR
    "34",  // ES
    "350", // GI
    "351", // PT
    "352", // LU
    "353", // IE
    "354", // IS
    "355", // AL
    "356", // MT
    "357", // CY
    "358", // FI, AX
    "359", // BG
    "36",  // HU
    "370", // LT
    "371", // LV
    "372", // EE
    "373", // MD
    "374", // AM
    "375", // BY
    "376", // AD
    "377", // MC
    "378", // SM
    "379", // VA, reserved: Vatican numbers use +39 06 698
    "380", // UA
    "381", // RS
    "382", // ME
    "383", // XK
    "385", // HR
    "386", // SI
    "387", // BA
    "389", // MK
    "39",  // IT, VA
    "40",  // RO
    "41",  // CH
    "420", // CZ
    "421", // SK
    "423", // LI
    "43",  // AT
    "44",  // GB, GG, IM, JE
    "45",  // DK
    "46",  // SE
    "47",  // NO, SJ
    "48",  // PL
    "49",  // DE
    "500", // FK
    "501", // BZ
    "502", // GT
    "503", // SV
    "504", // HN
    "505", // NI
    "506", // CR
    "507", // PA
    "508", // PM
    "509", // HT
    "51",  // PE
    "52",  // MX
    "53",  // CU
    "54",  // AR
    "55",  // BR
    "56",  // CL
    "57",  // CO
    "58",  // VE
    "590", // GP, BL, MF
    "591", // BO
    "592", // GY
    "593", // EC
    "594", // GF
    "595", // PY
    "596", // MQ
    "597", // SR
    "598", // UY
    "599", // CW, BQ
    "60",  // MY
    "61",  // AU, CC, CX
    "62",  // ID
    "63",  // PH
    "64",  // NZ
    "65",  // SG
    "66",  // TH
    "670", // TL
    "672", // NF
    "673", // BN
    "674", // NR
    "675", // PG
    "676", // TO
    "677", // SB
    "678", // VU
    "679", // FJ
    "680", // PW
    "681", // WF
    "682", // CK
    "683", // NU
    "685", // WS
    "686", // KI
    "687", // NC
    "688", // TV
    "689", // PF
    "690", // TK
    "691", // FM
    "692", // MH
    "7",   // RU, KZ
    "800", // international freephone
    "808", // international shared cost
    "81",  // JP
    "82",  // KR
    "84",  // VN
    "850", // KP
    "852", // HK
    "853", // MO
    "855", // KH
    "856", // LA
    "86",  // CN
    "870", // Inmarsat
    "878", // universal personal telecommunications
    "880", // BD
    "881", // global mobile satellite system
    "882", // international networks
    "883", // international networks
    "886", // TW
    "888", // disaster relief (OCHA)
    "90",  // TR
    "91",  // IN
    "92",  // PK
    "93",  // AF
    "94",  // LK
    "95",  // MM
    "960", // MV
    "961", // LB
    "962", // JO
    "963", // SY
    "964", // IQ
    "965", // KW
    "966", // SA
    "967", // YE
    "968", // OM
    "970", // PS
    "971", // AE
    "972", // IL
    "973", // BH
    "974", // QA
    "975", // BT
    "976", // MN
    "977", // NP
    "979", // international premium rate
    "98",  // IR
    "991", // ITPCS trial service
    "992", // TJ
    "993", // TM
    "994", // AZ
    "995", // GE
    "996", // KG
    "997", // KZ, assigned for a planned move from +7
    "998", // UZ
];

/// Bare digits of a number or allowlist entry: an optional leading `+`, then ASCII digits only.
fn bare_digits(s: &str) -> Option<&str> {
    let s = s.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// The calling code of a number given as its E.164 digits (`"20123456789"` -> `"20"`);
/// `None` when it starts with no assigned code, has no digits after it, or is not digits.
pub fn calling_code(digits: &str) -> Option<&'static str> {
    let digits = bare_digits(digits)?;
    (1..=3).filter(|&len| len < digits.len()).find_map(|len| {
        let head = &digits[..len];
        CODES.binary_search(&head).ok().map(|i| CODES[i])
    })
}

/// True when `entry` is a calling code (`"20"`, `"+44"`) or a longer prefix that starts with
/// one (`"1876"`): what an allowlist may hold.
pub fn is_valid_entry(entry: &str) -> bool {
    bare_digits(entry)
        .is_some_and(|e| (1..=e.len().min(3)).any(|len| CODES.binary_search(&&e[..len]).is_ok()))
}

/// True when the number may receive messages under `allowed`: an empty list allows every
/// number; otherwise the number must have a calling code and start with an entry that is that
/// code or longer (so `"2"` allows nothing, `"1"` all of the NANP, `"1876"` only Jamaica).
pub fn is_allowed(digits: &str, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let (Some(number), Some(code)) = (bare_digits(digits), calling_code(digits)) else {
        return false;
    };
    allowed.iter().any(|entry| {
        bare_digits(entry).is_some_and(|e| e.len() >= code.len() && number.starts_with(e))
    })
}

/// The first `len` characters of `digits` (the whole string when shorter): the key of a
/// per-prefix velocity cap.
pub fn prefix(digits: &str, len: usize) -> &str {
    digits
        .char_indices()
        .nth(len)
        .map_or(digits, |(end, _)| &digits[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn finds_the_calling_code_of_numbers_in_every_zone() {
        let cases = [
            ("20123456789", "20"),
            ("14155550100", "1"),
            ("18765550100", "1"),
            ("447700900123", "44"),
            ("8613800138000", "86"),
            ("971501234567", "971"),
            ("79161234567", "7"),
            ("77011234567", "7"),
            ("27821234567", "27"),
            ("2348031234567", "234"),
            ("351912345678", "351"),
            ("5511987654321", "55"),
            ("59891234567", "598"),
            ("6421123456", "64"),
            ("6701234567", "670"),
            ("85291234567", "852"),
            ("88612345678", "886"),
            ("919812345678", "91"),
            ("966501234567", "966"),
            ("998901234567", "998"),
            ("80012345678", "800"),
            ("+447700900123", "44"),
        ];
        for (number, code) in cases {
            assert_eq!(calling_code(number), Some(code), "{number}");
        }
    }

    #[test]
    fn unassigned_codes_and_junk_have_no_calling_code() {
        for number in [
            "2101234567", // 210 is spare
            "2801234567", // 28x is spare
            "3841234567", // 384 is spare
            "4221234567", // 422 is spare
            "6711234567", // 671 went to the NANP (+1 671)
            "6841234567", // 684 went to the NANP (+1 684)
            "8351234567", // 83x is spare
            "9691234567", // 969 is spare
            "9991234567", // 999 is spare
            "0123456789", // no code starts with 0
            "",
            "+",
            "20", // a code alone is not a number
            "2012345678x",
            "20 123456789",
        ] {
            assert_eq!(calling_code(number), None, "{number:?}");
        }
    }

    #[test]
    fn the_table_is_sorted_and_prefix_free() {
        assert_eq!(CODES.len(), 218);
        for pair in CODES.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        for a in CODES {
            assert!((1..=3).contains(&a.len()) && !a.starts_with('0'), "{a}");
            for b in CODES {
                assert!(a == b || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
    }

    #[test]
    fn an_empty_allowlist_allows_everything() {
        assert!(is_allowed("20123456789", &[]));
        assert!(is_allowed("2801234567", &[]));
    }

    #[test]
    fn allowlist_entries_are_calling_codes_with_an_optional_plus() {
        let allowed = list(&["20", "+44", " 971 "]);
        assert!(is_allowed("20123456789", &allowed));
        assert!(is_allowed("447700900123", &allowed));
        assert!(is_allowed("971501234567", &allowed));
        assert!(!is_allowed("14155550100", &allowed));
        assert!(!is_allowed("2801234567", &allowed));
        assert!(!is_allowed("not a number", &allowed));
    }

    #[test]
    fn shorter_entries_never_widen_and_longer_entries_narrow() {
        // "2" is not a code: it must not allow all of zone 2.
        assert!(!is_allowed("20123456789", &list(&["2"])));
        assert!(!is_allowed("971501234567", &list(&["97"])));
        let jamaica = list(&["1876"]);
        assert!(is_allowed("18765550100", &jamaica));
        assert!(!is_allowed("14155550100", &jamaica));
        assert!(is_allowed("14155550100", &list(&["1"])));
        // Russia and Kazakhstan share 7: "7" allows both, "77" Kazakhstan's mobiles only.
        assert!(is_allowed("77011234567", &list(&["7"])));
        assert!(!is_allowed("79161234567", &list(&["77"])));
        assert!(!is_allowed("20123456789", &list(&["", "+", "x20"])));
    }

    #[test]
    fn valid_entries_start_with_a_calling_code() {
        for entry in ["1", "+1", "20", "1876", "+971", "7"] {
            assert!(is_valid_entry(entry), "{entry}");
        }
        for entry in ["", "+", "2", "97", "28", "0", "20a", "++20"] {
            assert!(!is_valid_entry(entry), "{entry:?}");
        }
    }

    #[test]
    fn prefix_takes_the_first_digits_or_all_of_them() {
        assert_eq!(prefix("20123456789", 5), "20123");
        assert_eq!(prefix("20123456789", 0), "");
        assert_eq!(prefix("2012", 5), "2012");
        assert_eq!(prefix("2012", 4), "2012");
        assert_eq!(prefix("", 3), "");
        assert_eq!(prefix("é1234", 2), "é1");
    }
}
