//! docker-compose.yml, the Dockerfile and Grafana's provisioning, checked
//! without a Docker engine: every file they reference exists, the services,
//! ports, plugins and health checks are as documented, and the pieces agree
//! with each other (host names, ports, credentials, the DDL pulse embeds).
//!
//! Compose's `${VAR:-default}` interpolation is applied with an empty
//! environment, which is what `docker compose up -d` sees on a fresh clone.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;
use support::{CLICKHOUSE_PLUGIN, DATASOURCE_UID, read, repo_path, repo_root, yaml};

const COMPOSE: &str = "docker-compose.yml";

fn compose() -> Value {
    yaml(COMPOSE)
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let s = &compose["services"][name];
    assert!(s.is_mapping(), "{COMPOSE} has no service {name:?}");
    s
}

/// Compose's variable interpolation, with every variable unset.
fn interpolate(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {s:?}"));
            let expr = &r[..end];
            let default = expr
                .split_once(":-")
                .or_else(|| expr.split_once('-'))
                .map(|(_, d)| d);
            let Some(default) = default else {
                panic!("{s:?}: ${{{expr}}} has no default, so a fresh clone gets an empty value")
            };
            out.push_str(default);
            rest = &r[end + 1..];
        } else {
            panic!("{s:?}: use ${{VAR:-default}} (or $$ for a literal $)");
        }
    }
    out.push_str(rest);
    out
}

