//! Message text with `{placeholder}`s (`{code}`, `{name}`, `{minutes}`, later `{link}`).

/// Replaces each `{key}` in `template` with its value; unknown placeholders stay as written,
/// and values are inserted verbatim (never re-scanned, so a value cannot inject a placeholder).
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let key = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, close))
        });
        match replaced {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn replaces_known_placeholders_only() {
        let v = [("code", "123456"), ("name", "Acme"), ("minutes", "30")];
        assert_eq!(
            render(
                "{code} is your {name} code, valid {minutes} min. {unknown} {",
                &v
            ),
            "123456 is your Acme code, valid 30 min. {unknown} {"
        );
    }

    #[test]
    fn values_are_not_rescanned() {
        assert_eq!(
            render("{name}", &[("name", "{code}"), ("code", "1")]),
            "{code}"
        );
    }

    #[test]
    fn repeated_and_adjacent_placeholders() {
        assert_eq!(render("{a}{a}-{b}", &[("a", "x"), ("b", "y")]), "xx-y");
        assert_eq!(render("", &[]), "");
        assert_eq!(render("{{a}}", &[("a", "x")]), "{x}");
    }
}
