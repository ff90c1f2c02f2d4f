//! Start-up: bad settings and an unreachable Binance fail fast with a clear
//! error instead of retrying for ever.

use std::time::Duration;

use pulse_io::{BinanceConfig, BinanceSource, Metrics, RetryPolicy, SourceError};
use pulse_testkit::fake_binance::FakeBinance;

fn quick(config: BinanceConfig) -> BinanceConfig {
    BinanceConfig {
        startup_attempts: 3,
        connect_timeout: Duration::from_secs(2),
        retry: RetryPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        },
        ..config
    }
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    // Bind and drop: a loopback port with nobody behind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = quick(BinanceConfig {
        ws_base: format!("ws://127.0.0.1:{port}"),
        rest_base: format!("http://127.0.0.1:{port}"),
        ..BinanceConfig::default()
    });
    let started = tokio::time::Instant::now();
    let err = BinanceSource::connect(config, Metrics::new())
        .await
        .expect_err("unreachable");
    match &err {
        SourceError::Unreachable { url, reason } => {
            assert_eq!(url, &format!("ws://127.0.0.1:{port}/market/stream"));
            assert!(
                reason.starts_with("3 connection attempts failed"),
                "{reason}"
            );
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn refused_handshakes_at_start_up_are_unreachable() {
    let fake = FakeBinance::start(Vec::new()).await;
    fake.reject_handshakes(3);
    let config = quick(BinanceConfig {
        ws_base: fake.ws_base(),
        rest_base: fake.rest_base(),
        ..BinanceConfig::default()
    });
    let err = BinanceSource::connect(config, Metrics::new())
        .await
        .expect_err("refused");
    assert!(matches!(err, SourceError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(fake.stats().handshakes_rejected, 3);
}

#[tokio::test]
async fn bad_settings_are_rejected_before_connecting() {
    let config = BinanceConfig {
        symbols: Vec::new(),
        ..BinanceConfig::default()
    };
    let err = BinanceSource::connect(config, Metrics::new())
        .await
        .expect_err("no symbols");
    assert!(matches!(err, SourceError::Config(_)), "{err:?}");
}
