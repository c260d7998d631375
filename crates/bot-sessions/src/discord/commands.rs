//! Application commands: [`CommandDef`] declares one (what
//! [`Rest::register_commands`](super::Rest::register_commands) sends to Discord), and
//! [`CommandRouter`] sends each command interaction to its handler, with the bot's
//! state handed to every handler (no clones by hand). The same router serves the
//! HTTP endpoint (it is a [`Handler`]) and a gateway bot ([`route`](CommandRouter::route)
//! on the [`Context`] of serenity's command interaction).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use twilight_model::application::interaction::Interaction;

use super::context::Command;
use super::handler::{Handler, HandlerFuture, Texts};
use crate::Context;
use crate::interactive::Reply;
use crate::store::BoxError;

/// One application command, as Discord's `PUT .../commands` takes it.
///
/// # Examples
///
/// ```
/// use bot_sessions::discord::CommandDef;
/// use serde_json::json;
///
/// let poll = CommandDef::slash("poll", "Start a poll")
///     .option(json!({"type": 3, "name": "question", "description": "What to ask", "required": true}));
/// let json = serde_json::to_value(&poll).unwrap();
/// assert_eq!((json["type"].as_u64(), json["options"][0]["name"].as_str()), (Some(1), Some("question")));
/// assert!(poll.check().is_ok());
/// assert!(CommandDef::slash("Poll", "capitals are refused").check().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CommandDef {
    /// The name (`poll`: what users type after the slash).
    pub name: String,
    /// What it does (empty for user and message commands, as Discord wants).
    pub description: String,
    /// 1: slash command, 2: user command, 3: message command.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Its options, as Discord's application command option objects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Value>,
}

impl CommandDef {
    /// A slash command.
    pub fn slash(name: impl Into<String>, description: impl Into<String>) -> Self {
        CommandDef { name: name.into(), description: description.into(), kind: 1, options: Vec::new() }
    }

    /// A user command (a user's context menu).
    pub fn user(name: impl Into<String>) -> Self {
        CommandDef { name: name.into(), description: String::new(), kind: 2, options: Vec::new() }
    }

    /// A message command (a message's context menu).
    pub fn message(name: impl Into<String>) -> Self {
        CommandDef { name: name.into(), description: String::new(), kind: 3, options: Vec::new() }
    }

    /// Adds an option (Discord's application command option object).
    pub fn option(mut self, option: Value) -> Self {
        self.options.push(option);
        self
    }

    /// Checks what Discord checks: a name of 1 to 32 characters (a slash command's in
    /// lower case, letters, digits, `-` and `_`), a slash command's description of 1
    /// to 100 characters (none for the others), at most 25 options.
    ///
    /// # Errors
    ///
    /// [`CommandDefError`] naming the command.
    pub fn check(&self) -> Result<(), CommandDefError> {
        let refuse = |reason| Err(CommandDefError { name: self.name.clone(), reason });
        let len = self.name.chars().count();
        if len == 0 || len > 32 {
            return refuse("a name has 1 to 32 characters");
        }
        let slash = self.kind == 1;
        let name_ok = |c: char| {
            if slash { (c.is_alphanumeric() && !c.is_uppercase()) || c == '-' || c == '_' } else { !c.is_control() }
        };
        if !self.name.chars().all(name_ok) {
            return refuse("a slash command's name is lower case letters, digits, `-` and `_`");
        }
        let description = self.description.chars().count();
        if slash && (description == 0 || description > 100) {
            return refuse("a slash command's description has 1 to 100 characters");
        }
        if !slash && description > 0 {
            return refuse("user and message commands have no description");
        }
        if !(1..=3).contains(&self.kind) {
            return refuse("the type is 1 (slash), 2 (user) or 3 (message)");
        }
        if self.options.len() > 25 {
            return refuse("at most 25 options");
        }
        Ok(())
    }
}

/// A command Discord would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command `{name}`: {reason}")]
#[non_exhaustive]
pub struct CommandDefError {
    /// The command's name.
    pub name: String,
    /// What is wrong.
    pub reason: &'static str,
}

