//! Callback URL safety: the service fetches URLs its clients give it (generate-link's
//! `callback.success` and `callback.failed`), so a URL must not reach the service's own
//! network, a cloud metadata endpoint or a private address (SSRF).
//!
//! The check runs on the URL as the WHATWG parser (the `url` crate, as `fetch` does) reads it,
//! so the odd spellings of an address (`http://2130706433/`, `0x7f.1`, `0177.0.0.1`,
//! `[::ffff:127.0.0.1]`) are judged by the address they normalise to. Names are not resolved
//! (there is no DNS here): a public name pointing at a private address is the network's to
//! refuse; this check removes everything that is private by its spelling alone.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Longest callback URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a callback URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not an absolute URL.
    Unparsable,
    /// Longer than [`MAX_URL_LEN`].
    TooLong,
    /// Not `https` (nor `http` to a loopback host when that is allowed).
    NotHttps,
    /// Carries `user:password@`.
    Credentials,
    /// A name that only means something inside a network (`localhost`, `*.internal`, …).
    LocalName,
    /// An address literal in a private, loopback, link-local or reserved range.
    PrivateAddress,
}

impl fmt::Display for UrlRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unparsable => f.write_str("callback url is not a valid absolute url"),
            Self::TooLong => write!(f, "callback url is longer than {MAX_URL_LEN} bytes"),
            Self::NotHttps => f.write_str("callback url must use https"),
            Self::Credentials => f.write_str("callback url must not contain credentials"),
            Self::LocalName => f.write_str("callback url points to a local host name"),
            Self::PrivateAddress => f.write_str("callback url points to a private address"),
        }
    }
}

impl std::error::Error for UrlRefusal {}

/// Suffixes of names that resolve only inside a network (`metadata.google.internal` among them).
const LOCAL_SUFFIXES: [&str; 5] = ["local", "internal", "localdomain", "home.arpa", "lan"];

/// How a host is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Public,
    Loopback,
    LocalName,
    Private,
}

/// Refuses a callback URL that is not `https`, carries credentials, or names a local host or
/// a non-public address. With `allow_loopback` (local tests only), `http` and `https` to
/// `localhost`, `*.localhost`, 127/8 and `::1` are accepted; every other range stays refused.
pub fn check_callback_url(url: &str, allow_loopback: bool) -> Result<(), UrlRefusal> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong);
    }
    let parsed = Url::parse(url).map_err(|_| UrlRefusal::Unparsable)?;
    let scheme = parsed.scheme();
    if scheme != "https" && scheme != "http" {
        return Err(UrlRefusal::NotHttps);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let (verdict, is_name) = match parsed.host() {
        Some(Host::Domain(name)) => (name_verdict(name), true),
        Some(Host::Ipv4(ip)) => (v4_verdict(ip), false),
        Some(Host::Ipv6(ip)) => (v6_verdict(ip), false),
        None => return Err(UrlRefusal::Unparsable),
    };
    let loopback_ok = allow_loopback && verdict == Verdict::Loopback;
    if scheme == "http" && !loopback_ok {
        return Err(UrlRefusal::NotHttps);
    }
    match verdict {
        Verdict::Public => Ok(()),
        Verdict::Loopback if loopback_ok => Ok(()),
        Verdict::Loopback | Verdict::LocalName if is_name => Err(UrlRefusal::LocalName),
        _ => Err(UrlRefusal::PrivateAddress),
    }
}

fn name_verdict(name: &str) -> Verdict {
    // The parser lowercases names; a trailing dot (the DNS root) names the same host.
    let name = name.strip_suffix('.').unwrap_or(name);
    let has_suffix = |suffix: &str| {
        name == suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    };
    if has_suffix("localhost") {
        Verdict::Loopback
    } else if LOCAL_SUFFIXES.iter().any(|s| has_suffix(s)) || !name.contains('.') {
        // A single label (`http://intranet/`) is completed by the resolver's search domains.
        Verdict::LocalName
    } else {
        Verdict::Public
    }
}

fn v4_verdict(ip: Ipv4Addr) -> Verdict {
    let [a, b, c, _] = ip.octets();
    if a == 127 {
        return Verdict::Loopback;
    }
    let private = a == 0 // "this network"
        || a == 10
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, broadcast
    if private {
        Verdict::Private
    } else {
        Verdict::Public
    }
}

