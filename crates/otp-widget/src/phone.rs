//! The phone step's numbers: a country selector's table (every region with a calling code) and
//! the conversion of what a person types into E.164. A number typed with a leading `+` (or the
//! international prefix `00`) is taken as it is and overrides the selector; anything else is a
//! national number of the selected region, its trunk prefix dropped, so "612 345 678" with Spain
//! selected is `+34612345678` and never `+61…` (Australia). With no region selected, such a
//! number is refused with a request to choose one: the widget never guesses a country code from
//! the digits.

/// Every region (ISO 3166-1 alpha-2, plus AC, TA and XK as CLDR names them) and its calling
/// code, packed as letters then digits and sorted by region: 245 regions in about 1.1 KB. Codes
/// agree with `otp_core::rules::country` (a test checks it); NANP members are all `1`.
pub const TABLE: &str = "AC247AD376AE971AF93AG1AI1AL355AM374AO244AR54AS1AT43AU61AW297AX358AZ994BA387BB1BD880BE32BF226BG359BH973BI257BJ229BL590BM1BN673BO591BQ599BR55BS1BT975BW267BY375BZ501CA1CC61CD243CF236CG242CH41CI225CK682CL56CM237CN86CO57CR506CU53CV238CW599CX61CY357CZ420DE49DJ253DK45DM1DO1DZ213EC593EE372EG20EH212ER291ES34ET251FI358FJ679FK500FM691FO298FR33GA241GB44GD1GE995GF594GG44GH233GI350GL299GM220GN224GP590GQ240GR30GT502GU1GW245GY592HK852HN504HR385HT509HU36ID62IE353IL972IM44IN91IO246IQ964IR98IS354IT39JE44JM1JO962JP81KE254KG996KH855KI686KM269KN1KP850KR82KW965KY1KZ7LA856LB961LC1LI423LK94LR231LS266LT370LU352LV371LY218MA212MC377MD373ME382MF590MG261MH692MK389ML223MM95MN976MO853MP1MQ596MR222MS1MT356MU230MV960MW265MX52MY60MZ258NA264NC687NE227NF672NG234NI505NL31NO47NP977NR674NU683NZ64OM968PA507PE51PF689PG675PH63PK92PL48PM508PR1PS970PT351PW680PY595QA974RE262RO40RS381RU7RW250SA966SB677SC248SD249SE46SG65SH290SI386SJ47SK421SL232SM378SN221SO252SR597SS211ST239SV503SX1SY963SZ268TA290TC1TD235TG228TH66TJ992TK690TL670TM993TN216TO676TR90TT1TV688TW886TZ255UA380UG256US1UY598UZ998VA39VC1VE58VG1VI1VN84VU678WF681WS685XK383YE967YT262ZA27ZM260ZW263";

/// For a code several regions share, the region a bare `+1…`, `+7…`, `+212…` or `+358…` shows
/// when the selector holds none of them (otherwise the first in the table: GB for +44, AU for
/// +61, IT for +39).
const MAIN: [&str; 4] = ["US", "RU", "MA", "FI"];

/// Regions whose national numbers keep their leading 0 in E.164 (no trunk prefix to drop).
const KEEP_ZERO: [&str; 5] = ["IT", "VA", "SM", "CI", "CG"];

/// Why a typed number cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum PhoneError {
    /// A national number (no `+`) and no region selected.
    NeedCountry,
    /// Not a phone number: a stray character, too short or long, or no such calling code.
    Invalid,
}

// The table is read by byte offsets and strings are cut with `get`: this module stays small in
// Wasm (iterator adapters and panicking slices would each add code, the latter several KB).

/// The table entry at byte `at`: its region, its code and the next entry's offset.
fn entry(at: usize) -> Option<(&'static str, &'static str, usize)> {
    let region = TABLE.get(at..at + 2)?;
    let mut end = at + 2;
    while TABLE.as_bytes().get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    Some((region, TABLE.get(at + 2..end)?, end))
}

/// The first entry that `f` accepts.
fn find(f: &dyn Fn(&str, &str) -> bool) -> Option<(&'static str, &'static str)> {
    let mut at = 0;
    while let Some((region, code, next)) = entry(at) {
        if f(region, code) {
            return Some((region, code));
        }
        at = next;
    }
    None
}

/// Every region and its calling code, in table order.
pub fn regions() -> impl Iterator<Item = (&'static str, &'static str)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (region, code, next) = entry(at)?;
        at = next;
        Some((region, code))
    })
}

