//! The examples run, on real data, and print what the README says they print.
//!
//! Each example file is compiled into this test as a module, so its code
//! (not a copy) is what runs here; `cargo test --all-targets` also builds
//! them as the programs users run.

mod support;

#[allow(dead_code)]
#[path = "../examples/aggregate_file.rs"]
mod aggregate_file;
#[allow(dead_code)]
#[path = "../examples/custom_sink.rs"]
mod custom_sink;
#[allow(dead_code)]
#[path = "../examples/custom_source.rs"]
mod custom_source;

/// The ```text block that follows `marker` in the README.
fn readme_block_after(marker: &str) -> Vec<String> {
    let readme = support::read("README.md");
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README lacks {marker:?}"));
    let rest = &readme[at..];
    let start = rest.find("```text\n").expect("a ```text block") + "```text\n".len();
    let end = start + rest[start..].find("```").unwrap();
    rest[start..end].lines().map(str::to_owned).collect()
}

#[test]
fn aggregate_file_prints_what_the_readme_shows() {
    let Some(data) = pulse_testkit::data_dir() else {
        return;
    };
    let report = aggregate_file::aggregate(&data.join(aggregate_file::DEFAULT_CAPTURE)).unwrap();
    let mut printed = vec![aggregate_file::HEADER.to_owned()];
    printed.extend(report.windows.iter().map(aggregate_file::line));
    printed.push(report.summary());

    let documented = readme_block_after("`aggregate_file` prints");
    assert!(documented.len() >= 4, "{documented:?}");
    let mut from = 0;
    for line in documented.iter().filter(|l| l.as_str() != "...") {
        let found = printed[from..]
            .iter()
            .position(|p| p == line)
            .unwrap_or_else(|| panic!("README line not printed (in order): {line:?}"));
        from += found + 1;
    }
    assert_eq!(
        documented.last(),
        printed.last(),
        "the summary line closes both"
    );
}

#[tokio::test]
async fn custom_sink_replays_every_trade() {
    let Some(data) = pulse_testkit::data_dir() else {
        return;
    };
    let summary = custom_sink::run(&data.join(custom_sink::DEFAULT_CAPTURE))
        .await
        .unwrap();
    assert!(summary.source_ended);
    assert_eq!((summary.trades, summary.windows), (574, 268));
}

#[tokio::test]
async fn custom_source_feeds_the_pipeline() {
    let summary = custom_source::run(std::io::sink()).await.unwrap();
    // 600 trades, 50 ms apart from a whole second: 30 full windows.
    assert_eq!((summary.trades, summary.windows), (600, 30));
    assert_eq!((summary.duplicates, summary.gaps), (0, 0));
    assert!(summary.source_ended);
}