fn string(v: &Value) -> String {
    match v {
        Value::String(s) => interpolate(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

/// A service's environment, in either list or map form, interpolated.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), string(v)))
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|item| {
                let item = string(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        other => panic!("environment must be a list or a map, got {other:?}"),
    }
}

fn env_var(service: &Value, name: &str) -> String {
    environment(service)
        .remove(name)
        .unwrap_or_else(|| panic!("environment variable {name} is not set"))
}

/// One entry of `volumes:`.
#[derive(Debug)]
struct Mount {
    source: String,
    target: String,
}

impl Mount {
    fn is_bind(&self) -> bool {
        self.source.starts_with('.') || self.source.starts_with('/')
    }

    fn host_path(&self) -> PathBuf {
        repo_root().join(&self.source)
    }
}

fn mounts(service: &Value) -> Vec<Mount> {
    service["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|v| match v {
            Value::String(s) => {
                let s = interpolate(s);
                let mut parts = s.split(':');
                let source = parts.next().unwrap().to_owned();
                let target = parts
                    .next()
                    .unwrap_or_else(|| panic!("volume {s:?} has no target"))
                    .to_owned();
                Mount { source, target }
            }
            Value::Mapping(_) => Mount {
                source: string(&v["source"]),
                target: string(&v["target"]),
            },
            other => panic!("bad volume entry {other:?}"),
        })
        .collect()
}

/// The host path a container path of `service` comes from, through a bind mount.
fn host_path_of(service: &Value, container_path: &str) -> Option<PathBuf> {
    mounts(service)
        .into_iter()
        .filter(Mount::is_bind)
        .find_map(|m| {
            let rest = Path::new(container_path).strip_prefix(&m.target).ok()?;
            Some(m.host_path().join(rest))
        })
}

/// Published host ports → container ports.
fn ports(service: &Value) -> BTreeMap<u16, u16> {
    service["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|p| match p {
            Value::Mapping(_) => (
                string(&p["published"]).parse().unwrap(),
                string(&p["target"]).parse().unwrap(),
            ),
            _ => {
                let s = string(p);
                let parts: Vec<&str> = s.split(':').collect();
                let container = parts[parts.len() - 1].trim_end_matches("/tcp");
                let host = parts.get(parts.len().wrapping_sub(2)).unwrap_or(&container);
                (host.parse().unwrap(), container.parse().unwrap())
            }
        })
        .collect()
}

/// `command:` as a list of words.
fn command(service: &Value) -> Vec<String> {
    match &service["command"] {
        Value::Sequence(list) => list.iter().map(string).collect(),
        Value::String(s) => interpolate(s)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("bad command {other:?}"),
    }
}

fn healthcheck_text(service: &Value) -> String {
    let test = &service["healthcheck"]["test"];
    match test {
        Value::Sequence(list) => list.iter().map(string).collect::<Vec<_>>().join(" "),
        Value::String(s) => interpolate(s),
        _ => String::new(),
    }
}

#[test]
fn every_service_is_there_with_its_port() {
    let c = compose();
    for (name, port) in [
        ("redpanda", 19092),
        ("redpanda-console", 8080),
        ("clickhouse", 8123),
        ("grafana", 3000),
    ] {
        let published = ports(service(&c, name));
        assert!(
            published.contains_key(&port),
            "{name} must publish {port}, has {published:?}"
        );
    }
    let names: BTreeSet<&str> = c["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    for name in ["pulse-produce", "pulse-consume"] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }
    // Host ports must not collide.
    let mut seen = BTreeMap::new();
    for name in &names {
        for host in ports(service(&c, name)).into_keys() {
            if let Some(other) = seen.insert(host, *name) {
                panic!("port {host} is published by both {other} and {name}");
            }
        }
    }
}

/// The one variable that moves every published port off loopback.
const BIND: &str = "${PULSE_BIND:-127.0.0.1}";

#[test]
fn every_port_is_published_on_loopback_unless_pulse_bind_says_otherwise() {
    let c = compose();
    let mut published = 0;
    for (name, svc) in c["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for p in svc["ports"].as_sequence().into_iter().flatten() {
            // The long form's host_ip, or the short form's leading address.
            let raw = match p {
                Value::Mapping(_) => p["host_ip"].as_str().unwrap_or("").to_owned(),
                Value::String(s) => s.rsplitn(3, ':').nth(2).unwrap_or("").to_owned(),
                other => panic!("{name}: port {other:?} has no host address"),
            };
            assert_eq!(
                raw, BIND,
                "{name}: port {p:?} must bind {BIND}, or it is open to the whole network"
            );
            published += 1;
        }
    }
    assert!(published >= 7, "only {published} published ports");
    assert_eq!(interpolate(BIND), "127.0.0.1");
    // The README tells users about the variable.
    assert!(read("README.md").contains("PULSE_BIND=0.0.0.0"));
}

#[test]
fn redpanda_is_a_dev_container_with_an_external_listener() {
    let c = compose();
    let rp = service(&c, "redpanda");
    let cmd = command(rp).join(" ");
    assert!(cmd.contains("dev-container"), "{cmd}");
    assert!(
        cmd.contains("external://localhost:19092") || cmd.contains("external://127.0.0.1:19092"),
        "host tools need the broker advertised on localhost:19092: {cmd}"
    );
    assert!(
        !healthcheck_text(rp).is_empty(),
        "redpanda needs a health check"
    );
    // The console and pulse talk to the internal listener that redpanda advertises.
    let console = service(&c, "redpanda-console");
    let brokers = env_var(console, "KAFKA_BROKERS");
    assert!(
        cmd.contains(&format!("internal://{brokers}")),
        "{brokers} vs {cmd}"
    );
    for name in ["pulse-produce", "pulse-consume"] {
        let brokers = env_var(service(&c, name), "PULSE_KAFKA_BROKERS");
        assert!(
            cmd.contains(&format!("internal://{brokers}")),
            "{name}: {brokers} is not redpanda's internal address ({cmd})"
        );
    }
}

#[test]
fn every_bind_mount_and_build_context_exists() {
    let c = compose();
    let declared: BTreeSet<String> = c["volumes"]
        .as_mapping()
        .map(|m| m.keys().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    let mut binds = 0;
    for (name, svc) in c["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for m in mounts(svc) {
            if m.is_bind() {
                binds += 1;
                assert!(
                    m.host_path().exists(),
                    "{name} mounts {} which does not exist",
                    m.source
                );
            } else {
                assert!(
                    declared.contains(&m.source),
                    "{name}: volume {} is not declared",
                    m.source
                );
            }
        }
        if !svc["build"].is_null() {
            let (context, dockerfile) = match &svc["build"] {
                Value::String(s) => (interpolate(s), "Dockerfile".to_owned()),
                b => (
                    string(&b["context"]),
                    b.get("dockerfile").map_or("Dockerfile".to_owned(), string),
                ),
            };
            let context = repo_path(&context);
            assert!(
                context.is_dir(),
                "{name}: build context {} missing",
                context.display()
            );
            assert!(
                context.join(&dockerfile).is_file(),
                "{name}: {dockerfile} missing in {}",
                context.display()
            );
        }
    }
    assert!(
        binds >= 3,
        "expected the pulse-io/sql/ and grafana/ bind mounts"
    );
}

#[test]
fn clickhouse_runs_the_ddl_pulse_embeds() {
    let c = compose();
    let ch = service(&c, "clickhouse");
    let initdb = host_path_of(ch, "/docker-entrypoint-initdb.d")
        .expect("clickhouse must mount the DDL into /docker-entrypoint-initdb.d");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&initdb)
        .unwrap_or_else(|e| panic!("{}: {e}", initdb.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    let embedded = [
        pulse_io::clickhouse::METRICS_DDL,
        pulse_io::clickhouse::POSITIONS_DDL,
    ];
    for (name, text) in &files {
        assert!(
            embedded.contains(&text.as_str()),
            "{name} is not a DDL pulse itself runs: keep one copy of the schema"
        );
    }
    for ddl in embedded {
        assert!(
            files.iter().any(|(_, text)| text == ddl),
            "a DDL pulse embeds is missing from {}",
            initdb.display()
        );
    }
    // The entrypoint runs the files in name order: the metrics table first.
    assert!(files[0].1.contains("pulse_metrics"), "{:?}", files[0].0);
    assert!(
        !healthcheck_text(ch).is_empty(),
        "clickhouse needs a health check"
    );
}

#[test]
fn grafana_installs_the_plugin_and_provisions_from_the_repo() {
    let c = compose();
    let g = service(&c, "grafana");
    let env = environment(g);
    assert!(
        env["GF_INSTALL_PLUGINS"].contains(CLICKHOUSE_PLUGIN),
        "GF_INSTALL_PLUGINS = {:?}",
        env["GF_INSTALL_PLUGINS"]
    );
    assert_eq!(env["GF_SECURITY_ADMIN_USER"], "admin");
    assert_eq!(env["GF_SECURITY_ADMIN_PASSWORD"], "admin");

    let provisioning = host_path_of(g, "/etc/grafana/provisioning")
        .expect("grafana/provisioning must be mounted at /etc/grafana/provisioning");
    assert!(provisioning.join("datasources").is_dir());
    assert!(provisioning.join("dashboards").is_dir());

    let home = &env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
    let home = host_path_of(g, home).unwrap_or_else(|| panic!("{home} is not mounted"));
    assert!(home.is_file(), "home dashboard {} missing", home.display());
    assert!(
        !healthcheck_text(g).is_empty(),
        "grafana needs a health check"
    );
}

/// Replaces `$VAR` / `${VAR}` the way Grafana expands provisioning files,
/// from the Grafana container's environment.
fn grafana_expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, after) = match rest.strip_prefix('{') {
            Some(r) => {
                let end = r.find('}').unwrap();
                (&r[..end], &r[end + 1..])
            }
            None => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        let value = env.get(name).unwrap_or_else(|| {
            panic!("provisioning uses ${name}, which the grafana service does not set")
        });
        out.push_str(value);
        rest = after;
    }
    out.push_str(rest);
    out
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no provisioning files in {}",
        dir.display()
    );
    files
}

