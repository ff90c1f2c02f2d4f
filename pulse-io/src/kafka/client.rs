//! Connecting to the brokers, and the settings every Kafka part shares.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

use super::{KafkaError, deadline};

/// How to reach the brokers. Plain data with defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// Client id sent to the broker, visible in its logs.
    pub client_id: String,
    /// How long one request may take, its retries of transient failures
    /// (broker down, leader moving) inside rskafka included, before the
    /// error reaches pulse, which logs and counts it, backs off and tries
    /// again. A fetch may take its `max_wait` on top. rskafka's own default
    /// is forever.
    pub request_deadline: Duration,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: vec!["127.0.0.1:9092".to_owned()],
            client_id: "pulse".to_owned(),
            request_deadline: Duration::from_secs(10),
        }
    }
}

impl KafkaConfig {
    /// Config for these bootstrap brokers, other settings default.
    pub fn new(brokers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        KafkaConfig {
            brokers: brokers.into_iter().map(Into::into).collect(),
            ..KafkaConfig::default()
        }
    }

    /// Checks the settings once, up front.
    pub fn validate(&self) -> Result<(), KafkaError> {
        if self.brokers.is_empty() || self.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(KafkaError::Config("no Kafka brokers given".to_owned()));
        }
        if self.request_deadline.is_zero() {
            return Err(KafkaError::Config(
                "the request deadline (--kafka-timeout) must be above zero".to_owned(),
            ));
        }
        Ok(())
    }

    /// Connects to the cluster.
    pub async fn connect(&self) -> Result<KafkaClient, KafkaError> {
        self.validate()?;
        // rskafka's per-attempt logs are quiet by default: say what is tried.
        tracing::info!(
            brokers = %self.brokers.join(","),
            "connecting to Kafka (retrying for up to {:?})",
            self.request_deadline
        );
        let client = self.build().await?;
        Ok(KafkaClient {
            config: self.clone(),
            client: Mutex::new(Arc::new(client)),
            stale: AtomicBool::new(false),
        })
    }

    /// A new rskafka client, connected to a bootstrap broker.
    async fn build(&self) -> Result<Client, KafkaError> {
        let brokers = self.brokers.join(",");
        let build = ClientBuilder::new(self.brokers.clone())
            .client_id(self.client_id.clone())
            .backoff_config(BackoffConfig {
                init_backoff: Duration::from_millis(50),
                // rskafka's default cap is 500 s: far too slow to notice a
                // restarted broker.
                max_backoff: Duration::from_secs(2),
                base: 2.0,
                // rskafka counts only its pauses against this, and
                // neither logs nor counts what it retries: after about a
                // second a refused connection (a broker restarting) or an
                // unknown topic comes back to pulse, which logs, counts and
                // backs off, and pulse's timeout catches what never answers.
                deadline: Some((self.request_deadline / 2).min(RSKAFKA_RETRIES)),
            })
            .build();
        deadline::within(self.request_deadline, "connect", &brokers, build)
            .await?
            .map_err(|source| KafkaError::Connect {
                brokers,
                source: Box::new(source),
            })
    }
}

/// How long rskafka may pause between its own tries of one request.
const RSKAFKA_RETRIES: Duration = Duration::from_secs(1);

/// A connected client, and how long each of its requests may take.
///
/// rskafka drops a broker connection only when a request on it fails, and
/// a request pulse gave up on has not failed: a connection whose peer
/// vanished without a reset (a host gone, a container with a new address)
/// would be used for ever. So after a request times out the client is
/// [`stale`](Self::mark_stale), and the next request connects afresh.
#[derive(Debug)]
pub struct KafkaClient {
    config: KafkaConfig,
    client: Mutex<Arc<Client>>,
    stale: AtomicBool,
}

