//! The command line, as clap sees it: one definition for parsing, `--help`, the shell
//! completions and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes: 0 ok; 1 not found, conflict, or records refused; 2 usage or bad input (a
malformed key, invalid JSON, an unknown store scheme, bad import lines); 3 the store is
unreachable or failed.

The store URL comes from --store or BOT_SESSIONS_STORE: sqlite://PATH,
redis://HOST:PORT[/DB][?prefix=P], postgres://USER@HOST:PORT/DB[?schema=S&table=T].
memory:// is refused (it would be a new, empty store). A URL with a password belongs in
BOT_SESSIONS_STORE (and copy's target in BOT_SESSIONS_COPY_TO): a command line shows in
`ps` to every user of the machine. Passwords are never printed.

The key ring of encryption at rest comes from the environment, BOT_SESSIONS_KEYS, or a
file, --keys-file FILE (never from a flag: a command line shows in `ps`): ID=HEX pairs
(64 hex digits, 32 bytes each), comma-separated, the newest last. `get` and `set` use it
on sealed sessions; `rekey` needs it.";

/// Look into, fix, move and erase bot sessions in any store.
#[derive(Debug, Parser)]
#[command(name = "bot-sessions", version, about, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// The store: sqlite://PATH, redis://HOST:PORT, postgres://USER@HOST/DB (with a
    /// password: set BOT_SESSIONS_STORE instead, a flag shows in `ps`).
    #[arg(long, env = "BOT_SESSIONS_STORE", hide_env_values = true, global = true, value_name = "URL")]
    pub store: Option<String>,

    /// Read the key ring for sessions encrypted at rest (`ID=HEX,...`, the newest last)
    /// from FILE; or set BOT_SESSIONS_KEYS. Not taken as a flag: it would show in `ps`.
    #[arg(long, global = true, value_name = "FILE")]
    pub keys_file: Option<PathBuf>,

    /// Refused: a key ring on the command line shows in `ps` (use BOT_SESSIONS_KEYS or
    /// --keys-file).
    #[arg(long, global = true, hide = true, value_name = "RING")]
    pub keys: Option<String>,

    /// One JSON object per line instead of tables and sentences (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List sessions: key, version, size, updated, expires.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db list --namespace onboarding --limit 20")]
    List {
        /// Only this namespace (default: every namespace).
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// At most this many sessions.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },

    /// Show one session: its value as pretty JSON (whatever the codec) and its metadata.
    #[command(
        after_help = "Example:\n  bot-sessions --store redis://127.0.0.1:6379 get onboarding/chat:-100123/user:42"
    )]
    Get {
        /// The key, in its textual form (`namespace/chat:1/user:42`).
        key: String,
        /// Write the stored bytes to stdout as they are.
        #[arg(long)]
        raw: bool,
    },

    /// Replace a session's value (compare-and-set): keeps its codec, TTL and expiry.
    #[command(after_help = "Examples:\n  bot-sessions --store sqlite://bot.db set counter/chat:5 '{\"n\": 0}'\n  \
                            bot-sessions --store sqlite://bot.db set onboarding/chat:1/user:42 '{\"step\": \"name\"}' \
                            --if-version 5730117823341\n\nA conflict (the session changed, or --if-version does not \
                            match) exits with 1 and writes nothing.")]
    Set(SetArgs),

    /// Delete one session.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db delete onboarding/chat:1/user:42")]
    Delete {
        /// The key.
        key: String,
        /// Only if the session still has this version.
        #[arg(long, value_name = "V")]
        if_version: Option<u64>,
    },

    /// Delete every session of one user, in every namespace (an erasure request).
    #[command(name = "forget-user", after_help = "Example:\n  bot-sessions --store sqlite://bot.db forget-user 42")]
    ForgetUser {
        /// The user id.
        #[arg(allow_negative_numbers = true)]
        user_id: i64,
    },

    /// Remove expired sessions now (the bot's background purge does it every minute).
    #[command(name = "purge-expired", after_help = "Example:\n  bot-sessions --store sqlite://bot.db purge-expired")]
    PurgeExpired,

    /// Count and bytes per namespace, expired sessions awaiting purge, quarantined records.
    #[command(after_help = "Example:\n  bot-sessions --store postgres://postgres@127.0.0.1/test stats")]
    Stats,

    /// Records that did not decode and were set aside (decode policy `quarantine`).
    #[command(subcommand)]
    Quarantine(QuarantineCommand),

    /// Write sessions as JSON lines, with every piece of metadata.
    #[command(after_help = "Examples:\n  bot-sessions --store sqlite://bot.db export -o sessions.jsonl\n  \
                            bot-sessions --store sqlite://bot.db export --namespace onboarding > onboarding.jsonl")]
    Export {
        /// Only this namespace (default: every namespace).
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// The file to write (default: stdout).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },

    /// Read sessions from `export` lines, keeping versions, times and expiry.
    #[command(after_help = "Examples:\n  bot-sessions --store redis://127.0.0.1:6379 import sessions.jsonl\n  \
                            bot-sessions --store sqlite://old.db export | bot-sessions --store sqlite://new.db import\n\n\
                            A session already there with the same version is skipped; one that is newer is kept \
                            (unless --force). A line that does not parse is reported by number and nothing of it is \
                            written: so is a line longer than 16 MiB, and one whose times make no sense (before \
                            1970, created_at after updated_at, updated_at in the future by more than 5 minutes).")]
    Import {
        /// The file to read (default, or `-`: stdin).
        file: Option<PathBuf>,
        /// Overwrite sessions that are newer in the store.
        #[arg(long)]
        force: bool,
    },

    /// Copy sessions to another store, with progress; safe to run again after an interruption.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db copy --to redis://127.0.0.1:6379\n\n\
                            A session already in the target with the same version is skipped; one that is newer there \
                            is kept (unless --force). It prints what it skipped and why.")]
    Copy {
        /// The target store's URL (with a password: set BOT_SESSIONS_COPY_TO instead, a
        /// flag shows in `ps`).
        #[arg(long, env = "BOT_SESSIONS_COPY_TO", hide_env_values = true, value_name = "URL")]
        to: String,
        /// Only this namespace (default: every namespace).
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// Overwrite sessions that are newer in the target.
        #[arg(long)]
        force: bool,
    },

    /// Import teloxide's dialogues (its SQLite, PostgreSQL or Redis storage) where DialogueStorage reads them.
    #[command(
        name = "import-teloxide",
        after_help = "Examples:\n  bot-sessions --store sqlite://bot-sessions.db import-teloxide --from sqlite://dialogues.db\n  \
                      bot-sessions --store redis://127.0.0.1:6379 import-teloxide --from redis://127.0.0.1:6379/1 \
                      --serializer bincode\n  \
                      bot-sessions --store postgres://bot@db/bot import-teloxide --from postgres://bot@db/old --serializer cbor\n\n\
                      It reads teloxide's table teloxide_dialogues (SqliteStorage, PostgresStorage) or the keys that \
                      are chat ids (RedisStorage), and writes each dialogue as namespace/chat:ID, where \
                      DialogueStorage<D> reads it. JSON is kept as it is; CBOR is rewritten as the JSON of the same \
                      value; bincode is kept as it is, for a DialogueStorage built with .codec(Codec::Bincode) \
                      (feature bincode). Safe to run again: a dialogue already there with the same bytes is \
                      skipped, a different one is kept unless --force. Entries that cannot be imported are \
                      reported and the rest goes in (exit 2)."
    )]
    ImportTeloxide {
        /// teloxide's storage: sqlite://PATH, postgres://USER@HOST/DB, redis://HOST:PORT/DB (a password:
        /// set BOT_SESSIONS_TELOXIDE_FROM instead, a flag shows in `ps`).
        #[arg(long, env = "BOT_SESSIONS_TELOXIDE_FROM", hide_env_values = true, value_name = "URL")]
        from: String,
        /// The serializer the teloxide storage was built with.
        #[arg(long, value_enum, default_value = "json")]
        serializer: crate::teloxide::Serializer,
        /// The namespace of the DialogueStorage (default: dialogue).
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// Overwrite dialogues that differ in the store.
        #[arg(long)]
        force: bool,
    },

    /// Re-seal every encrypted session with the newest key of the ring, so older keys can be retired.
    #[command(
        after_help = "Example:\n  BOT_SESSIONS_KEYS=1=<64 hex>,2=<64 hex> bot-sessions --store sqlite://bot.db rekey\n  \
                            bot-sessions --store sqlite://bot.db --keys-file /run/secrets/ring rekey\n\n\
                            Only sessions not already sealed with the newest key are rewritten, each with \
                            compare-and-set, so a bot writing meanwhile is never overwritten, and the command is safe \
                            to run again after an interruption. Sessions that do not open with the ring are reported \
                            and left alone (exit 1). Without --namespace, every namespace but the quarantine."
    )]
    Rekey {
        /// Only this namespace (default: every namespace but `_quarantine`).
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
        /// Also seal sessions stored in plaintext (when turning encryption on over
        /// existing data; the bot must read them with `accept_plaintext` meanwhile).
        #[arg(long)]
        accept_plaintext: bool,
    },

    /// Live interactive sessions (menus, forms with buttons).
    #[command(subcommand)]
    Interactive(InteractiveCommand),

    /// Print a shell completion script.
    #[command(after_help = "Example:\n  bot-sessions completions bash > /etc/bash_completion.d/bot-sessions")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff).
    #[command(after_help = "Example:\n  bot-sessions man > /usr/local/share/man/man1/bot-sessions.1")]
    Man,
}

