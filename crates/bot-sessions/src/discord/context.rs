//! The [`Context`] of a Discord interaction.
//!
//! | Context field | from the interaction |
//! | --- | --- |
//! | `user_id` | `member.user.id` in a guild, `user.id` in a DM; `None` when neither is sent |
//! | `chat_id` | the channel (`channel.id`, else the deprecated `channel_id`); a thread is its own channel |
//! | `chat_kind` | [`ChatKind::Guild`] with a guild, [`ChatKind::Private`] for a DM, [`ChatKind::Group`] for a group DM |
//! | `guild_id` | `guild_id` |
//! | `thread_id` | the channel's id when the channel is a thread (public, private, announcement, a forum post) |
//! | `topic_id` | never: a Discord thread is not a forum topic |
//! | `custom_id` | the clicked component's or submitted modal's `custom_id` |
//! | `component` | [`ComponentKind::Button`], [`ComponentKind::SelectMenu`] with its `values`, [`ComponentKind::ModalSubmit`] with its `fields` |
//! | `message_id` | the message carrying the clicked component (`message.id`) |
//! | `reply` | [`ReplyRef`]: interaction id and token (the token never shows in `Debug`), message id |
//! | extensions | [`Interaction`](InteractionInfo) (application id, type, locale), [`Command`] for application commands and autocomplete, [`ChannelInfo`] |
//!
//! # Keys in threads
//!
//! A thread has a channel id of its own, so [`KeyStrategy::Chat`] and
//! [`KeyStrategy::ChatUser`] key a thread apart from its parent channel (a session
//! per thread, or per user in the thread); [`KeyStrategy::Guild`] and
//! [`KeyStrategy::GuildUser`] span every channel and thread of the guild. The topic
//! strategies do not apply: [`KeyStrategy::ChatTopic`] and [`KeyStrategy::TopicUser`]
//! fail with [`KeyError::MissingTopic`](crate::KeyError::MissingTopic), and
//! [`KeyStrategy::TopicOrChat`] / [`KeyStrategy::TopicOrChatUser`] fall back to the
//! chat, which is the thread. The parent channel is in [`ChannelInfo::parent_id`]
//! for a key of one's own ([`KeyStrategy::custom`](crate::KeyStrategy::custom)).
//!
//! [`KeyStrategy::Chat`]: crate::KeyStrategy::Chat
//! [`KeyStrategy::ChatUser`]: crate::KeyStrategy::ChatUser
//! [`KeyStrategy::Guild`]: crate::KeyStrategy::Guild
//! [`KeyStrategy::GuildUser`]: crate::KeyStrategy::GuildUser
//! [`KeyStrategy::ChatTopic`]: crate::KeyStrategy::ChatTopic
//! [`KeyStrategy::TopicUser`]: crate::KeyStrategy::TopicUser
//! [`KeyStrategy::TopicOrChat`]: crate::KeyStrategy::TopicOrChat
//! [`KeyStrategy::TopicOrChatUser`]: crate::KeyStrategy::TopicOrChatUser

use std::collections::BTreeMap;

use twilight_model::application::command::CommandType;
use twilight_model::application::interaction::application_command::CommandDataOption;
use twilight_model::application::interaction::modal::ModalInteractionComponent;
use twilight_model::application::interaction::{Interaction, InteractionData, InteractionType};
use twilight_model::channel::ChannelType;
use twilight_model::channel::message::component::ComponentType;

use crate::context::Component;
use crate::{ChatKind, ComponentKind, Context, ReplyRef};

/// What every interaction's [`Context`] carries in its extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InteractionInfo {
    /// The application (what REST calls with the interaction token need).
    pub application_id: u64,
    /// The interaction's type.
    pub kind: InteractionType,
    /// The user's language, when sent.
    pub locale: Option<String>,
}

