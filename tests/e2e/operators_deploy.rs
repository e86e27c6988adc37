//! The deployment files (issue 23): the systemd unit passes
//! `systemd-analyze verify` and is hardened; the Kubernetes sidecar example
//! parses and holds what the README promises of it; the container's health
//! checks ask the proxy where its settings put it.

use std::path::Path;
use std::process::Command;

use redis_proxy::config::VARIABLES;

use crate::common::certs::make_certificates;
use crate::common::{free_port, proxy_binary, InProcess, RedisServer, TempDir};

fn repo_text(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|err| panic!("{path}: {err}"))
}

#[test]
fn the_systemd_unit_is_hardened_and_passes_systemd_analyze() {
    let unit = repo_text("deploy/systemd/redis-proxy.service");
    for line in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "EnvironmentFile=/etc/redis-proxy/env",
        "ExecStart=/usr/local/bin/redis-proxy",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    // verify wants ExecStart to exist: point it at the binary under test.
    let dir = TempDir::new("systemd");
    let path = dir.path().join("redis-proxy.service");
    let here = unit.replace("/usr/local/bin/redis-proxy", proxy_binary());
    std::fs::write(&path, here).expect("write the unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (apt-get install systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    // An unknown or misspelt directive is only a warning: none is allowed.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .split("Overall exposure level for redis-proxy.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level: {text}"));
    assert!(exposure <= 2.0, "exposure {exposure}: {text}");
}

/// The documents of a YAML file, as JSON (through python3's yaml, which
/// Debian's python3-yaml provides).
fn yaml_documents(path: &str) -> Vec<serde_json::Value> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(&full)
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "{path} does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

#[test]
fn the_kubernetes_sidecar_example_parses_and_holds_what_it_promises() {
    let documents = yaml_documents("deploy/kubernetes/sidecar.yaml");
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let secret = documents
        .iter()
        .find(|d| d["kind"] == "Secret")
        .expect("a Secret");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 2, "the application and the proxy");
    let proxy = containers
        .iter()
        .find(|c| c["name"] == "redis-proxy")
        .expect("the proxy container");
    let env = proxy["env"].as_array().expect("env");
    let value_of = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    // Every variable is one the proxy reads.
    for entry in env {
        let name = entry["name"].as_str().expect("name");
        assert!(
            VARIABLES.iter().any(|v| v.name == name),
            "the example sets {name}, which the proxy does not read"
        );
    }
    // The password comes from the Secret, and that Secret is the one shown.
    let password = value_of("PROXY_PASSWORD").expect("PROXY_PASSWORD");
    let from = &password["valueFrom"]["secretKeyRef"];
    assert_eq!(from["name"], secret["metadata"]["name"]);
    assert!(secret["stringData"][from["key"].as_str().expect("key")].is_string());
    // Probes: liveness on /healthz, readiness on /readyz, on the HTTP port.
    let port = value_of("PROXY_PORT").expect("PROXY_PORT")["value"]
        .as_str()
        .expect("a port")
        .parse::<u64>()
        .expect("a number");
    let http_port = proxy["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "http")
        .expect("an http port")["containerPort"]
        .as_u64();
    assert_eq!(http_port, Some(port));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(proxy[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(proxy[probe]["httpGet"]["port"], "http", "{probe}");
    }
    // Resources asked for and bounded, for both containers.
    for container in containers {
        let resources = &container["resources"];
        assert!(resources["requests"]["memory"].is_string(), "{container}");
        assert!(resources["limits"]["memory"].is_string(), "{container}");
    }
    // The application is pointed at the proxy on the Pod's loopback.
    let app = containers.iter().find(|c| c["name"] == "app").expect("app");
    assert!(app
        .to_string()
        .contains(&format!("http://127.0.0.1:{port}")));
}

#[test]
fn the_compose_monitoring_profile_mounts_files_that_exist_and_prometheus_accepts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = &yaml_documents("docker-compose.yml")[0];
    for service in ["prometheus", "grafana"] {
        let spec = &compose["services"][service];
        assert_eq!(spec["profiles"][0], "monitoring", "{service}");
        for volume in spec["volumes"].as_array().expect("volumes") {
            let host = volume.as_str().expect("a volume").split(':').next();
            let host = host.expect("a host path").trim_start_matches("./");
            assert!(root.join(host).exists(), "{service} mounts {host}");
        }
    }
    // The config that service loads, with the alert rules beside it.
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(root.join("deploy/prometheus/prometheus.yml"))
        .output()
        .expect("promtool is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The runtime stage's `COPY --from=build /src/<file> <installed>` lines:
/// (installed path, the file in this checkout).
fn installed_files(dockerfile: &str) -> Vec<(String, String)> {
    dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("COPY --from=build /src/"))
        .filter_map(|rest| {
            let (file, installed) = rest.split_once(' ')?;
            Some((installed.trim().to_owned(), file.to_owned()))
        })
        .collect()
}

/// A health check's command as argv: exec form (JSON array, compose's
/// "CMD" dropped) as is, shell form through `sh -c`; installed files
/// replaced by this checkout's.
fn health_argv(command: &serde_json::Value, installed: &[(String, String)]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let argv: Vec<String> = match command {
        serde_json::Value::String(shell) => vec!["sh".into(), "-c".into(), shell.clone()],
        serde_json::Value::Array(words) => {
            let words: Vec<String> = words
                .iter()
                .map(|w| w.as_str().expect("a word").to_owned())
                .collect();
            match words.first().map(String::as_str) {
                Some("CMD") => words[1..].to_vec(),
                Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), words[1..].join(" ")],
                _ => words,
            }
        }
        other => panic!("a health check test: {other}"),
    };
    argv.into_iter()
        .map(
            |word| match installed.iter().find(|(path, _)| *path == word) {
                Some((_, file)) => root.join(file).to_string_lossy().into_owned(),
                None => word,
            },
        )
        .collect()
}

