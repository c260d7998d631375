//! The real `bot-sessions-demo` binary, piped a script: the README's promise.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Output, Stdio};

fn fresh_db() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("demo-{}-{:016x}.db", std::process::id(), rand_suffix()))
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    h.finish()
}

/// Runs the binary with `args`, feeds it `script`, and waits for it to exit.
fn run(args: &[&str], script: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_of(args: &[&str], script: &str) -> Vec<String> {
    let out = run(args, script);
    assert!(out.status.success(), "{:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

#[test]
fn a_scripted_session() {
    let db = fresh_db();
    let store = format!("sqlite://{}", db.display());
    let script = "/count\n/count\n2@-100: /count\n\n/onboard\nAda Lovelace\nnot-an-email\nada@example.com\n/confirm\n/profile\n/nope\n/forget\n/profile\n";
    let out = stdout_of(&["console", "--store", &store], script);
    let expected_prefixes = [
        "bot -> 1@1: count: 1",
        "bot -> 1@1: count: 2",
        "bot -> 2@-100: count: 1",
        "bot -> 1@1: let's get you set up. What is your name?",
        "bot -> 1@1: nice to meet you, Ada Lovelace. What is your email?",
        "bot -> 1@1: `not-an-email` does not look like an email address",
        "bot -> 1@1: name: Ada Lovelace, email: ada@example.com.",
        "  [Confirm] m:",
        "bot -> 1@1: saved: Ada Lovelace <ada@example.com>",
        "bot -> 1@1: profile: Ada Lovelace <ada@example.com>",
        "bot -> 1@1: unknown command /nope",
        // The counter, the profile, and the ended conversation (kept a while for late
        // clicks) with the list of the user's open conversations.
        "bot -> 1@1: forgotten: deleted 4 sessions of user 1",
        "bot -> 1@1: no profile saved",
    ];
    assert_eq!(out.len(), expected_prefixes.len(), "{out:#?}");
    for (line, prefix) in out.iter().zip(expected_prefixes) {
        assert!(line.starts_with(prefix), "expected {prefix:?}, got {line:?}");
    }
}

#[test]
fn a_restart_in_the_middle_of_onboarding_continues() {
    let db = fresh_db();
    let store = format!("sqlite://{}", db.display());
    // `console` is the default subcommand.
    let first = stdout_of(&["--store", &store], "/count\n/onboard\nGrace Hopper\n");
    assert_eq!(first.last().unwrap(), "bot -> 1@1: nice to meet you, Grace Hopper. What is your email?");
    let second =
        stdout_of(&["console", "--store", &store, "--onboarding-ttl", "3600"], "grace@example.com\n/confirm\n/count\n");
    assert_eq!(second.len(), 4, "{second:#?}");
    assert_eq!(
        second[0],
        "bot -> 1@1: name: Grace Hopper, email: grace@example.com. /confirm to save, /cancel to drop it"
    );
    assert!(second[1].starts_with("  [Confirm] m:"), "{second:#?}");
    assert_eq!(second[2..], ["bot -> 1@1: saved: Grace Hopper <grace@example.com>", "bot -> 1@1: count: 2"]);
}

#[test]
fn the_memory_store_forgets_on_exit() {
    assert_eq!(stdout_of(&["--store", "memory://"], "/count\n"), ["bot -> 1@1: count: 1"]);
    assert_eq!(stdout_of(&["--store", "memory://"], "/count\n"), ["bot -> 1@1: count: 1"]);
}

#[test]
fn empty_input_exits_cleanly() {
    let db = fresh_db();
    assert!(stdout_of(&["--store", &format!("sqlite://{}", db.display())], "").is_empty());
    assert!(stdout_of(&["--store", &format!("sqlite://{}", db.display())], "\n\n").is_empty());
}

#[test]
fn bad_settings_fail_with_a_message() {
    for args in [
        &["--store", "ftp://nowhere"][..],
        &["--store", "sqlite:///nonexistent-dir/x/y.db"],
        &["--onboarding-ttl", "0"],
        &["--onboarding-ttl", "soon"],
        &["--menu-ttl", "0"],
        &["console", "--bogus"],
    ] {
        let out = run(args, "/count\n");
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?} answered anyway");
        assert!(!out.stderr.is_empty(), "{args:?} gave no message");
    }
}

/// The custom id printed after `[label]` in the binary's output.
fn button_id(out: &[String], label: &str) -> String {
    let tag = format!("[{label}] ");
    out.iter()
        .find_map(|l| l.trim_start().strip_prefix(&tag).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {label} button in {out:#?}"))
}

#[test]
fn the_menu_through_the_binary_with_restarts() {
    let db = fresh_db();
    let store = format!("sqlite://{}", db.display());
    let opened = stdout_of(&["--store", &store], "/menu\n");
    assert_eq!(opened[0], "bot -> 1@1: value: 0", "{opened:#?}");
    let (inc, dec, done) = (button_id(&opened, "+1"), button_id(&opened, "-1"), button_id(&opened, "Done"));
    let forged = format!("{}x", &inc[..inc.len() - 1]);

    // A new process (the first one exited) takes the clicks: the menu and the key that
    // signs its buttons live in the store.
    let script = format!("click {inc}\nclick {inc}\nclick {dec}\n2@1: click {inc}\nclick {forged}\nclick {inc}\n");
    let out = stdout_of(&["console", "--store", &store], &script);
    let said: Vec<&String> = out.iter().filter(|l| l.starts_with("bot -> ")).collect();
    assert_eq!(said.len(), 6, "{out:#?}");
    assert_eq!(said[0], "bot -> 1@1: value: 1");
    assert_eq!(said[1], "bot -> 1@1: value: 2");
    assert_eq!(said[2], "bot -> 1@1: value: 1");
    assert!(said[3].starts_with("bot -> 2@1: ") && said[3].contains("not yours"), "{}", said[3]);
    assert!(said[4].contains("refused"), "a forged id: {}", said[4]);
    assert_eq!(said[5], "bot -> 1@1: value: 2", "neither the stranger nor the forgery changed it");

    let out = stdout_of(&["--store", &store], &format!("click {done}\nclick {inc}\n/profile\n"));
    assert_eq!(out[0], "bot -> 1@1: final: 2", "{out:#?}");
    assert!(out[1].starts_with("bot -> 1@1: ") && out[1].contains("expired"), "{}", out[1]);
    assert!(out[2].contains("menu: 2"), "{}", out[2]);
}

/// Set through the binary: clicked in one run, the number sent in the next (a
/// restart between the click and the number).
#[test]
fn set_through_the_binary_across_a_restart() {
    let db = fresh_db();
    let store = format!("sqlite://{}", db.display());
    let opened = stdout_of(&["--store", &store], "/menu\n");
    let set = button_id(&opened, "Set");
    let asked = stdout_of(&["--store", &store], &format!("click {set}\n"));
    assert!(asked[0].starts_with("bot -> 1@1: ") && asked[0].contains("send a number"), "{asked:#?}");
    let out = stdout_of(&["--store", &store], "2@1: 5\nfive\n7\n8\n");
    let said: Vec<&String> = out.iter().filter(|l| l.starts_with("bot -> ")).collect();
    assert_eq!(said.len(), 4, "{out:#?}");
    assert!(said[0].starts_with("bot -> 2@1: I only understand commands"), "a stranger's number: {}", said[0]);
    assert!(said[1].starts_with("bot -> 1@1: not a number"), "{}", said[1]);
    assert_eq!(said[2], "bot -> 1@1: value: 7");
    assert!(said[3].starts_with("bot -> 1@1: I only understand commands"), "asked once: {}", said[3]);
    assert!(out.iter().any(|l| l.trim_start().starts_with("[Set] ")), "the new menu has its buttons: {out:#?}");
}

/// A running bot on a fresh database, fed `first` and kept listening: its stdin (drop
/// it to end the bot) and its output lines as they come.
fn running(extra: &[&str], first: &str) -> (Child, ChildStdin, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let db = fresh_db();
    let store = format!("sqlite://{}", db.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bot-sessions-demo"))
        .args(["--store", &store])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(first.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (child, stdin, rx)
}

/// The lines before the first one containing `needle`, and that line. The bound only
/// guards against a hang.
fn until(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap_or_else(|_| panic!("{seen:#?}"));
        if line.contains(needle) {
            return (seen, line);
        }
        seen.push(line);
    }
}

#[test]
fn an_idle_menu_expires_while_the_bot_runs() {
    let (mut child, stdin, rx) = running(&["--menu-ttl", "1"], "/menu\n");
    let (seen, expired) = until(&rx, "expired");
    assert!(expired.starts_with("bot -> 1@1: "), "{expired}");
    assert_eq!(seen[0], "bot -> 1@1: value: 0");
    drop(stdin);
    let rest: Vec<String> = rx.iter().collect();
    assert!(rest.iter().all(|l| !l.trim_start().starts_with('[')), "the expired menu shows no buttons: {rest:?}");
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_onboarding_form_that_expires_while_the_bot_runs_says_so() {
    let (mut child, stdin, rx) = running(&["--onboarding-ttl", "1"], "3@9: /onboard\n");
    let (seen, notice) = until(&rx, "expired");
    assert!(seen[0].contains("What is your name?"), "{seen:?}");
    assert!(notice.starts_with("bot -> 3@9: ") && notice.contains("onboarding form expired"), "{notice}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
