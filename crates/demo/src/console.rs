//! The console transport: one message per input line, replies on the output.
//!
//! A line is `<user>@<chat>: <text>` (`2@-100: /count`), or just `<text>` from user 1
//! in chat 1. A line that does not fit the first form is text from user 1, whole. Blank
//! lines are ignored; end of input ends the session. `click <custom id>` presses a
//! button. Each reply is written as `bot -> <user>@<chat>: <text>`, followed by one
//! line per button, `  [label] <custom id>`. A menu or an onboarding form that expires
//! while the bot runs is announced the same way, to the user and chat it belonged to.

use bot_sessions::Context;
use bot_sessions::interactive::{EndEvent, EndReason, Reply};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::bot::{Bot, Notice};

/// The user and chat of a line without a `<user>@<chat>:` prefix.
pub const DEFAULT_USER: i64 = 1;
/// See [`DEFAULT_USER`].
pub const DEFAULT_CHAT: i64 = 1;

/// One parsed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// Who wrote it.
    pub user: i64,
    /// Where.
    pub chat: i64,
    /// What.
    pub text: &'a str,
}

/// Parses `<user>@<chat>: <text>`, falling back to the whole line from user 1 in chat 1.
///
/// # Examples
///
/// ```
/// use bot_sessions_demo::console::{parse_line, Line};
///
/// assert_eq!(parse_line("7@-100: /count"), Line { user: 7, chat: -100, text: "/count" });
/// assert_eq!(parse_line("/count"), Line { user: 1, chat: 1, text: "/count" });
/// assert_eq!(parse_line("note: 3@4 is not a prefix"), Line { user: 1, chat: 1, text: "note: 3@4 is not a prefix" });
/// ```
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    let prefixed = line.split_once(':').and_then(|(head, text)| {
        let (user, chat) = head.split_once('@')?;
        Some(Line { user: user.trim().parse().ok()?, chat: chat.trim().parse().ok()?, text: text.trim() })
    });
    prefixed.unwrap_or(Line { user: DEFAULT_USER, chat: DEFAULT_CHAT, text: line.trim() })
}

/// The custom id of a `click <custom id>` line.
///
/// # Examples
///
/// ```
/// assert_eq!(bot_sessions_demo::console::clicked("click m:abc:inc:sig"), Some("m:abc:inc:sig"));
/// assert_eq!(bot_sessions_demo::console::clicked("clicks are fun"), None);
/// ```
pub fn clicked(text: &str) -> Option<&str> {
    text.strip_prefix("click ").map(str::trim).filter(|id| !id.is_empty())
}

/// Renders a reply for the console: the first line after `bot -> <user>@<chat>: `,
/// the rest (buttons, fields) indented.
pub fn render(user: i64, chat: i64, reply: &Reply) -> String {
    let text = reply.to_string();
    let mut lines = text.lines();
    let mut out = format!("bot -> {user}@{chat}: {}\n", lines.next().unwrap_or(""));
    for line in lines {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Reads lines from `input` until its end, answering each on `output`, and announces
/// menus that end by themselves meanwhile.
///
/// A message whose handling fails gets an `error:` reply and the loop goes on (a store
/// outage should not end the bot). At the end of input the bot stops taking clicks and
/// leaves its open menus in the store, for a restart.
///
/// # Errors
///
/// Only reading the input or writing the output.
pub async fn run<R, W>(bot: &Bot, input: R, mut output: W) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = input.lines();
    let (shown, mut ends) = tokio::sync::mpsc::unbounded_channel();
    let runtime = bot
        .start_runtime(move |event: EndEvent| {
            let _ = shown.send(event);
            std::future::ready(())
        })
        .map_err(std::io::Error::other)?;
    let mut notices = bot.subscribe_notices();
    loop {
        let raw = tokio::select! {
            line = lines.next_line() => match line? {
                Some(raw) => raw,
                None => break,
            },
            Some(event) = ends.recv() => {
                announce(&mut output, &event).await?;
                continue;
            }
            notice = notices.recv() => {
                match notice {
                    Ok(Notice { user, chat, reply, .. }) => {
                        output.write_all(render(user, chat, &reply).as_bytes()).await?;
                        output.flush().await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => notices = broadcast::channel(1).1,
                }
                continue;
            }
        };
        let line = parse_line(&raw);
        if line.text.is_empty() {
            continue;
        }
        let ctx = Context::new().chat(line.chat).user(line.user);
        let replies = match clicked(line.text) {
            Some(id) => bot.click(&ctx.button(id)).await,
            None => bot.handle(&ctx, line.text).await,
        };
        let replies = replies.unwrap_or_else(|e| vec![Reply::notice(format!("error: {e}"))]);
        for reply in replies {
            output.write_all(render(line.user, line.chat, &reply).as_bytes()).await?;
        }
        // Typed at, a reply should show at once.
        output.flush().await?;
    }
    runtime.shutdown().await;
    output.flush().await
}

/// Shows what an ended menu says, where it was opened: only for ends no click
/// answered (a Done click already got its reply).
async fn announce<W: AsyncWrite + Unpin>(output: &mut W, event: &EndEvent) -> std::io::Result<()> {
    if event.reason == EndReason::Finished {
        return Ok(());
    }
    let (Some(reply), Some(user), Some(chat)) = (&event.reply, event.origin.user, event.origin.chat) else {
        return Ok(());
    };
    output.write_all(render(user, chat, reply).as_bytes()).await?;
    output.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bot_sessions::interactive::{Button, View};

    #[test]
    fn lines_parse() {
        assert_eq!(parse_line("2@3: hello there"), Line { user: 2, chat: 3, text: "hello there" });
        assert_eq!(parse_line(" 2 @ -3 :/count\r"), Line { user: 2, chat: -3, text: "/count" });
        assert_eq!(parse_line("2@3:"), Line { user: 2, chat: 3, text: "" });
        assert_eq!(parse_line("ada@example.com"), Line { user: 1, chat: 1, text: "ada@example.com" });
        assert_eq!(parse_line("x@3: hi"), Line { user: 1, chat: 1, text: "x@3: hi" });
        assert_eq!(parse_line("   "), Line { user: 1, chat: 1, text: "" });
        assert_eq!(clicked(parse_line("2@3: click m:x:inc").text), Some("m:x:inc"));
        assert_eq!(clicked("click "), None);
    }

    #[test]
    fn replies_render_with_their_buttons() {
        let menu = Reply::message(View::text("value: 0").row([Button::new("+1", "m:x:inc")]));
        assert_eq!(render(2, 5, &menu), "bot -> 2@5: value: 0\n  [+1] m:x:inc\n");
        assert_eq!(render(1, 1, &Reply::notice("not yours")), "bot -> 1@1: (notice) not yours\n");
    }
}
