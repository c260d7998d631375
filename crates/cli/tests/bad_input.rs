//! Bad input gets a clear message and the documented exit code, and writes nothing.

mod support;

use support::{Backend, Env, export, ok, run};

#[test]
fn unknown_scheme_and_memory_are_usage_errors() {
    let mut cmd = assert_cmd::Command::cargo_bin("bot-sessions").unwrap();
    let (code, _, err) = run(cmd.args(["--store", "ftp://h/x", "list"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown scheme `ftp`"), "{err}");
    let mut cmd = assert_cmd::Command::cargo_bin("bot-sessions").unwrap();
    let (code, _, err) = run(cmd.args(["--store", "memory://", "list"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("memory:// is refused"), "{err}");
    let mut cmd = assert_cmd::Command::cargo_bin("bot-sessions").unwrap();
    let (code, _, err) = run(cmd.env_remove("BOT_SESSIONS_STORE").arg("list"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("BOT_SESSIONS_STORE"), "{err}");
}

#[test]
fn an_unreachable_server_is_exit_3_and_the_password_stays_out() {
    // Port 1 on loopback: nothing listens there.
    for url in ["redis://:hunter2@127.0.0.1:1/0", "postgres://postgres:hunter2@127.0.0.1:1/test"] {
        let mut cmd = assert_cmd::Command::cargo_bin("bot-sessions").unwrap();
        let (code, _, err) = run(cmd.env("BOT_SESSIONS_STORE", url).arg("stats"));
        assert_eq!(code, 3, "{url}: {err}");
        assert!(err.contains("unreachable") && err.contains(":***@127.0.0.1:1"), "{err}");
        assert!(!err.contains("hunter2"), "password leaked: {err}");
    }
}

#[test]
fn malformed_keys_and_invalid_json_are_usage_errors_and_write_nothing() {
    let env = Env::new(Backend::Sqlite);
    for bad in ["nope", "counter/chat:05", "counter/chat:x", "/chat:1", "counter/planet:3"] {
        let (code, _, err) = run(env.cmd().args(["get", bad]));
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("malformed session key") || err.contains("invalid namespace"), "{bad}: {err}");
    }
    for bad in ["{", "{'n': 1}", "", "[1,]"] {
        let (code, _, err) = run(env.cmd().args(["set", "counter/chat:1", bad]));
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("is not valid JSON"), "{err}");
    }
    assert_eq!(export(&env), "", "nothing was written");
    // Bad flags are clap's usage errors.
    let (code, _, _) = run(env.cmd().args(["list", "--limit", "many"]));
    assert_eq!(code, 2);
}

#[test]
fn truncated_import_lines_are_reported_and_the_rest_goes_in() {
    let (src, dst) = (Env::new(Backend::Sqlite), Env::new(Backend::Sqlite));
    for n in 1..=5 {
        ok(src.cmd().args(["set", &format!("c/chat:{n}"), &format!("{{\"n\":{n}}}")]));
    }
    let lines: Vec<String> = export(&src).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5);
    // Line 2 cut in the middle of the value, line 4 valid JSON but no session line, line 6
    // (the last) cut off without its newline.
    let cut = |l: &str| l[..l.len() / 2].to_owned();
    let file_text = [
        lines[0].clone(),
        cut(&lines[1]),
        lines[2].clone(),
        "{\"key\":\"c/chat:9\"}".into(),
        lines[3].clone(),
        cut(&lines[4]),
    ]
    .join("\n");
    let file = std::env::temp_dir().join(support::unique("cli-truncated-") + ".jsonl");
    std::fs::write(&file, file_text).unwrap();
    let (code, out, err) = run(dst.cmd().arg("import").arg(&file));
    assert_eq!(code, 2, "{out}{err}");
    for n in [2, 4, 6] {
        assert!(err.contains(&format!("line {n}: ")), "line {n} reported: {err}");
    }
    assert!(!err.contains("line 1:") && !err.contains("line 3:") && !err.contains("line 5:"), "{err}");
    assert!(err.contains("3 bad lines") && err.contains("3 sessions went in"), "{err}");
    assert!(out.contains("imported 3 of 3 sessions"), "{out}");
    let expected = [lines[0].as_str(), lines[2].as_str(), lines[3].as_str()].map(|l| format!("{l}\n")).concat();
    assert_eq!(export(&dst), expected, "exactly the good lines, nothing of the bad ones");
    let _ = std::fs::remove_file(file);
}

#[test]
fn help_has_an_example_for_every_command_and_docs_generate() {
    use clap::ValueEnum as _;
    let help = ok(assert_cmd::Command::cargo_bin("bot-sessions").unwrap().arg("--help"));
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 14, "{help}");
    let mut with_subs = Vec::new();
    for c in &commands {
        match *c {
            "quarantine" => with_subs.extend(["list", "show", "restore", "drop"].map(|s| vec![*c, s])),
            "interactive" => with_subs.extend(["list", "end"].map(|s| vec![*c, s])),
            _ => with_subs.push(vec![*c]),
        }
    }
    for args in with_subs {
        let mut cmd = assert_cmd::Command::cargo_bin("bot-sessions").unwrap();
        let out = ok(cmd.args(&args).arg("--help"));
        assert!(out.contains("Example") && out.contains("bot-sessions "), "{args:?} --help has no example:\n{out}");
    }
    for shell in clap_complete::Shell::value_variants() {
        let mut cmd = assert_cmd::Command::cargo_bin("bot-sessions").unwrap();
        let out = ok(cmd.args(["completions", &shell.to_string()]));
        assert!(out.contains("forget-user"), "{shell}");
    }
    let man = ok(assert_cmd::Command::cargo_bin("bot-sessions").unwrap().arg("man"));
    assert!(man.starts_with(".ie") || man.contains(".TH bot-sessions"), "{}", &man[..200.min(man.len())]);
    assert!(man.contains("COMMAND: COPY") && man.contains("forget\\-user"), "every command has a section");
}
