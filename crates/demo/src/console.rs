//! The console transport: one message per input line, replies on the output.
//!
//! A line is `<user>@<chat>: <text>` (`2@-100: /count`), or just `<text>` from user 1
//! in chat 1. A line that does not fit the first form is text from user 1, whole. Blank
//! lines are ignored; end of input ends the session. Each reply line is written as
//! `bot -> <user>@<chat>: <reply>`.

use bot_sessions::Context;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::bot::Bot;

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

/// Reads lines from `input` until its end, answering each on `output`.
///
/// A message whose handling fails gets an `error:` reply and the loop goes on (a store
/// outage should not end the bot).
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
    while let Some(raw) = lines.next_line().await? {
        let line = parse_line(&raw);
        if line.text.is_empty() {
            continue;
        }
        let ctx = Context::new().chat(line.chat).user(line.user);
        let replies = match bot.handle(&ctx, line.text).await {
            Ok(replies) => replies,
            Err(e) => vec![format!("error: {e}")],
        };
        for reply in replies {
            output.write_all(format!("bot -> {}@{}: {reply}\n", line.user, line.chat).as_bytes()).await?;
        }
        // Typed at, a reply should show at once.
        output.flush().await?;
    }
    output.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse() {
        assert_eq!(parse_line("2@3: hello there"), Line { user: 2, chat: 3, text: "hello there" });
        assert_eq!(parse_line(" 2 @ -3 :/count\r"), Line { user: 2, chat: -3, text: "/count" });
        assert_eq!(parse_line("2@3:"), Line { user: 2, chat: 3, text: "" });
        assert_eq!(parse_line("ada@example.com"), Line { user: 1, chat: 1, text: "ada@example.com" });
        assert_eq!(parse_line("x@3: hi"), Line { user: 1, chat: 1, text: "x@3: hi" });
        assert_eq!(parse_line("   "), Line { user: 1, chat: 1, text: "" });
    }
}
