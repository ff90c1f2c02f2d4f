//! `pulse produce` against a broker that hangs (SIGSTOP: connections stay
//! open, nothing is answered): it warns and counts the failure within its
//! `--kafka-timeout` instead of waiting for ever, and Ctrl-C then ends it
//! within its bounded shutdown retries, saying how many trades it could not
//! publish.

mod produce_consume_support;

use std::time::{Duration, Instant};

use produce_consume_support::{BUSY_BTC, Pulse, capture, scrape_metrics, series};
use pulse_testkit::TansuProcess;

const ERRORS: &str = "pulse_sink_errors_total{sink=\"kafka\"}";

/// `pulse produce --replay` of the busy capture at `speed` into a fresh
/// topic on `broker`, once it has published trades.
async fn producing(broker: &TansuProcess, speed: &str) -> Option<Pulse> {
    let path = capture(BUSY_BTC)?;
    let brokers = broker.brokers().join(",");
    let topic = pulse_testkit::unique_name("hung");
    let produce = Pulse::spawn(
        "produce",
        &[
            "produce",
            "--brokers",
            &brokers,
            "--topic",
            &topic,
            "--replay",
            path.to_str().unwrap(),
            "--speed",
            speed,
            "--kafka-timeout",
            "1s",
            // Trades only: a marker the hang caught first would hold no trades.
            "--marker-interval",
            "1h",
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let published = "pulse_trades_received_total";
    pulse_testkit::wait_until(Duration::from_secs(60), "trades are published", || async {
        produce.output().contains("publishing") && {
            let metrics = scrape_metrics(&produce).await;
            metrics
                .lines()
                .any(|l| l.starts_with(published) && !l.ends_with(" 0"))
        }
    })
    .await;
    Some(produce)
}

#[tokio::test]
async fn a_hung_broker_is_reported_and_ctrl_c_still_ends_produce() {
    let Some(mut broker) = TansuProcess::start_memory().await else {
        return;
    };
    let Some(mut produce) = producing(&broker, "5").await else {
        return;
    };
    broker.hang();
    let hung = Instant::now();
    pulse_testkit::wait_until(Duration::from_secs(30), "the hang is counted", || async {
        series(&scrape_metrics(&produce).await, ERRORS) >= 2
    })
    .await;
    // Two timeouts of 1 s and a short pause, not the minutes rskafka waits.
    assert!(
        hung.elapsed() < Duration::from_secs(20),
        "{:?}",
        hung.elapsed()
    );
    assert!(
        produce.output().contains("no answer within 1s"),
        "{}",
        produce.output()
    );

    let interrupted = Instant::now();
    let status = produce.interrupt().await;
    // Five more tries of about 1 s each, with pauses from 200 ms.
    assert!(
        interrupted.elapsed() < Duration::from_secs(30),
        "{:?}",
        interrupted.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{}", produce.output());
    let output = produce.output();
    let lost = output
        .split("sink kafka failed with ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert!(lost.is_some_and(|n| n > 0), "{output}");
    broker.resume();
}

#[tokio::test]
async fn after_a_hang_produce_reconnects_and_publishes_everything() {
    let Some(mut broker) = TansuProcess::start_memory().await else {
        return;
    };
    let Some(mut produce) = producing(&broker, "50").await else {
        return;
    };
    broker.hang();
    pulse_testkit::wait_until(Duration::from_secs(30), "the hang is counted", || async {
        series(&scrape_metrics(&produce).await, ERRORS) >= 1
    })
    .await;
    broker.resume();
    produce.wait_success().await;
    let output = produce.output();
    // The connection the hang caught is not trusted again.
    assert!(
        output.contains("reconnecting to Kafka after a request got no answer"),
        "{output}"
    );
    assert!(
        output.contains("published=21313 received=21313"),
        "{output}"
    );
}
