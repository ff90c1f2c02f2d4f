//! Handles on the shared test servers, each with a fresh random namespace.

use std::time::Duration;

use pulse_io::kafka::{KafkaClient, KafkaConfig, KafkaError};

use super::env::{
    CLICKHOUSE_URL_VAR, KAFKA_BROKERS_VAR, KAFKA_DURABLE_BROKERS_VAR, require_env, unique_name,
};

/// How long a Kafka client keeps retrying a broker that does not answer.
const KAFKA_CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// A ClickHouse client for `url`.
///
/// Validation is off because the Debian server (18.16) rejects the setting
/// `describe_include_subcolumns` that validation sends.
pub fn clickhouse_client(url: &str) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(url)
        .with_validation(false)
}

/// A client for `brokers` whose requests give up after a bounded time
/// instead of rskafka's default of retrying forever.
pub async fn kafka_client(brokers: Vec<String>) -> Result<KafkaClient, KafkaError> {
    let config = KafkaConfig {
        request_deadline: KAFKA_CONNECT_DEADLINE,
        ..KafkaConfig::new(brokers)
    };
    config.connect().await
}

/// A fresh database on the shared ClickHouse server.
#[derive(Debug, Clone)]
pub struct TestClickHouse {
    url: String,
    database: String,
}

impl TestClickHouse {
    /// The server's `http://host:port`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The name of this test's database (it exists already).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// A client whose default database is this test's database.
    pub fn client(&self) -> clickhouse::Client {
        clickhouse_client(&self.url).with_database(&self.database)
    }

    /// pulse's settings for this test's database, the others default.
    pub fn config(&self) -> pulse_io::clickhouse::ClickHouseConfig {
        pulse_io::clickhouse::ClickHouseConfig {
            url: self.url.clone(),
            database: self.database.clone(),
            ..Default::default()
        }
    }
}

/// Creates a fresh database on the server at `$PULSE_TEST_CLICKHOUSE_URL`.
///
/// Returns `None` (the test skips) when the variable is unset. The database
/// is left behind: its random name keeps it out of other tests' way, and
/// `scripts/services.sh up` starts from an empty server.
///
/// # Panics
/// When the variable is unset under `CI=true`, or the database cannot be
/// created (the server is down or unreachable).
pub async fn clickhouse() -> Option<TestClickHouse> {
    let url = require_env(CLICKHOUSE_URL_VAR)?;
    let database = unique_name("pulse_test");
    clickhouse_client(&url)
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .unwrap_or_else(|e| {
            panic!("create database {database} on ClickHouse at {url} ({CLICKHOUSE_URL_VAR}): {e}")
        });
    Some(TestClickHouse { url, database })
}

/// A broker address list and a topic name no other test uses.
///
/// The topic does not exist yet: call [`create_topic`](Self::create_topic),
/// or let the code under test create it.
#[derive(Debug, Clone)]
pub struct TestKafka {
    brokers: Vec<String>,
    topic: String,
}

impl TestKafka {
    /// Bootstrap brokers, `host:port` each.
    pub fn brokers(&self) -> &[String] {
        &self.brokers
    }

    /// This test's topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// A connected client, each request bounded by the connect deadline.
    ///
    /// # Panics
    /// When no broker answers within the connect deadline.
    pub async fn client(&self) -> KafkaClient {
        kafka_client(self.brokers.clone())
            .await
            .unwrap_or_else(|e| panic!("connect to Kafka brokers {:?}: {e}", self.brokers))
    }

    /// Creates this test's topic with `partitions` partitions (replication 1)
    /// and returns a connected client.
    ///
    /// # Panics
    /// When the broker is unreachable or refuses to create the topic.
    pub async fn create_topic(&self, partitions: i32) -> KafkaClient {
        let client = self.client().await;
        client
            .rskafka()
            .controller_client()
            .unwrap_or_else(|e| panic!("Kafka controller client: {e}"))
            .create_topic(&self.topic, partitions, 1, 5_000)
            .await
            .unwrap_or_else(|e| panic!("create topic {}: {e}", self.topic));
        client
    }
}

/// A fresh topic name on the fast broker at `$PULSE_TEST_KAFKA_BROKERS`.
///
/// That broker may keep records only in memory; tests of durability use
/// [`durable_kafka`].
///
/// Returns `None` (the test skips) when the variable is unset.
///
/// # Panics
/// When the variable is unset under `CI=true`.
#[track_caller]
pub fn kafka() -> Option<TestKafka> {
    kafka_from(KAFKA_BROKERS_VAR)
}

/// A fresh topic name on the durable broker at
/// `$PULSE_TEST_KAFKA_DURABLE_BROKERS`.
///
/// Returns `None` (the test skips) when the variable is unset.
///
/// # Panics
/// When the variable is unset under `CI=true`.
#[track_caller]
pub fn durable_kafka() -> Option<TestKafka> {
    kafka_from(KAFKA_DURABLE_BROKERS_VAR)
}

#[track_caller]
fn kafka_from(var: &str) -> Option<TestKafka> {
    let brokers: Vec<String> = require_env(var)?
        .split(',')
        .map(str::trim)
        .filter(|broker| !broker.is_empty())
        .map(str::to_owned)
        .collect();
    Some(TestKafka {
        brokers,
        topic: unique_name("pulse_test"),
    })
}