fn expanded_yaml(path: &Path, env: &BTreeMap<String, String>) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&grafana_expand(&text, env))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_datasource_points_at_the_compose_clickhouse_with_its_credentials() {
    let c = compose();
    let g = service(&c, "grafana");
    let env = environment(g);
    let dir = host_path_of(g, "/etc/grafana/provisioning/datasources").unwrap();
    let mut found = None;
    for file in yaml_files(&dir) {
        let doc = expanded_yaml(&file, &env);
        assert_eq!(doc["apiVersion"].as_u64(), Some(1), "{}", file.display());
        for ds in doc["datasources"].as_sequence().into_iter().flatten() {
            if ds["uid"].as_str() == Some(DATASOURCE_UID) {
                found = Some(ds.clone());
            }
        }
    }
    let ds = found.unwrap_or_else(|| panic!("no data source with uid {DATASOURCE_UID}"));
    assert_eq!(ds["type"].as_str(), Some(CLICKHOUSE_PLUGIN));

    let host = ds["jsonData"]["host"].as_str().unwrap();
    let ch = service(&c, host);
    assert!(
        !ch["image"].is_null(),
        "data source host {host} is not a compose service"
    );
    let ch_env = environment(ch);
    assert_eq!(
        ds["jsonData"]["username"].as_str(),
        Some(ch_env["CLICKHOUSE_USER"].as_str())
    );
    assert_eq!(
        ds["secureJsonData"]["password"].as_str(),
        Some(ch_env["CLICKHOUSE_PASSWORD"].as_str())
    );
    // The image's native port (9000) or HTTP port (8123), matching the protocol.
    let protocol = ds["jsonData"]["protocol"].as_str().unwrap_or("native");
    let port = ds["jsonData"]["port"].as_u64().unwrap();
    match protocol {
        "native" => assert_eq!(port, 9000),
        "http" => assert_eq!(port, 8123),
        other => panic!("unknown protocol {other}"),
    }
    // pulse consume writes where Grafana reads.
    let database = ds["jsonData"]["defaultDatabase"].as_str().unwrap();
    let consume = environment(service(&c, "pulse-consume"));
    assert_eq!(
        consume
            .get("PULSE_CLICKHOUSE_DATABASE")
            .map(String::as_str)
            .unwrap_or("default"),
        database
    );
}

