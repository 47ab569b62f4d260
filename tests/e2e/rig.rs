//! The emulator for end-to-end tests: the moto server with amishare's fidelity patches
//! (`testrig/server.py`), started once per test binary on a free loopback port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const REGION: &str = "us-east-1";

pub struct Rig {
    pub url: String,
    // Kept for as long as the tests run; the server stops itself once they have exited.
    _server: std::process::Child,
    _dir: tempfile::TempDir,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The running emulator. Fails the test, with a setup hint, when it cannot start.
pub fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(start)
}

fn start() -> Rig {
    let python = root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the emulator is not installed: {} is missing; run scripts/rig-setup",
        python.display()
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let ready = dir.path().join("url");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    // The server polls --parent-pid and exits once this test binary has, so it never
    // outlives the tests even though this handle is never dropped.
    let mut child = Command::new(&python)
        .arg(root().join("testrig/server.py"))
        .args(["--host", "127.0.0.1", "--port", "0", "--ready-file"])
        .arg(&ready)
        .args(["--parent-pid", &std::process::id().to_string()])
        // Two items a page, so every DescribeImages and DescribeSnapshots result that
        // amishare reads spans several pages.
        .env("AMISHARE_RIG_PAGE_SIZE", "2")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start testrig/server.py");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(url) = std::fs::read_to_string(&ready) {
            return Rig {
                url: url.trim().to_owned(),
                _server: child,
                _dir: dir,
            };
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "the emulator exited with {status} before it was ready; run scripts/rig-setup\n{log}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "the emulator did not start within {READY_TIMEOUT:?}; run scripts/rig-setup"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Rig {
    /// Runs the amishare binary against the emulator.
    pub fn amishare(&self, dir: &Path, args: &[&str]) -> Output {
        self.amishare_with(dir, args, &[])
    }

    /// Runs the amishare binary with `extra` environment variables set last.
    pub fn amishare_with(&self, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_amishare"))
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.join("no-aws-credentials"),
            )
            .envs(extra.iter().copied())
            .output()
            .expect("amishare runs")
    }

    /// An SDK config acting in `account` through STS AssumeRole, as the tests' own client.
    pub async fn config(&self, account: &str) -> aws_config::SdkConfig {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .load()
            .await;
        let sts = aws_sdk_sts::Client::new(&base);
        let assumed = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/seed"))
            .role_session_name("seed")
            .send()
            .await
            .expect("AssumeRole");
        let c = assumed.credentials().expect("credentials");
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        );
        base.to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .build()
    }

    /// Names of the calls the emulator received from `account`.
    pub fn calls(&self, account: &str) -> Vec<String> {
        self.call_records(account, None)
            .iter()
            .map(|c| c["action"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Returns the call log's records of the calls from `account`, of one action or all.
    pub fn call_records(&self, account: &str, action: Option<&str>) -> Vec<serde_json::Value> {
        let mut path = format!("/_rig/calls?account={account}");
        if let Some(action) = action {
            path.push_str(&format!("&action={action}"));
        }
        let body = http_get(&self.url, &path);
        let value: serde_json::Value = serde_json::from_str(&body).expect("call log is JSON");
        value["calls"].as_array().expect("calls list").clone()
    }
}

fn http_get(url: &str, path: &str) -> String {
    let address = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("connect to the emulator");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Writes `text` as a spec file in a new directory and returns both.
pub fn spec_dir(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, text).expect("write spec");
    (dir, path)
}
