//! `--clickhouse-password-file`: `pulse run` logs in to a real ClickHouse as
//! a user with a password read from a file, stores the capture's windows
//! exactly, and never prints the password; a wrong password is refused.

mod produce_consume_support;

use produce_consume_support::{
    ALTCOINS, Pulse, assert_same_rows, capture, expected_rows, store, trades,
};

fn run_args<'a>(url: &'a str, replay: &'a str, user: &'a str, file: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--quiet",
        "--dashboard",
        "off",
        "--replay",
        replay,
        "--clickhouse",
        url,
        "--table",
        "credential_windows",
        "--clickhouse-user",
        user,
        "--clickhouse-password-file",
        file,
    ]
}

#[tokio::test]
async fn run_logs_in_with_the_password_file_and_never_prints_it() {
    // A private server: its users.xml surely has the user with a password.
    let Some(server) = pulse_testkit::ClickHouseProcess::start().await else {
        return;
    };
    let Some(path) = capture(ALTCOINS) else {
        return;
    };
    let (user, password) = pulse_testkit::PASSWORD_USER;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let replay = path.to_str().unwrap();

    // As `echo wrong > file` writes it: the trailing newline is not the password.
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not the password\n").unwrap();
    let mut refused = Pulse::spawn(
        "run, wrong password",
        &run_args(&url, replay, user, wrong.to_str().unwrap()),
    );
    let status = refused.wait().await;
    let output = refused.output();
    assert!(!status.success(), "a wrong password must fail:\n{output}");
    assert!(
        output.contains("password") || output.contains("Authentication"),
        "the error says why:\n{output}"
    );
    assert!(!output.contains("not the password"), "{output}");

    let right = dir.path().join("password");
    std::fs::write(&right, format!("{password}\n")).unwrap();
    let mut run = Pulse::spawn(
        "run, password file",
        &run_args(&url, replay, user, right.to_str().unwrap()),
    );
    run.wait_success().await;
    assert!(!run.output().contains(password), "{}", run.output());

    // Read back as `default`, which needs no password.
    let stored = store(&url, "default", "credential_windows")
        .select_final()
        .await
        .unwrap();
    assert_same_rows(&stored, &expected_rows(&trades(&path)));
}
