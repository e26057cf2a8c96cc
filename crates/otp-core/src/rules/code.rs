//! One-time codes: their shape, their derivation from a secret, and their comparison.
//!
//! A code is never stored, not even hashed. It is derived when needed (to answer the request,
//! to deliver it, to check an attempt) as HMAC-SHA256(pepper, instance | recipient | challenge
//! id), mapped without bias onto the requested alphabet by rejection sampling.

use crate::{Recipient, Secret};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use std::fmt;

const DIGITS: &str = "0123456789";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// Which characters a code is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Alphabet {
    /// `0-9`: the default.
    Digits,
    /// `a-z`.
    Lower,
    /// `A-Z`: link codes, and letter codes with `allCapital`.
    Upper,
    /// `0-9a-z`.
    DigitsLower,
    /// `0-9A-Z`.
    DigitsUpper,
}

impl Alphabet {
    /// The alphabet Hypersender's `useLetter`, `useNumber` and `allCapital` flags describe;
    /// `None` when neither letters nor numbers are allowed.
    pub fn from_flags(use_letter: bool, use_number: bool, all_capital: bool) -> Option<Self> {
        Some(match (use_letter, use_number, all_capital) {
            (false, false, _) => return None,
            (false, true, _) => Self::Digits,
            (true, false, false) => Self::Lower,
            (true, false, true) => Self::Upper,
            (true, true, false) => Self::DigitsLower,
            (true, true, true) => Self::DigitsUpper,
        })
    }

    /// The characters, in the order the derivation maps onto.
    pub fn chars(self) -> &'static [u8] {
        match self {
            Self::Digits => DIGITS.as_bytes(),
            Self::Lower => LOWER.as_bytes(),
            Self::Upper => UPPER.as_bytes(),
            Self::DigitsLower => b"0123456789abcdefghijklmnopqrstuvwxyz",
            Self::DigitsUpper => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        }
    }

    /// True when the code has letters, so an input box must accept them.
    pub fn has_letters(self) -> bool {
        !matches!(self, Self::Digits)
    }

    fn is_upper(self) -> bool {
        matches!(self, Self::Upper | Self::DigitsUpper)
    }
}

/// The shape of a code: its length and alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSpec {
    /// Number of characters, 4 to 10 for request-code, 8 for link codes.
    pub length: u8,
    /// Characters it is drawn from.
    pub alphabet: Alphabet,
}

impl CodeSpec {
    /// Shortest and longest code lengths any API accepts.
    pub const LENGTHS: std::ops::RangeInclusive<u8> = 4..=10;

    /// The 8-uppercase-letter code of a WhatsApp link challenge (`RDYFQUBX`).
    pub const LINK: CodeSpec = CodeSpec {
        length: 8,
        alphabet: Alphabet::Upper,
    };

    /// Normalizes what a person typed: drops spaces, dashes and the invisible direction marks
    /// that right-to-left text puts around numbers, reads digits of other scripts and
    /// full-width forms as ASCII (a phone keyboard in Arabic, Persian or Hindi types `١٢٣`,
    /// `۱۲۳`, `१२३`; an East Asian input method `１２３`), and folds letters to the alphabet's
    /// single case (codes are never mixed-case, so case never matters).
    pub fn normalize_input(self, input: &str) -> String {
        input
            .chars()
            .filter(|c| !is_separator(*c))
            .map(ascii_form)
            .map(|c| {
                if self.alphabet.is_upper() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
}

/// Characters a person may type between a code's characters: spaces, dashes, and the
/// invisible marks of bidirectional text.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '-'
            | '\u{a0}'
            | '\u{2010}'..='\u{2015}'
            | '\u{2212}'
            | '\u{3000}'
            | '\u{ff0d}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{061c}'
            | '\u{feff}'
    )
}

/// The ASCII character a digit of another script, or a full-width digit or letter, stands
/// for; anything else as it is.
fn ascii_form(c: char) -> char {
    /// The zero of each block of ten digits read as ASCII digits.
    const ZEROS: [u32; 5] = [
        0x0660, // Arabic-Indic
        0x06f0, // Extended Arabic-Indic (Persian, Urdu)
        0x0966, // Devanagari
        0x09e6, // Bengali
        0xff10, // full-width
    ];
    let u = c as u32;
    if let Some(zero) = ZEROS.iter().find(|&&z| (z..z + 10).contains(&u)) {
        return char::from(b'0' + (u - zero) as u8);
    }
    match u {
        0xff21..=0xff3a => char::from(b'A' + (u - 0xff21) as u8),
        0xff41..=0xff5a => char::from(b'a' + (u - 0xff41) as u8),
        _ => c,
    }
}

/// A derived code. Its `Debug` is redacted so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// A configured code (a test number's fixed code), used as given.
    pub(crate) fn fixed(code: &str) -> Self {
        Code(code.to_owned())
    }

