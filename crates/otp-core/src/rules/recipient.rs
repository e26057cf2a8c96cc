//! One canonical form for a recipient: the digits of its E.164 number.
//!
//! `+20123456789`, `20123456789`, `20123456789@c.us` and `+20 123-456-789` are the same
//! recipient: Durable Object names, limits and lockouts use [`Recipient`], so no spelling of a
//! number escapes a cap. Responses print it back in the form their API uses.

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
        Ok(Self(digits))
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
