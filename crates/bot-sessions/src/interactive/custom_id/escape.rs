//! Escaping of components and tokens: `%` and the separator become `%25` and `%3A`.

/// The field separator of a custom id.
pub const SEPARATOR: char = ':';

// Fields are split by a byte search for it (`fields`, `CustomIdCodec::decode`): sound
// only while it is ASCII, whose byte never occurs inside another character's bytes.
const _: () = assert!(SEPARATOR.is_ascii());

/// [`SEPARATOR`]'s one byte (it is ASCII: asserted above).
pub(super) const SEPARATOR_BYTE: u8 = SEPARATOR as u8;

pub(super) fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            SEPARATOR => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// The fields of `text` between separators (as `str::split`, with a byte search: the
/// separator is ASCII, so it never occurs inside another character's bytes).
pub(super) fn fields(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.bytes().position(|b| b == SEPARATOR_BYTE) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => rest.take(),
        }
    })
}

/// Undoes [`escape_into`]; only the two escapes it writes are accepted, so one token
/// has exactly one spelling.
pub(super) fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.bytes().position(|b| b == b'%') {
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

    #[test]
    fn fields_split_as_str_split_does() {
        for text in ["", ":", "a", "a:b", ":a:", "é:ü::x", "a%3Ab:c"] {
            assert_eq!(fields(text).collect::<Vec<_>>(), text.split(SEPARATOR).collect::<Vec<_>>(), "{text:?}");
        }
    }
}
