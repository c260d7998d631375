//! The [`Context`] of serenity's interactions: the same fields and extensions as the
//! twilight [`context_of`](crate::discord::context_of) (see its
//! [table](mod@crate::discord::context)), read from serenity's own types, so one key
//! strategy and one interactive kind serve a gateway bot and an HTTP endpoint alike.
//!
//! What serenity's types add or lack:
//! - a user/role/channel/mentionable select's values are the chosen ids as text (what
//!   Discord sends, and what twilight gives);
//! - a modal's fields are its text inputs (serenity 0.12 reads no other modal
//!   component);
//! - serenity fills `user` from `member` in a guild, so `user_id` is always set.

use std::collections::BTreeMap;

use ::serenity::all::{
    ActionRowComponent, ChannelId, CommandInteraction, ComponentInteraction, ComponentInteractionDataKind, GuildId,
    Interaction, InteractionId, Message, ModalInteraction, PartialChannel,
};
use twilight_model::application::command::CommandType;
use twilight_model::application::interaction::InteractionType;
use twilight_model::channel::ChannelType;

use crate::context::Component;
use crate::discord::{ChannelInfo, Command, InteractionInfo};
use crate::{ChatKind, ComponentKind, Context, ReplyRef};

/// The [`Context`] of any interaction but a PING (`None`): a command, an autocomplete
/// request, a component click or a modal submit.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::serenity::context_of;
/// use bot_sessions::{ChatKind, ComponentKind};
/// use serenity::all::Interaction;
///
/// let payload = serde_json::json!({
///     "id": "846462639134605312", "application_id": "290926444748734465", "type": 3,
///     "token": "t0ken", "version": 1, "locale": "en-US", "entitlements": [],
///     "authorizing_integration_owners": {}, "attachment_size_limit": 8388608,
///     "guild_id": "290926798626357999", "channel_id": "345626669114982999",
///     "member": {"user": {"id": "53908232506183680", "username": "Mason", "discriminator": "1337",
///                         "avatar": null},
///                "roles": [], "joined_at": "2017-03-13T19:19:14.040000+00:00", "deaf": false,
///                "mute": false, "flags": 0},
///     "message": {"id": "844397162624450620", "channel_id": "345626669114982999", "type": 0,
///                 "content": "", "timestamp": "2021-05-19T02:12:51.710000+00:00",
///                 "edited_timestamp": null, "tts": false, "pinned": false,
///                 "mention_everyone": false, "mentions": [], "mention_roles": [],
///                 "attachments": [], "embeds": [], "flags": 0,
///                 "author": {"id": "1", "username": "bot", "discriminator": "0", "avatar": null}},
///     "data": {"custom_id": "m:abc:who", "component_type": 5, "values": ["53908232506183680"]}
/// });
/// let interaction: Interaction = serde_json::from_value(payload)?;
/// let ctx = context_of(&interaction).expect("not a ping");
/// assert_eq!(ctx.user_id, Some(53908232506183680));
/// assert_eq!(ctx.chat_kind, Some(ChatKind::Guild));
/// assert_eq!(ctx.component_kind(), Some(ComponentKind::SelectMenu)); // a user select
/// assert_eq!(ctx.values(), ["53908232506183680"]);
/// assert!(!format!("{ctx:?}").contains("t0ken"));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn context_of(interaction: &Interaction) -> Option<Context> {
    Some(match interaction {
        Interaction::Command(command) => command_context(command),
        Interaction::Autocomplete(command) => autocomplete_context(command),
        Interaction::Component(component) => component_context(component),
        Interaction::Modal(modal) => modal_context(modal),
        _ => return None,
    })
}

/// The context of an application command (slash, user or message command): the
/// [`Command`] is in the extensions.
pub fn command_context(interaction: &CommandInteraction) -> Context {
    with_command(interaction, InteractionType::ApplicationCommand)
}

/// The context of an autocomplete request: like [`command_context`], with the
/// interaction kind `ApplicationCommandAutocomplete`.
pub fn autocomplete_context(interaction: &CommandInteraction) -> Context {
    with_command(interaction, InteractionType::ApplicationCommandAutocomplete)
}

fn with_command(interaction: &CommandInteraction, kind: InteractionType) -> Context {
    let i = interaction;
    let ctx = common(Common {
        id: i.id,
        application_id: i.application_id.get(),
        token: &i.token,
        guild_id: i.guild_id,
        channel: i.channel.as_ref(),
        channel_id: i.channel_id,
        user_id: i.user.id.get(),
        locale: &i.locale,
        message: None,
        kind,
    });
    let data = &i.data;
    // The options as Discord sent them, read by twilight-model (what `Command` holds on
    // both transports); an option twilight cannot read leaves the list empty.
    let options = serde_json::to_value(&data.options).and_then(serde_json::from_value).unwrap_or_default();
    ctx.with_extension(Command {
        id: data.id.get(),
        name: data.name.clone(),
        kind: CommandType::from(u8::from(data.kind)),
        target_id: data.target_id.map(|t| t.get()),
        options,
    })
}

