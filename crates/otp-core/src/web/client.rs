//! Who is asking, as a rate limit counts them: the client's network.

use std::net::{IpAddr, Ipv6Addr};

/// The key a per-address rate limit counts a client under: an IPv4 address as it is, an IPv6
/// address as its /64 (`2001:db8:1:2::/64`), since one subscriber commonly holds a whole /64
/// and picks a fresh address from it at will. An IPv4-mapped IPv6 address counts as its IPv4
/// address. Anything that is not an address (`local` in tests) is its own key.
pub fn rate_key(ip: &str) -> String {
    match ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        Err(_) => ip.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key() {
        for (ip, key) in [
            ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
            ("2001:0DB8:0001:0002:a:b:c:d", "2001:db8:1:2::/64"),
            ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("203.0.113.7", "203.0.113.7"),
            (" 203.0.113.7 ", "203.0.113.7"),
            ("local", "local"),
        ] {
            assert_eq!(rate_key(ip), key, "{ip}");
        }
    }
}
