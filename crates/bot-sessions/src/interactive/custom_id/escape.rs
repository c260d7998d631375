//! Escaping of components and tokens: `%` and the separator become `%25` and `%3A`.

/// The field separator of a custom id.
pub const SEPARATOR: char = ':';

pub(super) fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            SEPARATOR => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// Undoes [`escape_into`]; only the two escapes it writes are accepted, so one token
/// has exactly one spelling.
pub(super) fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "%25" => '%',
            "%3A" => SEPARATOR,
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_has_one_spelling() {
        let mut out = String::new();
        escape_into("a:b%c:é", &mut out);
        assert_eq!(out, "a%3Ab%25c%3Aé");
        assert_eq!(unescape(&out).as_deref(), Some("a:b%c:é"));
        for bad in ["%", "%3", "%3a", "%41", "x%2"] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }
}