/// The context of a component click: the custom id, the component's kind and values
/// (every select kind), the message it sits on.
pub fn component_context(interaction: &ComponentInteraction) -> Context {
    let i = interaction;
    let mut ctx = common(Common {
        id: i.id,
        application_id: i.application_id.get(),
        token: &i.token,
        guild_id: i.guild_id,
        channel: i.channel.as_ref(),
        channel_id: i.channel_id,
        user_id: i.user.id.get(),
        locale: &i.locale,
        message: Some(&i.message),
        kind: InteractionType::MessageComponent,
    });
    fn ids<T: ToString>(values: &[T]) -> Vec<String> {
        values.iter().map(ToString::to_string).collect()
    }
    use ComponentInteractionDataKind as K;
    let (kind, values) = match &i.data.kind {
        K::Button => (Some(ComponentKind::Button), Vec::new()),
        K::StringSelect { values } => (Some(ComponentKind::SelectMenu), values.clone()),
        K::UserSelect { values } => (Some(ComponentKind::SelectMenu), ids(values)),
        K::RoleSelect { values } => (Some(ComponentKind::SelectMenu), ids(values)),
        K::MentionableSelect { values } => (Some(ComponentKind::SelectMenu), ids(values)),
        K::ChannelSelect { values } => (Some(ComponentKind::SelectMenu), ids(values)),
        _ => (None, Vec::new()),
    };
    ctx.custom_id = Some(i.data.custom_id.clone());
    ctx.component = Some(Component { kind, values, ..Component::default() });
    ctx
}

/// The context of a modal submit: the modal's custom id and its text inputs' values
/// by custom id (an input left empty is `""`).
pub fn modal_context(interaction: &ModalInteraction) -> Context {
    let i = interaction;
    let ctx = common(Common {
        id: i.id,
        application_id: i.application_id.get(),
        token: &i.token,
        guild_id: i.guild_id,
        channel: i.channel.as_ref(),
        channel_id: i.channel_id,
        user_id: i.user.id.get(),
        locale: &i.locale,
        message: i.message.as_deref(),
        kind: InteractionType::ModalSubmit,
    });
    let mut fields = BTreeMap::new();
    for row in &i.data.components {
        for component in &row.components {
            if let ActionRowComponent::InputText(input) = component {
                fields.insert(input.custom_id.clone(), input.value.clone().unwrap_or_default());
            }
        }
    }
    ctx.modal_submit(i.data.custom_id.clone(), fields)
}

/// What every interaction kind has.
struct Common<'a> {
    id: InteractionId,
    application_id: u64,
    token: &'a str,
    guild_id: Option<GuildId>,
    channel: Option<&'a PartialChannel>,
    channel_id: ChannelId,
    user_id: u64,
    locale: &'a str,
    message: Option<&'a Message>,
    kind: InteractionType,
}

fn common(c: Common<'_>) -> Context {
    let mut ctx = Context::new();
    ctx.user_id = snowflake(c.user_id);
    ctx.guild_id = c.guild_id.and_then(|g| snowflake(g.get()));
    let channel_id = c.channel.map_or(c.channel_id, |ch| ch.id);
    ctx.chat_id = snowflake(channel_id.get());
    let channel_kind = c.channel.map(|ch| ChannelType::from(u8::from(ch.kind)));
    ctx.chat_kind = match (ctx.guild_id, channel_kind) {
        (Some(_), _) => Some(ChatKind::Guild),
        (None, Some(ChannelType::Group)) => Some(ChatKind::Group),
        // Serenity always has a user: without a guild, a DM.
        (None, _) => Some(ChatKind::Private),
    };
    if let (Some(channel), Some(kind)) = (c.channel, channel_kind) {
        if matches!(kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::AnnouncementThread) {
            ctx.thread_id = ctx.chat_id;
        }
        ctx = ctx.with_extension(ChannelInfo { kind, parent_id: channel.parent_id.map(|p| p.get()) });
    }
    let message_id = c.message.and_then(|m| snowflake(m.id.get()));
    ctx = ctx.reply_ref(ReplyRef {
        interaction_id: snowflake(c.id.get()),
        interaction_token: Some(c.token.to_owned()),
        message_id,
        ..ReplyRef::default()
    });
    ctx.message_id = message_id;
    let locale = (!c.locale.is_empty()).then(|| c.locale.to_owned());
    ctx.with_extension(InteractionInfo { application_id: c.application_id, kind: c.kind, locale })
}

fn snowflake(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

/// The context of a message (a prefix command's, or any message event): its author,
/// channel, guild and id. Serenity's message does not say whether its channel is a
/// thread (that needs the cache), so `thread_id` stays `None`.
pub fn message_context(message: &Message) -> Context {
    let mut ctx = Context::new();
    ctx.user_id = snowflake(message.author.id.get());
    ctx.guild_id = message.guild_id.and_then(|g| snowflake(g.get()));
    ctx.chat_id = snowflake(message.channel_id.get());
    ctx.chat_kind = Some(if ctx.guild_id.is_some() { ChatKind::Guild } else { ChatKind::Private });
    ctx.message_id = snowflake(message.id.get());
    let message_id = ctx.message_id;
    ctx.reply_ref(ReplyRef { message_id, ..ReplyRef::default() })
}