/// The application command of an interaction (a slash command, a user or message
/// context-menu command, or an autocomplete request), in the context's extensions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Command {
    /// The command's id.
    pub id: u64,
    /// Its name, without the slash (`cardsearch`).
    pub name: String,
    /// Slash command, user or message command.
    pub kind: CommandType,
    /// The user or message a context-menu command targets.
    pub target_id: Option<u64>,
    /// The options as sent (typed; subcommands nest).
    pub options: Vec<CommandDataOption>,
}

impl Command {
    /// The text of the top-level option `name`, when it is a string option.
    pub fn string(&self, name: &str) -> Option<&str> {
        use twilight_model::application::interaction::application_command::CommandOptionValue;
        self.options.iter().find(|o| o.name == name).and_then(|o| match &o.value {
            CommandOptionValue::String(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// The channel of an interaction, when Discord sent it, in the context's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// The channel's type (a thread type for a thread).
    pub kind: ChannelType,
    /// The parent: the channel a thread belongs to, or a channel's category.
    pub parent_id: Option<u64>,
}

/// Whether a channel type is a thread (a forum or media post is a public thread).
fn is_thread(kind: ChannelType) -> bool {
    matches!(kind, ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::AnnouncementThread)
}

/// The [`Context`] of an interaction (see the [module](self) for the mapping).
///
/// Ids are Discord snowflakes (`u64`); the context holds `i64`, which every snowflake
/// issued until the year 2084 fits. An id that does not fit is left `None`, never
/// wrapped.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::{context_of, parse_interaction, Command};
/// use bot_sessions::{ChatKind, ComponentKind};
///
/// let body = br#"{"id":"846462639134605312","application_id":"290926444748734465","type":3,
///   "token":"t0ken","guild_id":"290926798626357999","channel_id":"345626669114982999",
///   "member":{"user":{"id":"53908232506183680","username":"Mason","discriminator":"1337","avatar":null},
///             "roles":[],"joined_at":"2017-03-13T19:19:14.040000+00:00","deaf":false,"mute":false,"flags":0},
///   "message":{"id":"844397162624450620","channel_id":"345626669114982999","type":0,"content":"",
///     "timestamp":"2021-05-19T02:12:51.710000+00:00","edited_timestamp":null,"tts":false,"pinned":false,
///     "mention_everyone":false,"mentions":[],"mention_roles":[],"attachments":[],"embeds":[],"flags":0,
///     "author":{"id":"1","username":"bot","discriminator":"0","avatar":null}},
///   "data":{"custom_id":"m:abc:size","component_type":3,"values":["large"]}}"#;
/// let ctx = context_of(&parse_interaction(body)?);
/// assert_eq!(ctx.user_id, Some(53908232506183680));
/// assert_eq!((ctx.guild_id, ctx.chat_id), (Some(290926798626357999), Some(345626669114982999)));
/// assert_eq!(ctx.chat_kind, Some(ChatKind::Guild));
/// assert_eq!(ctx.component_kind(), Some(ComponentKind::SelectMenu));
/// assert_eq!(ctx.values(), ["large"]);
/// assert_eq!(ctx.message_id, Some(844397162624450620));
/// assert_eq!(ctx.reply.interaction_token.as_deref(), Some("t0ken"));
/// assert!(!format!("{ctx:?}").contains("t0ken"));
/// assert!(ctx.extensions.get::<Command>().is_none());
/// # Ok::<(), bot_sessions::discord::ParseError>(())
/// ```
pub fn context_of(interaction: &Interaction) -> Context {
    let mut ctx = Context::new();
    ctx.user_id = interaction.author_id().and_then(|id| snowflake(id.get()));
    ctx.guild_id = interaction.guild_id.and_then(|id| snowflake(id.get()));
    #[allow(deprecated)] // the only channel id some payloads carry
    let channel_id = interaction.channel.as_ref().map(|c| c.id).or(interaction.channel_id);
    ctx.chat_id = channel_id.and_then(|id| snowflake(id.get()));
    let channel_kind = interaction.channel.as_ref().map(|c| c.kind);
    ctx.chat_kind = match (ctx.guild_id, channel_kind) {
        (Some(_), _) => Some(ChatKind::Guild),
        (None, Some(ChannelType::Group)) => Some(ChatKind::Group),
        (None, Some(ChannelType::Private)) => Some(ChatKind::Private),
        (None, _) if interaction.user.is_some() => Some(ChatKind::Private),
        (None, _) => None,
    };
    if let Some(channel) = &interaction.channel {
        if is_thread(channel.kind) {
            ctx.thread_id = ctx.chat_id;
        }
        let parent_id = channel.parent_id.map(|p| p.get());
        ctx = ctx.with_extension(ChannelInfo { kind: channel.kind, parent_id });
    }
    let message_id = interaction.message.as_ref().and_then(|m| snowflake(m.id.get()));
    ctx = ctx.reply_ref(ReplyRef {
        interaction_id: snowflake(interaction.id.get()),
        interaction_token: Some(interaction.token.clone()),
        message_id,
        ..ReplyRef::default()
    });
    ctx.message_id = message_id;
    let info = InteractionInfo {
        application_id: interaction.application_id.get(),
        kind: interaction.kind,
        locale: interaction.locale.clone(),
    };
    ctx = ctx.with_extension(info);
    match &interaction.data {
        Some(InteractionData::MessageComponent(data)) => {
            let kind = match data.component_type {
                ComponentType::Button => Some(ComponentKind::Button),
                ComponentType::TextSelectMenu
                | ComponentType::UserSelectMenu
                | ComponentType::RoleSelectMenu
                | ComponentType::MentionableSelectMenu
                | ComponentType::ChannelSelectMenu => Some(ComponentKind::SelectMenu),
                _ => None,
            };
            ctx.custom_id = Some(data.custom_id.clone());
            ctx.component = Some(Component { kind, values: data.values.clone(), ..Component::default() });
        }
        Some(InteractionData::ModalSubmit(data)) => {
            let mut fields = BTreeMap::new();
            for c in &data.components {
                modal_fields(c, &mut fields);
            }
            ctx = ctx.modal_submit(data.custom_id.clone(), fields);
        }
        Some(InteractionData::ApplicationCommand(data)) => {
            ctx = ctx.with_extension(Command {
                id: data.id.get(),
                name: data.name.clone(),
                kind: data.kind,
                target_id: data.target_id.map(|t| t.get()),
                options: data.options.clone(),
            });
        }
        _ => {}
    }
    ctx
}

/// A modal's values by custom id: a text input's text; a select's (or checkbox
/// group's, or file upload's) values joined with `,`; a checkbox's `true`/`false`.
fn modal_fields(component: &ModalInteractionComponent, out: &mut BTreeMap<String, String>) {
    fn join<T: ToString>(values: &[T]) -> String {
        values.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
    use ModalInteractionComponent as C;
    let (id, value) = match component {
        C::ActionRow(row) => {
            row.components.iter().for_each(|c| modal_fields(c, out));
            return;
        }
        C::Label(label) => return modal_fields(&label.component, out),
        C::TextInput(t) => (&t.custom_id, t.value.clone()),
        C::StringSelect(s) => (&s.custom_id, s.values.join(",")),
        C::UserSelect(s) => (&s.custom_id, join(&s.values)),
        C::RoleSelect(s) => (&s.custom_id, join(&s.values)),
        C::ChannelSelect(s) => (&s.custom_id, join(&s.values)),
        C::MentionableSelect(s) => (&s.custom_id, join(&s.values)),
        C::CheckboxGroup(g) => (&g.custom_id, g.values.join(",")),
        C::Checkbox(c) => (&c.custom_id, c.value.to_string()),
        C::FileUpload(f) => (&f.custom_id, join(&f.values)),
        _ => return,
    };
    out.insert(id.clone(), value);
}

fn snowflake(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}