/// Whether `argv` succeeds with the container's settings `env`.
fn healthy(argv: &[String], env: &[(&str, &str)]) -> bool {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    for name in ["PROXY_HOST", "PROXY_PORT", "TLS_CERT_FILE", "TLS_KEY_FILE"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.status().expect("run the health check").success()
}

#[test]
fn the_container_health_checks_follow_proxy_port_and_tls() {
    let dockerfile = repo_text("Dockerfile");
    let installed = installed_files(&dockerfile);
    let (_, rest) = dockerfile
        .split_once("\nHEALTHCHECK ")
        .expect("a HEALTHCHECK");
    let (_, cmd) = rest.split_once("CMD ").expect("its CMD");
    let cmd = cmd.lines().next().expect("the CMD line").trim();
    let image_check = match serde_json::from_str(cmd) {
        Ok(words @ serde_json::Value::Array(_)) => words,
        _ => serde_json::Value::String(cmd.to_owned()),
    };
    let compose = &yaml_documents("docker-compose.yml")[0];
    let mut checks = vec![("Dockerfile", health_argv(&image_check, &installed))];
    for service in ["proxy", "proxy-cluster"] {
        let test = &compose["services"][service]["healthcheck"]["test"];
        checks.push((service, health_argv(test, &installed)));
    }

    let dir = TempDir::new("healthcheck");
    make_certificates(dir.path());
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (cert, key) = (file("server.pem"), file("server.key"));
    let redis = RedisServer::start();
    let plain = InProcess::start(&redis, &[]);
    // start_at: start's settling wait asks over plain HTTP.
    let tls_files = [
        ("TLS_CERT_FILE", cert.as_str()),
        ("TLS_KEY_FILE", key.as_str()),
    ];
    let tls = InProcess::start_at(&redis.url(), &tls_files);
    let plain_port = plain.addr.port().to_string();
    let tls_port = tls.addr.port().to_string();
    let dead_port = free_port().to_string();
    for (what, argv) in &checks {
        // As in the image: PROXY_HOST=0.0.0.0, another port than 8080.
        let plain_env = [
            ("PROXY_HOST", "0.0.0.0"),
            ("PROXY_PORT", plain_port.as_str()),
        ];
        assert!(healthy(argv, &plain_env), "{what} {argv:?}: plain");
        let tls_env = [
            ("PROXY_HOST", "0.0.0.0"),
            ("PROXY_PORT", tls_port.as_str()),
            ("TLS_CERT_FILE", cert.as_str()),
            ("TLS_KEY_FILE", key.as_str()),
        ];
        assert!(healthy(argv, &tls_env), "{what} {argv:?}: TLS");
        // It asks the port it is told, nothing else.
        let dead_env = [
            ("PROXY_HOST", "0.0.0.0"),
            ("PROXY_PORT", dead_port.as_str()),
        ];
        assert!(!healthy(argv, &dead_env), "{what} {argv:?}: no proxy");
    }
}
