//! One canonical form for a recipient: the digits of its E.164 number.
//!
//! `+20123456789`, `20123456789`, `20123456789@c.us` and `+20 123-456-789` are the same
//! recipient: Durable Object names, limits and lockouts use [`Recipient`], so no spelling of a
//! number escapes a cap. Responses print it back in the form their API uses.
//!
//! Two countries have two spellings that reach one WhatsApp account, and each spelling would
//! otherwise be a recipient with its own limits (twice the guesses for an attacker): a
//! Brazilian mobile number with and without its ninth digit (`55 11 9xxxx-xxxx`, and
//! `55 11 xxxx-xxxx` as older WhatsApp ids still write it), and a Mexican mobile with and
//! without the `1` after `52` (`521 55 ...`, dropped from dialling in 2019). The canonical form
//! is the current one: Brazil with the 9, Mexico without the 1.

use std::fmt;

/// A phone number reduced to its E.164 digits (country code first, no `+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Recipient(String);

/// Why a chat id or phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientError {
    /// Empty after trimming.
    Empty,
    /// A WhatsApp id that is not a person's chat (`@g.us` groups, `@broadcast`, ...).
    NotAPersonalChat,
    /// Characters other than digits, one leading `+`, spaces, dashes, dots and brackets.
    InvalidCharacters,
    /// Fewer than 8 or more than 15 digits (E.164 allows at most 15), or a leading zero.
    InvalidLength,
}

impl fmt::Display for RecipientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty",
            Self::NotAPersonalChat => "is not a personal WhatsApp chat id",
            Self::InvalidCharacters => "contains characters that are not part of a phone number",
            Self::InvalidLength => "is not a phone number in international format",
        })
    }
}

impl Recipient {
    /// Parses a WhatsApp chat id (`<digits>@c.us`, `<digits>@s.whatsapp.net`) or a phone number
    /// in international form, with or without `+`, tolerating spaces, dashes, dots and brackets.
    pub fn parse(input: &str) -> Result<Self, RecipientError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RecipientError::Empty);
        }
        let number = match input.split_once('@') {
            Some((user, "c.us" | "s.whatsapp.net")) => user,
            Some(_) => return Err(RecipientError::NotAPersonalChat),
            None => input,
        };
        let number = number.strip_prefix('+').unwrap_or(number);
        let mut digits = String::with_capacity(number.len());
        for c in number.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(RecipientError::InvalidCharacters),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(RecipientError::InvalidLength);
        }
        Ok(Self(canonical_alias(digits)))
    }

    /// The bare digits (`20123456789`): the canonical key.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// E.164 with the plus sign (`+20123456789`).
    pub fn e164(&self) -> String {
        format!("+{}", self.0)
    }

    /// The WhatsApp chat id (`20123456789@c.us`), as Hypersender prints recipients.
    pub fn chat_id(&self) -> String {
        format!("{}@c.us", self.0)
    }
}

/// The current spelling of a number that has two (see the module doc).
fn canonical_alias(mut digits: String) -> String {
    let b = digits.as_bytes();
    // Brazil: 55 + area code (2 digits) + an 8-digit mobile number (starting 6-9, the ones that
    // took a leading 9 in 2012-2016) -> the 9-digit form.
    if b.len() == 12 && digits.starts_with("55") && (b'6'..=b'9').contains(&b[4]) {
        digits.insert(4, '9');
    // Mexico: 521 + 10 digits -> 52 + 10 digits.
    } else if b.len() == 13 && digits.starts_with("521") {
        digits.remove(2);
    }
    digits
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn brazil_and_mexico_aliases_are_one_recipient() {
        for (a, b, canonical) in [
            ("+55 11 98765-4321", "551187654321@c.us", "5511987654321"),
            ("5521976543210", "+55 21 7654-3210", "5521976543210"),
            ("+52 1 55 1234 5678", "525512345678", "525512345678"),
            ("5215512345678@c.us", "+52 55 1234 5678", "525512345678"),
        ] {
            assert_eq!(Recipient::parse(a).unwrap().digits(), canonical, "{a}");
            assert_eq!(Recipient::parse(b).unwrap().digits(), canonical, "{b}");
        }
        // A Brazilian landline (8 digits starting 2-5) has no ninth digit; other countries and
        // lengths are as typed.
        assert_eq!(
            Recipient::parse("551132654321").unwrap().digits(),
            "551132654321"
        );
        assert_eq!(
            Recipient::parse("5511987654321").unwrap().digits(),
            "5511987654321"
        );
        assert_eq!(
            Recipient::parse("52155123456").unwrap().digits(),
            "52155123456"
        );
        assert_eq!(
            Recipient::parse("20123456789").unwrap().digits(),
            "20123456789"
        );
    }

    #[test]
    fn every_spelling_of_a_number_is_one_recipient() {
        for spelling in [
            "20123456789",
            "+20123456789",
            "20123456789@c.us",
            "+20123456789@c.us",
            "20123456789@s.whatsapp.net",
            " +20 123-456-789 ",
            "+20 (123) 456.789",
        ] {
            let r = Recipient::parse(spelling).unwrap();
            assert_eq!(r.digits(), "20123456789", "{spelling}");
            assert_eq!(r.chat_id(), "20123456789@c.us");
            assert_eq!(r.e164(), "+20123456789");
        }
    }

    #[test]
    fn refuses_what_is_not_a_personal_number() {
        let cases = [
            ("", RecipientError::Empty),
            ("   ", RecipientError::Empty),
            ("120363040000000000@g.us", RecipientError::NotAPersonalChat),
            ("status@broadcast", RecipientError::NotAPersonalChat),
            ("2012345678x", RecipientError::InvalidCharacters),
            ("++20123456789", RecipientError::InvalidCharacters),
            ("20-1234", RecipientError::InvalidLength),
            ("1234567890123456", RecipientError::InvalidLength),
            ("0123456789", RecipientError::InvalidLength),
        ];
        for (input, err) in cases {
            assert_eq!(Recipient::parse(input), Err(err), "{input:?}");
        }
    }
}
