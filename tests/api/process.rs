//! The `plugboard serve` binary as an operator runs it: a child process with its own data
//! directory, its logs captured, and the demo token it prints.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

pub struct ServiceProcess {
    pub child: Child,
    pub base_url: String,
    pub token: String,
    pub data_dir: tempfile::TempDir,
    logs: Option<JoinHandle<String>>,
}

impl ServiceProcess {
    /// Starts `plugboard serve` on a free port with `env`, and waits for it to be listening.
    pub fn start(env: &[(&str, String)]) -> ServiceProcess {
        let process = Self::start_in(tempfile::tempdir().unwrap(), env);
        assert!(!process.token.is_empty(), "the demo token was printed");
        process
    }

    /// Starts `plugboard serve` on the data directory (and SQLite database) of an earlier run;
    /// no demo token is printed then, as the database is not empty.
    pub fn start_in(data_dir: tempfile::TempDir, env: &[(&str, String)]) -> ServiceProcess {
        Self::start_command(data_dir, env, Command::new(env!("CARGO_BIN_EXE_plugboard")))
    }

    /// Starts `plugboard serve` with an open-file limit of `soft`, which it may raise up to
    /// `hard`, as a host that gives its services few descriptors would.
    pub fn start_with_open_files(soft: u64, hard: u64, env: &[(&str, String)]) -> ServiceProcess {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(env!("CARGO_BIN_EXE_plugboard"));
        let limit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
        // SAFETY: between fork and exec the closure only calls `setrlimit`, which is
        // async-signal-safe, on a value it owns.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Self::start_command(tempfile::tempdir().unwrap(), env, command)
    }

    fn start_command(
        data_dir: tempfile::TempDir,
        env: &[(&str, String)],
        mut command: Command,
    ) -> ServiceProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        command
            .arg("serve")
            .env("DATABASE_URL", database_url(data_dir.path()))
            .env("PLUGBOARD_DATA_DIR", data_dir.path())
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("PLUGBOARD_MASTER_KEYS", crate::helpers::TEST_MASTER_KEYS)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = child.stderr.take().unwrap();
        let logs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let mut token = String::new();
        for line in stdout.lines() {
            let line = line.unwrap();
            if line.trim_start().starts_with("pbu_") {
                token = line.trim().to_owned();
            }
            if line.starts_with("GraphiQL:") {
                break;
            }
        }
        ServiceProcess {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            token,
            data_dir,
            logs: Some(logs),
        }
    }

    /// Posts `query` to the process's `/graphql` with its demo token; answers the JSON.
    pub async fn graphql(&self, query: &str) -> serde_json::Value {
        reqwest::Client::new()
            .post(format!("{}/graphql", self.base_url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn database_url(&self) -> String {
        database_url(self.data_dir.path())
    }

    /// Sends SIGTERM, waits for the exit, and answers its exit status and everything it logged.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        let logs = self.logs.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (status, logs)
    }
}

impl ServiceProcess {
    /// Kills the process with SIGKILL, as a crash or an out-of-memory kill would, and answers
    /// its data directory for a restart.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data_dir, placeholder)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}/db.sqlite?mode=rwc", dir.display())
}