/// A region (any case) as the table spells it, and its calling code (`"es"` -> `("ES", "34")`).
pub fn lookup(region: &str) -> Option<(&'static str, &'static str)> {
    find(&|r, _| r.eq_ignore_ascii_case(region))
}

/// The calling code an E.164 number (digits, no `+`) starts with (codes are prefix-free), and
/// the first region that has it.
fn by_code(digits: &str) -> Option<(&'static str, &'static str)> {
    find(&|_, code| digits.starts_with(code))
}

/// The region an E.164 number (digits, no `+`) belongs to, for the selector: `current` when it
/// shares the number's calling code (+1 typed with Canada selected stays Canada), else the
/// code's main region.
pub fn region_of(digits: &str, current: &str) -> Option<&'static str> {
    let (first, code) = by_code(digits)?;
    let shares = |r: &str| lookup(r).filter(|(_, c)| *c == code).map(|(r, _)| r);
    shares(current)
        .or_else(|| MAIN.iter().find_map(|r| shares(r)))
        .or(Some(first))
}

/// The region of a BCP 47 language tag, when it names one (`es-ES`, `zh-Hant-TW` -> `TW`;
/// `es`, `es-419` -> none).
pub fn region_from_locale(tag: &str) -> Option<&'static str> {
    for sub in tag.split(['-', '_']).skip(1) {
        match sub.len() {
            0 | 1 => return None,
            2 => return lookup(sub).map(|(r, _)| r),
            _ => {}
        }
    }
    None
}

/// The flag emoji of a region (regional indicator symbols; some systems show the letters).
pub fn flag(region: &str) -> String {
    region
        .bytes()
        .map(|b| match b.to_ascii_uppercase() {
            b @ b'A'..=b'Z' => char::from_u32(0x1F1E6 + u32::from(b - b'A')).unwrap_or('?'),
            _ => '?',
        })
        .collect()
}

/// The digits of a number typed in international form (`+…` or `00…`), without that prefix.
pub fn international(input: &str) -> Option<String> {
    let input = input.trim_start();
    let rest = input
        .strip_prefix('+')
        .or_else(|| input.strip_prefix("00"))?;
    Some(rest.chars().filter(char::is_ascii_digit).collect())
}

/// What a person typed, as E.164 (`+` and digits), with `region` the selector's choice (`""`
/// for none). Spaces, dashes, dots, slashes and brackets are ignored.
pub fn to_e164(input: &str, region: &str) -> Result<String, PhoneError> {
    let input = input.trim();
    let body = input.strip_prefix('+').unwrap_or(input);
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || " -./()\u{a0}".contains(c))
    {
        return Err(PhoneError::Invalid);
    }
    let full = match international(input) {
        Some(digits) => digits,
        None => {
            let digits: String = body.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err(PhoneError::Invalid);
            }
            let (region, code) = lookup(region).ok_or(PhoneError::NeedCountry)?;
            let long = digits.len() == 11;
            let national = match code {
                "1" if long => digits.strip_prefix('1'),
                "7" if long => digits.strip_prefix('8'),
                "1" | "7" => None,
                _ if KEEP_ZERO.contains(&region) => None,
                _ => digits.strip_prefix('0'),
            };
            format!("{code}{}", national.unwrap_or(&digits))
        }
    };
    let nanp_ok = !full.starts_with('1') || full.len() == 11;
    if (8..=15).contains(&full.len())
        && !full.starts_with('0')
        && nanp_ok
        && by_code(&full).is_some()
    {
        Ok(format!("+{full}"))
    } else {
        Err(PhoneError::Invalid)
    }
}