    /// The code's characters, for the one place that shows them (a response or a message).
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Compares what a person typed (normalized first) with this code in constant time.
    pub fn matches_input(&self, spec: CodeSpec, input: &str) -> bool {
        let typed = spec.normalize_input(input);
        // The length is public (it is in the spec), so an early return on it leaks nothing.
        crate::mac::ct_eq(typed.as_bytes(), self.0.as_bytes())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(***)")
    }
}

/// Draws a code from random bytes by the same unbiased rejection sampling as [`derive`]; for
/// codes that are public anyway (the link code travels in the wa.me link). `None` when the
/// bytes run out before the code is complete (ask for more bytes).
pub fn from_random(bytes: &[u8], spec: CodeSpec) -> Option<Code> {
    let chars = spec.alphabet.chars();
    let limit = 256 - 256 % chars.len();
    let code: String = bytes
        .iter()
        .filter(|&&b| (b as usize) < limit)
        .take(spec.length as usize)
        .map(|&b| chars[b as usize % chars.len()] as char)
        .collect();
    (code.len() == spec.length as usize).then_some(Code(code))
}

/// What a code is derived from, besides the pepper.
#[derive(Debug, Clone, Copy)]
pub struct CodeContext<'a> {
    /// The instance (tenant) id.
    pub instance: &'a str,
    /// The canonical recipient.
    pub recipient: &'a Recipient,
    /// The challenge's uuid.
    pub challenge_id: &'a str,
}

/// Derives the code of a challenge: HMAC-SHA256 blocks over a domain-separated,
/// length-prefixed message, each byte kept only when below the largest multiple of the
/// alphabet's size (so every character is equally likely), until `spec.length` are drawn.
pub fn derive(pepper: &Secret, ctx: CodeContext<'_>, spec: CodeSpec) -> Code {
    let chars = spec.alphabet.chars();
    let n = chars.len();
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(spec.length as usize);
    let mut counter: u32 = 0;
    while out.len() < spec.length as usize {
        let block = derive_block(pepper, ctx, spec, counter);
        for &b in block.iter() {
            if (b as usize) < limit && out.len() < spec.length as usize {
                out.push(chars[b as usize % n] as char);
            }
        }
        counter += 1;
    }
    Code(out)
}