#[test]
fn the_dashboard_provider_loads_the_repo_dashboards() {
    let c = compose();
    let g = service(&c, "grafana");
    let env = environment(g);
    let dir = host_path_of(g, "/etc/grafana/provisioning/dashboards").unwrap();
    let mut dashboards = Vec::new();
    for file in yaml_files(&dir) {
        let doc = expanded_yaml(&file, &env);
        for provider in doc["providers"].as_sequence().into_iter().flatten() {
            assert_eq!(provider["type"].as_str(), Some("file"));
            let path = provider["options"]["path"].as_str().unwrap();
            let host = host_path_of(g, path)
                .unwrap_or_else(|| panic!("provider path {path} is not mounted into grafana"));
            for entry in std::fs::read_dir(&host).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "json") {
                    dashboards.push(p);
                }
            }
        }
    }
    assert!(
        dashboards.iter().any(|p| p.ends_with(support::DASHBOARD)),
        "{} is not provisioned (found {dashboards:?})",
        support::DASHBOARD
    );
    // Every panel reads the provisioned data source.
    let dashboard = support::dashboard();
    for panel in support::panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let uid = target["datasource"]["uid"]
                .as_str()
                .or(panel["datasource"]["uid"].as_str());
            assert_eq!(uid, Some(DATASOURCE_UID), "panel {}", panel["title"]);
        }
    }
}