impl KafkaClient {
    /// The rskafka client, for requests pulse does not wrap.
    pub fn rskafka(&self) -> Arc<Client> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long one request may take ([`KafkaConfig::request_deadline`]).
    pub fn request_deadline(&self) -> Duration {
        self.config.request_deadline
    }

    /// Says a request on this client (or a partition client made from it)
    /// got no answer: the next request connects afresh first.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    /// A client for `topic`'s partition `id`, which waits while the topic
    /// is not in the metadata yet.
    pub(super) async fn partition(
        &self,
        topic: &str,
        id: i32,
    ) -> Result<PartitionClient, KafkaError> {
        let owned = topic.to_owned();
        let open = |c: Arc<Client>| async move {
            c.partition_client(owned, id, UnknownTopicHandling::Retry)
                .await
        };
        self.request("open partition", &format!("{topic}/{id}"), open)
            .await
    }

    /// `make(client)`'s request, bounded by the request deadline; on a
    /// fresh connection if the client is stale.
    pub(super) async fn request<T, F, Fut>(
        &self,
        operation: &'static str,
        topic: &str,
        make: F,
    ) -> Result<T, KafkaError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, rskafka::client::error::Error>>,
    {
        if self.stale.swap(false, Ordering::Relaxed) {
            tracing::info!(brokers = %self.config.brokers.join(","), "reconnecting to Kafka after a request got no answer");
            match self.config.build().await {
                Ok(fresh) => {
                    *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh)
                }
                Err(e) => {
                    self.mark_stale();
                    return Err(e);
                }
            }
        }
        let limit = self.config.request_deadline;
        let result = deadline::request(limit, operation, topic, make(self.rskafka())).await;
        if matches!(result, Err(KafkaError::TimedOut { .. })) {
            self.mark_stale();
        }
        result
    }
}

/// Compression of produced record batches. Reading accepts every codec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression (default): cheapest for the small JSON messages.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// LZ4.
    Lz4,
    /// Snappy.
    Snappy,
    /// Zstandard.
    Zstd,
}

impl Compression {
    pub(crate) fn to_rskafka(self) -> rskafka::client::partition::Compression {
        use rskafka::client::partition::Compression as C;
        match self {
            Compression::None => C::NoCompression,
            Compression::Gzip => C::Gzip,
            Compression::Lz4 => C::Lz4,
            Compression::Snappy => C::Snappy,
            Compression::Zstd => C::Zstd,
        }
    }
}

/// An unknown compression name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression {0:?}: use none, gzip, lz4, snappy or zstd")]
pub struct UnknownCompression(String);

impl FromStr for Compression {
    type Err = UnknownCompression;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "lz4" => Ok(Compression::Lz4),
            "snappy" => Ok(Compression::Snappy),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(UnknownCompression(s.to_owned())),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
            Compression::Zstd => "zstd",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_and_a_deadline_are_required() {
        assert!(KafkaConfig::default().validate().is_ok());
        let none = KafkaConfig::new(Vec::<String>::new());
        assert!(none.validate().is_err());
        let no_time = KafkaConfig {
            request_deadline: Duration::ZERO,
            ..KafkaConfig::default()
        };
        let err = no_time.validate().unwrap_err().to_string();
        assert!(err.contains("--kafka-timeout"), "{err}");
    }

    /// A broker that refuses connections (restarting) comes back to pulse
    /// as that, after rskafka's second of tries, not as a request that
    /// took the whole deadline: pulse then logs and counts it.
    #[tokio::test]
    async fn a_refused_connection_comes_back_after_rskafkas_tries() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = KafkaConfig::new([format!("127.0.0.1:{port}")]);
        assert_eq!(config.request_deadline, Duration::from_secs(10));
        let started = std::time::Instant::now();
        let err = config.connect().await.unwrap_err();
        assert!(matches!(err, KafkaError::Connect { .. }), "{err}");
        assert!(err.is_retryable(), "{err}");
        // Well inside the 10 s deadline; its 5 s half was the bound before.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
}