fn derive_block(pepper: &Secret, ctx: CodeContext<'_>, spec: CodeSpec, counter: u32) -> [u8; 32] {
    let mut mac = crate::mac::sha256_mac(pepper.expose());
    mac.update(b"edge-otp/code/v1");
    for field in [
        ctx.instance.as_bytes(),
        ctx.recipient.digits().as_bytes(),
        ctx.challenge_id.as_bytes(),
        spec.alphabet.chars(),
    ] {
        mac.update(&(field.len() as u32).to_be_bytes());
        mac.update(field);
    }
    mac.update(&[spec.length]);
    mac.update(&counter.to_be_bytes());
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pepper() -> Secret {
        Secret::new(*b"test-pepper-0123456789abcdef-xyz").unwrap()
    }

    fn ctx<'a>(r: &'a Recipient, id: &'a str) -> CodeContext<'a> {
        CodeContext {
            instance: "9f1c2d3e-0000-4000-8000-000000000001",
            recipient: r,
            challenge_id: id,
        }
    }

    const ID: &str = "a0b5df6a-b491-4190-80a5-38d85a2a4836";

    #[test]
    fn every_length_and_alphabet_gives_the_right_shape() {
        let r = Recipient::parse("20123456789").unwrap();
        let alphabets = [
            Alphabet::Digits,
            Alphabet::Lower,
            Alphabet::Upper,
            Alphabet::DigitsLower,
            Alphabet::DigitsUpper,
        ];
        for alphabet in alphabets {
            for length in CodeSpec::LENGTHS {
                let spec = CodeSpec { length, alphabet };
                for i in 0..50 {
                    let id = format!("{ID}-{i}");
                    let code = derive(&pepper(), ctx(&r, &id), spec);
                    assert_eq!(code.reveal().len(), length as usize);
                    assert!(
                        code.reveal().bytes().all(|c| alphabet.chars().contains(&c)),
                        "{alphabet:?} {}",
                        code.reveal()
                    );
                }
            }
        }
    }

    #[test]
    fn flags_map_to_alphabets_as_hypersender_describes() {
        assert_eq!(
            Alphabet::from_flags(false, true, false),
            Some(Alphabet::Digits)
        );
        assert_eq!(
            Alphabet::from_flags(false, true, true),
            Some(Alphabet::Digits)
        );
        assert_eq!(
            Alphabet::from_flags(true, false, false),
            Some(Alphabet::Lower)
        );
        assert_eq!(
            Alphabet::from_flags(true, false, true),
            Some(Alphabet::Upper)
        );
        assert_eq!(
            Alphabet::from_flags(true, true, false),
            Some(Alphabet::DigitsLower)
        );
        assert_eq!(
            Alphabet::from_flags(true, true, true),
            Some(Alphabet::DigitsUpper)
        );
        assert_eq!(Alphabet::from_flags(false, false, true), None);
    }

    /// Vectors computed independently with Python's `hmac` module: see
    /// `scripts/kat_codes.py`, which implements the same derivation from its description.
    #[test]
    fn known_answers() {
        let r = Recipient::parse("+20123456789").unwrap();
        let cases = [
            (
                CodeSpec {
                    length: 6,
                    alphabet: Alphabet::Digits,
                },
                KAT_DIGITS_6,
            ),
            (
                CodeSpec {
                    length: 10,
                    alphabet: Alphabet::DigitsUpper,
                },
                KAT_DIGITS_UPPER_10,
            ),
            (CodeSpec::LINK, KAT_LINK),
            (
                CodeSpec {
                    length: 4,
                    alphabet: Alphabet::Lower,
                },
                KAT_LOWER_4,
            ),
        ];
        for (spec, expected) in cases {
            assert_eq!(
                derive(&pepper(), ctx(&r, ID), spec).reveal(),
                expected,
                "{spec:?}"
            );
        }
    }

    const KAT_DIGITS_6: &str = "499315";
    const KAT_DIGITS_UPPER_10: &str = "FWWX5D92KP";
    const KAT_LINK: &str = "RHTDSHLE";
    const KAT_LOWER_4: &str = "gmbe";

    #[test]
    fn codes_depend_on_every_input() {
        let r = Recipient::parse("20123456789").unwrap();
        let other = Recipient::parse("20123456780").unwrap();
        let spec = CodeSpec {
            length: 10,
            alphabet: Alphabet::DigitsUpper,
        };
        let base = derive(&pepper(), ctx(&r, ID), spec);
        assert_ne!(base, derive(&pepper(), ctx(&other, ID), spec));
        assert_ne!(base, derive(&pepper(), ctx(&r, "another-id"), spec));
        let mut c = ctx(&r, ID);
        c.instance = "another-instance";
        assert_ne!(base, derive(&pepper(), c, spec));
        let other_pepper = Secret::new(*b"another-pepper-0123456789abcdef!").unwrap();
        assert_ne!(base, derive(&other_pepper, ctx(&r, ID), spec));
    }

    #[test]
    fn digits_of_other_scripts_and_full_width_forms_count_as_ascii() {
        let digits = CodeSpec {
            length: 6,
            alphabet: Alphabet::Digits,
        };
        for typed in [
            "\u{663}\u{660}\u{661} \u{664}\u{665}\u{669}", // Arabic-Indic, with a space
            "\u{6f3}\u{6f0}\u{6f1}\u{6f4}\u{6f5}\u{6f9}",  // Persian
            "\u{969}\u{966}\u{967}\u{96a}\u{96b}\u{96f}",  // Devanagari
            "\u{ff13}\u{ff10}\u{ff11}\u{ff0d}\u{ff14}\u{ff15}\u{ff19}", // full-width, full-width dash
            "\u{2066}301459\u{2069}", // isolated by bidi marks, as RTL text does
            "\u{200f}301\u{200f}459",
            "301\u{2013}459",
        ] {
            assert_eq!(digits.normalize_input(typed), "301459", "{typed:?}");
        }
        let letters = CodeSpec {
            length: 4,
            alphabet: Alphabet::DigitsUpper,
        };
        assert_eq!(letters.normalize_input("\u{ff41}\u{ff22}\u{ff13}z"), "AB3Z");
        // Other characters stay, and so never match.
        assert_eq!(digits.normalize_input("3\u{b2}1"), "3\u{b2}1");
    }

    #[test]
    fn digits_are_uniform_enough() {
        // 20,000 digits: each of the ten should be near 2,000 (chi-square, 9 dof, p=0.001: 27.9).
        let r = Recipient::parse("20123456789").unwrap();
        let mut counts = [0u32; 10];
        for i in 0..2_000 {
            let id = format!("id-{i}");
            let code = derive(
                &pepper(),
                ctx(&r, &id),
                CodeSpec {
                    length: 10,
                    alphabet: Alphabet::Digits,
                },
            );
            for b in code.reveal().bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        let chi: f64 = counts
            .iter()
            .map(|&c| (c as f64 - 2000.0).powi(2) / 2000.0)
            .sum();
        assert!(chi < 27.9, "chi-square {chi} for {counts:?}");
    }

    #[test]
    fn input_is_normalized_before_comparison() {
        let r = Recipient::parse("20123456789").unwrap();
        let spec = CodeSpec {
            length: 8,
            alphabet: Alphabet::DigitsUpper,
        };
        let code = derive(&pepper(), ctx(&r, ID), spec);
        let s = code.reveal();
        assert!(code.matches_input(spec, s));
        assert!(code.matches_input(spec, &s.to_lowercase()));
        assert!(code.matches_input(spec, &format!("{}-{}", &s[..4], &s[4..])));
        assert!(code.matches_input(spec, &format!(" {} {} ", &s[..4], &s[4..])));
        assert!(!code.matches_input(spec, &s[..7]));
        assert!(!code.matches_input(spec, &format!("{s}0")));
        assert!(!code.matches_input(spec, ""));
    }

    #[test]
    fn random_link_codes_are_eight_capitals() {
        let code = from_random(&[0, 1, 25, 26, 233, 234, 255, 100, 7, 8], CodeSpec::LINK).unwrap();
        // 234 and 255 are rejected (>= 234, the largest multiple of 26 below 256).
        assert_eq!(code.reveal(), "ABZAZWHI");
        assert_eq!(from_random(&[255; 32], CodeSpec::LINK), None);
    }

    #[test]
    fn debug_does_not_print_the_code() {
        let r = Recipient::parse("20123456789").unwrap();
        let code = derive(&pepper(), ctx(&r, ID), CodeSpec::LINK);
        assert_eq!(format!("{code:?}"), "Code(***)");
    }
}
