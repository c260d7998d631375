//! [`Embed`]s as Discord embed objects, with Discord's limits checked first.

use twilight_model::channel::message::embed::{Embed as DEmbed, EmbedField as DEmbedField};
use twilight_model::id::Id;

use super::limits::{RenderError, check_len};
use crate::interactive::Embed;

/// Most embeds in a message.
pub const MAX_EMBEDS: usize = 10;
/// Most fields in an embed.
pub const MAX_EMBED_FIELDS: usize = 25;
/// Most characters in all of a message's embeds together (titles, descriptions, field
/// names and values).
pub const MAX_EMBED_TOTAL: usize = 6000;

/// A Discord id from `id`, refusing 0 (which no Discord object has).
pub(crate) fn nonzero<M>(id: u64, what: &'static str) -> Result<Id<M>, RenderError> {
    Id::new_checked(id).ok_or(RenderError::ZeroId { what })
}

/// Checks the embeds against Discord's limits: at most [`MAX_EMBEDS`], each with a
/// title of 256 characters, a description of 4096, [`MAX_EMBED_FIELDS`] fields (names
/// 256, values 1024, neither empty), a colour of 24 bits; [`MAX_EMBED_TOTAL`]
/// characters in all.
///
/// # Errors
///
/// [`RenderError::TooMany`], [`RenderError::TooLong`], [`RenderError::Embed`].
pub fn check_embeds(embeds: &[Embed]) -> Result<(), RenderError> {
    if embeds.len() > MAX_EMBEDS {
        return Err(RenderError::TooMany { what: "embeds in a message", count: embeds.len(), max: MAX_EMBEDS });
    }
    let mut total = 0;
    for e in embeds {
        if e.fields.len() > MAX_EMBED_FIELDS {
            return Err(RenderError::TooMany {
                what: "fields in an embed",
                count: e.fields.len(),
                max: MAX_EMBED_FIELDS,
            });
        }
        let title = e.title.as_deref().unwrap_or_default();
        let description = e.description.as_deref().unwrap_or_default();
        check_len("an embed title", title, 256)?;
        check_len("an embed description", description, 4096)?;
        total += title.chars().count() + description.chars().count();
        for f in &e.fields {
            check_len("an embed field name", &f.name, 256)?;
            check_len("an embed field value", &f.value, 1024)?;
            if f.name.is_empty() || f.value.is_empty() {
                return Err(RenderError::Embed { reason: "a field needs a name and a value" });
            }
            total += f.name.chars().count() + f.value.chars().count();
        }
        if let Some(colour) = e.colour
            && colour > 0xFF_FFFF
        {
            return Err(RenderError::Embed { reason: "a colour is 24 bits (0xRRGGBB)" });
        }
    }
    if total > MAX_EMBED_TOTAL {
        return Err(RenderError::TooLong { what: "the embeds together", len: total, max: MAX_EMBED_TOTAL });
    }
    Ok(())
}

/// The embeds as Discord embed objects (`type` `rich`).
///
/// # Errors
///
/// [`RenderError`] for embeds Discord would refuse ([`check_embeds`]).
pub fn embeds(embeds: &[Embed]) -> Result<Vec<DEmbed>, RenderError> {
    check_embeds(embeds)?;
    Ok(embeds
        .iter()
        .map(|e| DEmbed {
            author: None,
            color: e.colour,
            description: e.description.clone(),
            fields: e
                .fields
                .iter()
                .map(|f| DEmbedField { inline: f.inline, name: f.name.clone(), value: f.value.clone() })
                .collect(),
            flags: None,
            footer: None,
            image: None,
            kind: "rich".to_owned(),
            provider: None,
            thumbnail: None,
            timestamp: None,
            title: e.title.clone(),
            url: e.url.clone(),
            video: None,
        })
        .collect())
}