type Route<S> = Arc<dyn Fn(S, Context) -> HandlerFuture + Send + Sync>;

/// Sends each application command to its handler, by name; the handler gets a clone
/// of the router's state and the interaction's [`Context`] (with [`Command`] in its
/// extensions: the name, options, target). Its [`definitions`](Self::definitions) are
/// the list to register.
///
/// As the endpoint's [`Handler`] it answers commands it knows, and hands everything
/// else (other commands, components of other namespaces, modals no session took) to
/// its [`fallback`](Self::fallback), which by default answers
/// [`Texts::unsupported`] ephemerally.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use bot_sessions::discord::{CommandDef, CommandRouter};
/// use bot_sessions::interactive::{View, Reply};
///
/// struct Bot { greeting: String }
///
/// let router = CommandRouter::new(Arc::new(Bot { greeting: "hello".into() }))
///     .command(CommandDef::slash("hello", "Say hello"), |bot: Arc<Bot>, _ctx| async move {
///         Ok(Some(Reply::message(View::text(bot.greeting.clone()))))
///     });
/// assert_eq!(router.definitions()[0].name, "hello");
/// // Endpoint::builder(key).handler(router) ...
/// ```
pub struct CommandRouter<S> {
    state: S,
    definitions: Vec<CommandDef>,
    routes: HashMap<String, Route<S>>,
    fallback: Arc<dyn Handler>,
}

impl<S> std::fmt::Debug for CommandRouter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandRouter").field("definitions", &self.definitions).finish_non_exhaustive()
    }
}

impl<S: Clone + Send + Sync + 'static> CommandRouter<S> {
    /// A router without commands, handing `state` to its handlers.
    pub fn new(state: S) -> Self {
        let unsupported = Texts::default().unsupported;
        let fallback = move |_: Context, _: Interaction| {
            let text = unsupported.clone();
            async move { Ok(Some(Reply::notice(text))) }
        };
        CommandRouter { state, definitions: Vec::new(), routes: HashMap::new(), fallback: Arc::new(fallback) }
    }

    /// Adds a command and its handler (a command of the same name replaces it).
    #[must_use]
    pub fn command<F, Fut>(mut self, definition: CommandDef, handler: F) -> Self
    where
        F: Fn(S, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Reply>, BoxError>> + Send + 'static,
    {
        self.definitions.retain(|d| d.name != definition.name);
        let route: Route<S> = Arc::new(move |state, ctx| Box::pin(handler(state, ctx)));
        self.routes.insert(definition.name.clone(), route);
        self.definitions.push(definition);
        self
    }

    /// What answers interactions that are not one of its commands (on the endpoint).
    #[must_use]
    pub fn fallback(mut self, handler: impl Handler) -> Self {
        self.fallback = Arc::new(handler);
        self
    }

    /// The commands, in the order added: the list to register.
    pub fn definitions(&self) -> &[CommandDef] {
        &self.definitions
    }

    /// The state handed to the handlers.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The answer of the command `ctx` is about, or `None` when `ctx` is no command of
    /// this router (another command, a component, a modal). Serves any transport
    /// whose [`Context`] carries [`Command`] (the endpoint's, serenity's).
    pub fn route(&self, ctx: Context) -> Option<HandlerFuture> {
        let name = ctx.extensions.get::<Command>()?.name.clone();
        let route = self.routes.get(&name)?;
        Some(route(self.state.clone(), ctx))
    }
}

impl<S: Clone + Send + Sync + 'static> Handler for CommandRouter<S> {
    fn handle(&self, ctx: Context, interaction: Interaction) -> HandlerFuture {
        // Autocomplete carries `Command` too, but wants choices, not a reply.
        let is_command =
            interaction.kind == twilight_model::application::interaction::InteractionType::ApplicationCommand;
        match is_command.then(|| self.route(ctx.clone())).flatten() {
            Some(answer) => answer,
            None => self.fallback.handle(ctx, interaction),
        }
    }
}
