//! Smoke test: the `clickhouse` crate reaches the server at
//! `$PULSE_TEST_CLICKHOUSE_URL` and round-trips rows through a table in a
//! fresh database.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Trade {
    trade_id: u64,
    symbol: String,
    price: String,
    is_buyer_maker: bool,
}

#[tokio::test]
async fn insert_then_select_returns_the_same_rows() {
    let Some(db) = pulse_testkit::clickhouse().await else {
        return;
    };
    let client = db.client();
    client
        .query(
            "CREATE TABLE trades (trade_id UInt64, symbol String, price String, \
             is_buyer_maker UInt8) ENGINE = MergeTree ORDER BY trade_id",
        )
        .execute()
        .await
        .expect("create table");

    // The first two trades of
    // binance-spot_btcusdt@trade_2023-04-04T235959Z_2023-04-05T000654Z.jsonl.gz.
    let rows = vec![
        Trade {
            trade_id: 3_071_245_454,
            symbol: "BTCUSDT".to_owned(),
            price: "28165.47000000".to_owned(),
            is_buyer_maker: true,
        },
        Trade {
            trade_id: 3_071_245_455,
            symbol: "BTCUSDT".to_owned(),
            price: "28165.47000000".to_owned(),
            is_buyer_maker: true,
        },
    ];
    let mut insert = client.insert::<Trade>("trades").await.expect("insert");
    for row in &rows {
        insert.write(row).await.expect("write row");
    }
    insert.end().await.expect("finish insert");

    let selected = client
        .query("SELECT ?fields FROM trades ORDER BY trade_id")
        .fetch_all::<Trade>()
        .await
        .expect("select");
    assert_eq!(selected, rows);

    let count: u64 = client
        .query("SELECT count() FROM trades WHERE symbol = ?")
        .bind("BTCUSDT")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(count, 2);
}

#[tokio::test]
async fn private_server_keeps_rows_across_kill_and_restart() {
    let Some(mut server) = pulse_testkit::ClickHouseProcess::start().await else {
        return;
    };
    let client = server.client();
    client
        .query("CREATE TABLE trades (trade_id UInt64) ENGINE = MergeTree ORDER BY trade_id")
        .execute()
        .await
        .expect("create table");
    client
        .query("INSERT INTO trades VALUES (3071245454), (3071245455)")
        .execute()
        .await
        .expect("insert");

    let url = server.url();
    server.kill();
    assert!(!server.is_running());
    server.restart().await;
    assert_eq!(server.url(), url, "restart keeps the port");

    let ids = server
        .client()
        .query("SELECT trade_id FROM trades ORDER BY trade_id")
        .fetch_all::<u64>()
        .await
        .expect("select after restart");
    assert_eq!(ids, vec![3_071_245_454, 3_071_245_455]);
}
