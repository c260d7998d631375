//! Reading an interaction from a request body (see [`parse_interaction`]).

use serde_json::{Map, Value};
use twilight_model::application::interaction::{Interaction, InteractionType};

/// Why a body is not an interaction (answered 400).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or not a JSON object.
    #[error("the body is not a JSON object: {0}")]
    NotJson(#[source] serde_json::Error),
    /// A field that identifies or answers the interaction is absent.
    #[error("the interaction has no `{0}`")]
    Missing(&'static str),
    /// JSON that twilight-model does not accept as an interaction.
    #[error("the body is not an interaction: {0}")]
    Invalid(#[source] serde_json::Error),
}

/// The interaction type of a body, read without reading the rest: what still answers a
/// PING that twilight-model cannot read (a minimal one, without an application id). `None` when the body has no numeric `type`.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::interaction_type;
///
/// assert_eq!(interaction_type(br#"{"type":1,"id":"1"}"#), Some(1));
/// assert_eq!(interaction_type(b"not json"), None);
/// ```
pub fn interaction_type(body: &[u8]) -> Option<u8> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: u8,
    }
    serde_json::from_slice::<Kind>(body).ok().map(|k| k.kind)
}

/// Reads an interaction from a request body.
///
/// twilight-model follows today's API: it requires fields that Discord has added over
/// time (`authorizing_integration_owners`, `attachment_size_limit`, a guild member's
/// `flags`, an `id` on every component of a modal submit). Older payloads (the samples in Discord's own docs, a
/// proxy replaying recorded requests) lack them. [`parse_interaction`] first reads the
/// body as it is; only if that fails does it fill in those fields, none of which this
/// crate reads, and try once more. It never invents what identifies or answers an
/// interaction: `id`, `application_id`, `token` and `type` must be there.
///
/// # Errors
///
/// [`ParseError`]: not JSON, no `id`/`application_id`/`token`/`type`, or a shape
/// twilight-model refuses.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::{parse_interaction, ParseError};
/// use twilight_model::application::interaction::InteractionType;
///
/// // A button click shaped as in Discord's docs (no `authorizing_integration_owners`).
/// let body = br#"{"id":"846462639134605312","application_id":"290926444748734465","type":3,
///   "token":"t","version":1,"channel_id":"345626669114982999",
///   "user":{"id":"53908232506183680","username":"Mason","discriminator":"1337","avatar":null},
///   "data":{"custom_id":"click_one","component_type":2}}"#;
/// let interaction = parse_interaction(body)?;
/// assert_eq!(interaction.kind, InteractionType::MessageComponent);
///
/// // No application id: refused, never invented.
/// let err = parse_interaction(br#"{"id":"1","token":"t","type":2,"data":{"id":"2","name":"x"}}"#).unwrap_err();
/// assert!(matches!(err, ParseError::Missing("application_id")));
/// # Ok::<(), ParseError>(())
/// ```
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, ParseError> {
    let first = match serde_json::from_slice::<Interaction>(body) {
        Ok(interaction) => return Ok(interaction),
        Err(e) => e,
    };
    let mut value: Value = serde_json::from_slice(body).map_err(ParseError::NotJson)?;
    let Some(object) = value.as_object_mut() else { return Err(ParseError::Invalid(first)) };
    for field in ["id", "application_id", "token", "type"] {
        if object.get(field).is_none_or(Value::is_null) {
            return Err(ParseError::Missing(field));
        }
    }
    if !fill_in(object) {
        return Err(ParseError::Invalid(first));
    }
    serde_json::from_value(value).map_err(ParseError::Invalid)
}

/// Fills in the fields an older payload lacks; returns whether it changed anything.
fn fill_in(object: &mut Map<String, Value>) -> bool {
    let mut changed = default_field(object, "authorizing_integration_owners", Value::Object(Map::new()));
    changed |= default_field(object, "attachment_size_limit", Value::from(0));
    // Guild members' `flags` (added in 2023), on the invoking member and the resolved ones.
    if let Some(member) = object.get_mut("member").and_then(Value::as_object_mut) {
        changed |= default_field(member, "flags", Value::from(0));
    }
    let resolved = object.get_mut("data").and_then(|d| d.get_mut("resolved")).and_then(|r| r.get_mut("members"));
    for member in resolved.and_then(Value::as_object_mut).into_iter().flat_map(|m| m.values_mut()) {
        if let Some(member) = member.as_object_mut() {
            changed |= default_field(member, "flags", Value::from(0));
        }
    }
    let modal = object.get("type").and_then(Value::as_u64) == Some(InteractionType::ModalSubmit as u64);
    if modal && let Some(components) = object.get_mut("data").and_then(|d| d.get_mut("components")) {
        // Discord generates missing component ids sequentially (components reference,
        // "anatomy of a component"); do the same. Nothing here reads their values.
        let mut next = 0;
        changed |= number_components(components, &mut next);
    }
    changed
}

fn default_field(object: &mut Map<String, Value>, field: &str, value: Value) -> bool {
    if object.contains_key(field) {
        return false;
    }
    object.insert(field.into(), value);
    true
}

fn number_components(value: &mut Value, next: &mut i64) -> bool {
    let mut changed = false;
    match value {
        Value::Array(items) => {
            for item in items {
                changed |= number_components(item, next);
            }
        }
        Value::Object(component) => {
            *next += 1;
            if !component.contains_key("id") {
                component.insert("id".into(), Value::from(*next));
                changed = true;
            }
            for nested in ["components", "component"] {
                if let Some(inner) = component.get_mut(nested) {
                    changed |= number_components(inner, next);
                }
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modal_components_get_ids_in_document_order() {
        let mut v = serde_json::json!([{"type":1,"components":[{"type":4,"custom_id":"a","value":"x"}]},
                                        {"type":1,"id":9,"components":[{"type":4,"custom_id":"b","value":"y"}]}]);
        let mut next = 0;
        assert!(number_components(&mut v, &mut next));
        assert_eq!(v[0]["id"], 1);
        assert_eq!(v[0]["components"][0]["id"], 2);
        assert_eq!(v[1]["id"], 9);
        assert_eq!(v[1]["components"][0]["id"], 4);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(matches!(parse_interaction(b"[1]"), Err(ParseError::Invalid(_))));
        assert!(matches!(parse_interaction(b"{"), Err(ParseError::NotJson(_))));
        let no_token = br#"{"id":"1","application_id":"2","type":1}"#;
        assert!(matches!(parse_interaction(no_token), Err(ParseError::Missing("token"))));
    }
}