#[test]
fn pulse_services_are_built_here_restart_and_report_health() {
    let c = compose();
    for (name, subcommand, needs) in [
        ("pulse-produce", "produce", &["redpanda"][..]),
        ("pulse-consume", "consume", &["redpanda", "clickhouse"][..]),
    ] {
        let svc = service(&c, name);
        assert!(
            !svc["build"].is_null(),
            "{name} must be built from this repository"
        );
        assert_eq!(svc["restart"].as_str(), Some("unless-stopped"), "{name}");
        let cmd = command(svc);
        assert_eq!(
            cmd.first().map(String::as_str),
            Some(subcommand),
            "{name}: {cmd:?}"
        );

        // The health check asks the --metrics endpoint this command opens.
        let metrics = cmd
            .iter()
            .position(|w| w == "--metrics")
            .map(|i| cmd[i + 1].clone())
            .unwrap_or_else(|| panic!("{name} must serve --metrics for its health check"));
        let port: u16 = metrics.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            metrics.starts_with("0.0.0.0:"),
            "{name}: bind {metrics} on all interfaces"
        );
        let check = healthcheck_text(svc);
        assert!(
            check.contains(&format!("/{port}")) || check.contains(&format!(":{port}/")),
            "{name}: health check {check:?} does not probe port {port}"
        );
        assert!(check.contains("/metrics"), "{name}: {check}");
        assert!(
            ports(svc).values().any(|&p| p == port),
            "{name}: publish {port}"
        );

        for dep in needs {
            let condition = svc["depends_on"][*dep]["condition"].as_str();
            assert_eq!(condition, Some("service_healthy"), "{name} → {dep}");
        }
    }
    // Every service_healthy dependency has a health check to wait for.
    for (name, svc) in c["services"].as_mapping().unwrap() {
        if let Some(deps) = svc["depends_on"].as_mapping() {
            for (dep, how) in deps {
                let dep = dep.as_str().unwrap();
                if how["condition"].as_str() == Some("service_healthy") {
                    assert!(
                        !healthcheck_text(service(&c, dep)).is_empty(),
                        "{name:?} waits for {dep} to be healthy, but {dep} has no health check"
                    );
                }
            }
        }
        assert_eq!(
            svc["restart"].as_str(),
            Some("unless-stopped"),
            "{name:?} should come back after a crash or reboot"
        );
    }
}

#[test]
fn consume_writes_to_the_compose_clickhouse_with_its_credentials() {
    let c = compose();
    let ch = environment(service(&c, "clickhouse"));
    let consume = environment(service(&c, "pulse-consume"));
    assert_eq!(consume["PULSE_CLICKHOUSE_URL"], "http://clickhouse:8123");
    assert_eq!(consume["PULSE_CLICKHOUSE_USER"], ch["CLICKHOUSE_USER"]);
    assert_eq!(
        consume["PULSE_CLICKHOUSE_PASSWORD"],
        ch["CLICKHOUSE_PASSWORD"]
    );
    // Both ends of the topic agree on its name.
    let produce = environment(service(&c, "pulse-produce"));
    assert_eq!(produce.get("PULSE_TOPIC"), consume.get("PULSE_TOPIC"));
}

#[test]
fn the_dockerfile_is_a_small_multi_stage_build_of_the_cli() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage build expected: {stages:?}");
    assert!(stages[0].contains("rust:"), "builder stage: {}", stages[0]);
    let runtime = stages.last().unwrap();
    assert!(
        runtime.contains("-slim") || runtime.contains("distroless"),
        "runtime stage should be debian-slim or distroless: {runtime}"
    );
    assert!(
        dockerfile.contains("COPY --from="),
        "copy the binary from the builder"
    );
    assert!(
        dockerfile.contains("-p pulse-cli"),
        "build the pulse binary"
    );
    assert!(dockerfile.contains("--locked"), "build from Cargo.lock");
    assert!(repo_path("Cargo.lock").is_file());
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/pulse\"]"));
    // The compose health checks run bash in the runtime image.
    let c = compose();
    if healthcheck_text(service(&c, "pulse-produce")).contains("bash") {
        assert!(
            !runtime.contains("distroless"),
            "distroless has no bash for the health check"
        );
    }
    // The build context stays small.
    let ignore = read(".dockerignore");
    for pattern in ["target/", ".git/", ".services/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == pattern),
            ".dockerignore lacks {pattern}"
        );
    }
}