/// The IPv4 address a translated or embedding IPv6 address reaches, if any.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped `::ffff:a.b.c.d` and the deprecated IPv4-compatible `::a.b.c.d`.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        // NAT64 well-known prefix `64:ff9b::/96`.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        // 6to4 `2002:a.b.c.d::/48`.
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

fn v6_verdict(ip: Ipv6Addr) -> Verdict {
    if ip == Ipv6Addr::LOCALHOST {
        return Verdict::Loopback;
    }
    let s = ip.segments();
    let private = ip.is_unspecified()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]); // discard-only 100::/64
    if private {
        return Verdict::Private;
    }
    match embedded_v4(ip).map(v4_verdict) {
        // A translated loopback address is never the local loopback: refuse it outright.
        Some(Verdict::Public) | None => Verdict::Public,
        Some(_) => Verdict::Private,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use UrlRefusal::*;

    type Outcome = Result<(), UrlRefusal>;

    /// `(url, verdict without loopback, verdict with allow_loopback)`.
    const CASES: &[(&str, Outcome, Outcome)] = &[
        // Public names and addresses.
        ("https://example.com/otp/callback", Ok(()), Ok(())),
        ("https://api.example.com:8443/cb?x=1#f", Ok(()), Ok(())),
        ("https://EXAMPLE.com./cb", Ok(()), Ok(())),
        ("https://8.8.8.8/cb", Ok(()), Ok(())),
        ("https://[2606:4700:4700::1111]/cb", Ok(()), Ok(())),
        ("https://[::ffff:8.8.8.8]/", Ok(()), Ok(())),
        ("https://[64:ff9b::808:808]/", Ok(()), Ok(())),
        ("https://100.128.0.1/", Ok(()), Ok(())),
        ("https://172.32.0.1/", Ok(()), Ok(())),
        ("https://11.0.0.1/", Ok(()), Ok(())),
        ("https://223.255.255.255/", Ok(()), Ok(())),
        // Non-ASCII hosts are refused: the Worker links the ASCII-only IDNA back end.
        (
            "https://مثال.example/",
            Err(UrlRefusal::Unparsable),
            Err(UrlRefusal::Unparsable),
        ),
        ("https://xn--mgbh0fb.example/", Ok(()), Ok(())),
        ("https://my.localhost.example.com/", Ok(()), Ok(())),
        // Not parsable, too long.
        ("", Err(Unparsable), Err(Unparsable)),
        ("example.com/cb", Err(Unparsable), Err(Unparsable)),
        ("https://", Err(Unparsable), Err(Unparsable)),
        ("https://exa mple.com/", Err(Unparsable), Err(Unparsable)),
        ("https://[::1/", Err(Unparsable), Err(Unparsable)),
        ("https://256.0.0.1/", Err(Unparsable), Err(Unparsable)),
        // Scheme.
        ("http://example.com/cb", Err(NotHttps), Err(NotHttps)),
        ("ftp://example.com/cb", Err(NotHttps), Err(NotHttps)),
        ("javascript:alert(1)", Err(NotHttps), Err(NotHttps)),
        ("data:text/plain,hi", Err(NotHttps), Err(NotHttps)),
        ("file:///etc/passwd", Err(NotHttps), Err(NotHttps)),
        ("ftp://user:pass@10.0.0.1/", Err(NotHttps), Err(NotHttps)),
        ("ws://example.com/", Err(NotHttps), Err(NotHttps)),
        ("http://10.0.0.1/", Err(NotHttps), Err(NotHttps)),
        // Credentials.
        (
            "https://user:pass@example.com/",
            Err(Credentials),
            Err(Credentials),
        ),
        (
            "https://user@example.com/",
            Err(Credentials),
            Err(Credentials),
        ),
        (
            "https://:pass@example.com/",
            Err(Credentials),
            Err(Credentials),
        ),
        (
            "https://example.com@127.0.0.1/",
            Err(Credentials),
            Err(Credentials),
        ),
        // Local names.
        ("https://localhost/", Err(LocalName), Ok(())),
        ("https://LOCALHOST./", Err(LocalName), Ok(())),
        ("http://localhost:8787/cb", Err(NotHttps), Ok(())),
        ("http://app.localhost:8787/cb", Err(NotHttps), Ok(())),
        ("https://printer.local/", Err(LocalName), Err(LocalName)),
        (
            "https://metadata.google.internal/computeMetadata/v1/",
            Err(LocalName),
            Err(LocalName),
        ),
        ("https://db.internal/", Err(LocalName), Err(LocalName)),
        ("https://router.home.arpa/", Err(LocalName), Err(LocalName)),
        ("https://nas.localdomain/", Err(LocalName), Err(LocalName)),
        ("https://intranet/", Err(LocalName), Err(LocalName)),
        ("https://metadata/", Err(LocalName), Err(LocalName)),
        ("http://printer.local/", Err(NotHttps), Err(NotHttps)),
        // IPv4 loopback, in every spelling the WHATWG parser folds to it.
        ("https://127.0.0.1/", Err(PrivateAddress), Ok(())),
        ("http://127.0.0.1:8787/cb", Err(NotHttps), Ok(())),
        ("https://127.255.255.254/", Err(PrivateAddress), Ok(())),
        ("http://2130706433/", Err(NotHttps), Ok(())),
        ("https://2130706433/", Err(PrivateAddress), Ok(())),
        ("https://0x7f.1/", Err(PrivateAddress), Ok(())),
        ("https://0177.0.0.1/", Err(PrivateAddress), Ok(())),
        ("https://0x7f000001/", Err(PrivateAddress), Ok(())),
        ("https://127.1/", Err(PrivateAddress), Ok(())),
        ("https://%31%32%37.0.0.1/", Err(PrivateAddress), Ok(())),
        // IPv4 private and reserved ranges.
        ("https://0.0.0.0/", Err(PrivateAddress), Err(PrivateAddress)),
        ("https://0/", Err(PrivateAddress), Err(PrivateAddress)),
        (
            "https://0.255.255.255/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://10.0.0.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://10.255.255.255/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        ("https://012.1/", Err(PrivateAddress), Err(PrivateAddress)),
        (
            "https://100.64.0.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://100.127.255.255/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://169.254.169.254/latest/meta-data/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            Err(NotHttps),
            Err(NotHttps),
        ),
        (
            "https://0xa9fea9fe/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://2852039166/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://172.16.0.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://172.31.255.255/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://192.0.0.8/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://192.0.2.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://192.168.1.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://198.18.0.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://198.19.255.255/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://224.0.0.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://240.0.0.1/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://255.255.255.255/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        // IPv6.
        ("https://[::1]/", Err(PrivateAddress), Ok(())),
        ("http://[::1]:8787/", Err(NotHttps), Ok(())),
        ("https://[0:0:0:0:0:0:0:1]/", Err(PrivateAddress), Ok(())),
        ("https://[::]/", Err(PrivateAddress), Err(PrivateAddress)),
        (
            "https://[fc00::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[fd12:3456:789a::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[fe80::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[febf::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[ff02::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[2001:db8::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[::ffff:127.0.0.1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[::ffff:7f00:1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[::ffff:169.254.169.254]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[::ffff:10.0.0.1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[::127.0.0.1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[::192.168.0.1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[64:ff9b::127.0.0.1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[64:ff9b::a9fe:a9fe]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[64:ff9b:1::808:808]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[2002:7f00:1::]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        (
            "https://[2002:c0a8:101::1]/",
            Err(PrivateAddress),
            Err(PrivateAddress),
        ),
        ("https://[2002:808:808::1]/", Ok(()), Ok(())),
    ];

    #[test]
    fn callback_urls_table() {
        for (url, strict, loopback) in CASES {
            assert_eq!(check_callback_url(url, false), *strict, "{url} strict");
            assert_eq!(
                check_callback_url(url, true),
                *loopback,
                "{url} allow_loopback"
            );
        }
    }

    #[test]
    fn overlong_urls_are_refused() {
        let url = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_callback_url(&url, false), Err(TooLong));
        let url = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(check_callback_url(&url, false), Ok(()));
    }

    #[test]
    fn refusals_read_as_lowercase_reasons() {
        assert_eq!(NotHttps.to_string(), "callback url must use https");
        assert_eq!(
            PrivateAddress.to_string(),
            "callback url points to a private address"
        );
        for r in [
            Unparsable,
            TooLong,
            NotHttps,
            Credentials,
            LocalName,
            PrivateAddress,
        ] {
            let s = r.to_string();
            assert_eq!(s, s.to_lowercase());
            assert!(!s.ends_with('.'));
        }
    }
}