/// An E.164 number with its calling code set apart, for people to check: `+34 612345678`.
pub fn display(e164: &str) -> String {
    let digits = e164.trim_start_matches('+');
    match by_code(digits) {
        Some((_, code)) => format!("+{code} {}", digits.get(code.len()..).unwrap_or_default()),
        None => e164.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_unique_and_its_codes_are_assigned_calling_codes() {
        let all: Vec<_> = regions().collect();
        assert_eq!(all.len(), 245);
        for pair in all.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{pair:?}");
        }
        for (r, code) in &all {
            assert!(r.bytes().all(|b| b.is_ascii_uppercase()), "{r}");
            let number = format!("{code}5550100");
            assert_eq!(
                otp_core::rules::country::calling_code(&number),
                Some(*code),
                "{r} +{code}"
            );
        }
        for r in MAIN.iter().chain(KEEP_ZERO.iter()) {
            assert_eq!(lookup(r).map(|(t, _)| t), Some(*r));
        }
        assert_eq!(lookup("es"), Some(("ES", "34")));
        assert_eq!(lookup("ZZ"), None);
        assert_eq!(lookup("E"), None);
    }

    #[test]
    fn national_numbers_take_the_selected_countrys_code() {
        for (input, region, want) in [
            ("612 345 678", "ES", Ok("+34612345678")),
            ("612345678", "es", Ok("+34612345678")),
            ("07400 123456", "GB", Ok("+447400123456")),
            ("030 1234567", "DE", Ok("+49301234567")),
            ("06 12 34 56 78", "FR", Ok("+33612345678")),
            ("06 6982 1234", "IT", Ok("+390669821234")),
            ("(415) 555-0100", "US", Ok("+14155550100")),
            ("1 415 555 0100", "CA", Ok("+14155550100")),
            ("8 912 345 67 89", "RU", Ok("+79123456789")),
            ("010 1234 5678", "EG", Ok("+201012345678")),
            ("555-0100", "US", Err(PhoneError::Invalid)),
            ("612 345 678", "", Err(PhoneError::NeedCountry)),
            ("612 345 678", "ZZ", Err(PhoneError::NeedCountry)),
            ("", "ES", Err(PhoneError::Invalid)),
            ("612-345-67a", "ES", Err(PhoneError::Invalid)),
            ("123", "ES", Err(PhoneError::Invalid)),
        ] {
            assert_eq!(
                to_e164(input, region),
                want.map(str::to_owned),
                "{input} in {region}"
            );
        }
    }

    #[test]
    fn a_leading_plus_or_00_overrides_the_selector() {
        for (input, region, want) in [
            ("+34 612 345 678", "AU", Ok("+34612345678")),
            ("+1 (415) 555-0100", "", Ok("+14155550100")),
            ("0034 612 345 678", "US", Ok("+34612345678")),
            ("+20 10 1234 5678", "ES", Ok("+201012345678")),
            ("+0123456789", "ES", Err(PhoneError::Invalid)),
            ("+1234567", "ES", Err(PhoneError::Invalid)),
            ("+1234567890123456", "ES", Err(PhoneError::Invalid)),
            ("+1415555010", "ES", Err(PhoneError::Invalid)),
            ("+999 1234 5678", "ES", Err(PhoneError::Invalid)),
            ("+", "ES", Err(PhoneError::Invalid)),
        ] {
            assert_eq!(
                to_e164(input, region),
                want.map(str::to_owned),
                "{input} in {region}"
            );
        }
    }

    #[test]
    fn typed_numbers_show_their_region() {
        assert_eq!(region_of("34612345678", "US"), Some("ES"));
        assert_eq!(region_of("14155550100", "ES"), Some("US"));
        assert_eq!(region_of("14165550100", "CA"), Some("CA"));
        assert_eq!(region_of("447400123456", ""), Some("GB"));
        assert_eq!(region_of("447781123456", "JE"), Some("JE"));
        assert_eq!(region_of("79123456789", ""), Some("RU"));
        assert_eq!(region_of("3", ""), None);
        assert_eq!(region_of("999", ""), None);
    }

    #[test]
    fn locales_give_a_region_only_when_they_name_one() {
        assert_eq!(region_from_locale("es-ES"), Some("ES"));
        assert_eq!(region_from_locale("en_GB"), Some("GB"));
        assert_eq!(region_from_locale("zh-Hant-TW"), Some("TW"));
        assert_eq!(region_from_locale("ar-eg"), Some("EG"));
        assert_eq!(region_from_locale("es"), None);
        assert_eq!(region_from_locale("es-419"), None);
        assert_eq!(region_from_locale("en-US-u-ca-gregory"), Some("US"));
        assert_eq!(region_from_locale(""), None);
    }

    #[test]
    fn international_input_is_plus_or_00() {
        assert_eq!(international(" +34 612").as_deref(), Some("34612"));
        assert_eq!(international("0034 612").as_deref(), Some("34612"));
        assert_eq!(international("612"), None);
    }

    #[test]
    fn flags_and_display() {
        assert_eq!(flag("ES"), "🇪🇸");
        assert_eq!(display("+34612345678"), "+34 612345678");
        assert_eq!(display("+14155550100"), "+1 4155550100");
    }
}