/// `set`'s arguments.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The key.
    pub key: String,
    /// The new value, as JSON.
    pub value: String,
    /// Only if the session has this version now (compare-and-set).
    #[arg(long, value_name = "V")]
    pub if_version: Option<u64>,
    /// The value's schema version (default: the session's, or 1 for a new one).
    #[arg(long, value_name = "N")]
    pub schema_version: Option<u32>,
    /// Encode with this codec (default: the session's, or json for a new one).
    #[arg(long, value_enum)]
    pub codec: Option<CodecArg>,
    /// Expire this many seconds from now (default: keep the session's expiry).
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u64>,
}

/// A codec on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CodecArg {
    /// JSON.
    Json,
    /// MessagePack.
    Msgpack,
}

/// `quarantine` subcommands.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined records.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db quarantine list --namespace onboarding")]
    List {
        /// Only records that came from this namespace.
        #[arg(long, short = 'n', value_name = "NS")]
        namespace: Option<String>,
    },
    /// Show one quarantined record (its bytes, decoded when they decode).
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db quarantine show \
                            '_quarantine/custom:onboarding%2Fchat:1%2Fuser:42#v77@1700000000000/user:42'")]
    Show {
        /// The quarantine key, as `quarantine list` prints it.
        key: String,
    },
    /// Put a quarantined record back under its original key, and drop it from quarantine.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db quarantine restore \
                            '_quarantine/custom:onboarding%2Fchat:1%2Fuser:42#v77@1700000000000/user:42'")]
    Restore {
        /// The quarantine key.
        key: String,
        /// Replace the session that is there now.
        #[arg(long)]
        force: bool,
    },
    /// Delete a quarantined record for good.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db quarantine drop \
                            '_quarantine/custom:onboarding%2Fchat:1%2Fuser:42#v77@1700000000000/user:42'")]
    Drop {
        /// The quarantine key.
        key: String,
    },
}

/// `interactive` subcommands.
#[derive(Debug, Subcommand)]
pub enum InteractiveCommand {
    /// List interactive sessions: id, kind, phase, opener, started, expires.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db interactive list")]
    List {
        /// The manager's namespace.
        #[arg(long, short = 'n', value_name = "NS", default_value = "interactive")]
        namespace: String,
    },
    /// End a live session: it is marked expired now, and the running bot's expiry sweeper
    /// runs its `end` (once) on its next pass.
    #[command(after_help = "Example:\n  bot-sessions --store sqlite://bot.db interactive end Qx3mTkPz9aB1cD2e\n\n\
                            The tool cannot run the bot's code: it moves the session's deadline to now, and the bot's \
                            sweeper (Manager::spawn_sweeper, at its next scan pass) or the next click ends it with reason \
                            `expired`, running `end` exactly once.")]
    End {
        /// The session id (16 characters, as in its custom ids) or its key. An id may
        /// begin with `-`, so this takes hyphen values.
        #[arg(allow_hyphen_values = true)]
        session: String,
        /// The manager's namespace.
        #[arg(long, short = 'n', value_name = "NS", default_value = "interactive")]
        namespace: String,
    },
}
