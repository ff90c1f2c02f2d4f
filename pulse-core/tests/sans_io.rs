//! pulse-core must stay sans-IO: no async runtime, sockets, HTTP, Kafka or
//! ClickHouse crates among its normal dependencies. (Clock reads are banned by
//! pulse-core/clippy.toml.)

use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "async-std",
    "smol",
    "hyper",
    "reqwest",
    "tungstenite",
    "tokio-tungstenite",
    "rskafka",
    "clickhouse",
    "rustls",
    "openssl",
    "axum",
    "chrono",
    "time",
];

#[test]
fn normal_dependencies_do_no_io() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "pulse-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        crates.contains(&"pulse-core") && crates.contains(&"serde_json"),
        "{tree}"
    );
    for c in &crates {
        assert!(
            !FORBIDDEN.contains(c),
            "pulse-core depends on `{c}`:\n{tree}"
        );
    }
}

#[test]
fn clippy_config_bans_clock_reads() {
    let cfg = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clippy.toml")).unwrap();
    for banned in ["std::time::SystemTime::now", "std::time::Instant::now"] {
        assert!(cfg.contains(banned), "clippy.toml must ban {banned}");
    }
}
