//! The git side of `ssh://` and `user@host:path` remotes, without SSH: the driver runs the
//! command of `Io::ConnectSsh` the way an OpenSSH server does — `sh -c '<command>'` in the
//! login directory, with the requested environment only if the "server" accepts it — and
//! pipes the fetch through the real `git-upload-pack` it starts. A shell running the
//! command is what checks the quoting; a server that ignores `GIT_PROTOCOL` must still
//! work (protocol v0).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::*;
use unipi_git::{
    Error, Fetch, FetchOptions, Io, ObjectId, Outcome, ProtocolChoice, ProtocolVersion, Snapshot,
    Url,
};

/// The pretend SSH server: its login directory (also `$HOME`) and whether it passes the
/// client's environment requests on (OpenSSH's `AcceptEnv GIT_PROTOCOL`).
struct Server {
    home: PathBuf,
    accept_env: bool,
}

/// What the driver was asked to open.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opened {
    host: String,
    port: u16,
    user: String,
    command: String,
    env: Vec<(String, String)>,
}

struct Channel {
    child: Child,
    stdout: Receiver<Vec<u8>>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open(server: &Server, command: &str, env: &[(&str, &str)]) -> std::io::Result<Channel> {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(command)
        .current_dir(&server.home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &server.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if server.accept_env {
        c.envs(env.iter().copied());
    }
    let mut child = c.spawn()?;
    let mut out = child.stdout.take().expect("stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(Vec::new());
                    return;
                }
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(Channel { child, stdout: rx })
}

/// Drives `fetch` over the pretend server; bounded to 60 s.
fn drive_ssh(fetch: &mut Fetch, server: &Server) -> (Result<Outcome, Error>, Vec<Opened>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut opened = Vec::new();
    let mut channel: Option<Channel> = None;
    loop {
        if Instant::now() > deadline {
            fetch.timeout();
        }
        match fetch.poll() {
            Io::ConnectSsh(cmd) => {
                opened.push(Opened {
                    host: cmd.host.into(),
                    port: cmd.port,
                    user: cmd.user.into(),
                    command: cmd.command.into(),
                    env: cmd
                        .env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                });
                match open(server, cmd.command, cmd.env) {
                    Ok(c) => {
                        channel = Some(c);
                        fetch.connected();
                    }
                    Err(e) => fetch.transport_error(e.to_string()),
                }
            }
            Io::Connect { .. } => panic!("an SSH remote asked for a TCP connection"),
            Io::Send(bytes) => {
                let c = channel.as_mut().expect("send without a channel");
                let stdin = c.child.stdin.as_mut().expect("stdin");
                match stdin.write(bytes).and_then(|n| stdin.flush().map(|()| n)) {
                    Ok(n) => fetch.sent(n),
                    Err(e) => fetch.transport_error(e.to_string()),
                }
            }
            Io::Receive => {
                let c = channel.as_mut().expect("receive without a channel");
                match c.stdout.recv_timeout(Duration::from_secs(20)) {
                    Ok(data) if data.is_empty() => fetch.peer_closed(),
                    Ok(data) => fetch.received(&data),
                    Err(RecvTimeoutError::Timeout) => fetch.timeout(),
                    Err(RecvTimeoutError::Disconnected) => fetch.peer_closed(),
                }
            }
            Io::Close => channel = None,
            Io::Done(result) => return (result, opened),
        }
    }
}

fn fetch_ssh(
    url: &str,
    opts: FetchOptions,
    server: &Server,
) -> (Result<Outcome, Error>, Vec<Opened>) {
    let mut f = Fetch::new(Url::parse(url).unwrap(), opts);
    drive_ssh(&mut f, server)
}

fn snapshot(r: Result<Outcome, Error>) -> Snapshot {
    match r {
        Ok(Outcome::Fetched(s)) => s,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

fn v2_env() -> Vec<(String, String)> {
    vec![("GIT_PROTOCOL".into(), "version=2".into())]
}

#[test]
fn upload_pack_over_a_command_channel() {
    let repo = site_repo();
    let home = repo.dir.path().to_path_buf();
    // A second copy under a name that needs quoting.
    let odd = "it's a \"site\" !.git";
    git(&home, &["clone", "-q", "--bare", "site.git", odd]);
    let v2_server = Server {
        home: home.clone(),
        accept_env: true,
    };
    let v0_server = Server {
        home: home.clone(),
        accept_env: false,
    };

    // v2: the server accepts GIT_PROTOCOL.
    let (r, opened) = fetch_ssh(
        "ssh://127.0.0.1/~/site.git",
        FetchOptions::default(),
        &v2_server,
    );
    let snap = snapshot(r);
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V2));
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert_eq!(
        opened,
        [Opened {
            host: "127.0.0.1".into(),
            port: 22,
            user: "git".into(),
            command: "git-upload-pack '~/site.git'".into(),
            env: v2_env(),
        }]
    );

    // The same request to a server that drops the environment: v0, same site.
    let (r, opened) = fetch_ssh(
        "deploy@127.0.0.1:site.git",
        FetchOptions::default(),
        &v0_server,
    );
    let snap = snapshot(r);
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V0));
    assert_matches_repo(&snap, &repo.bare, &repo.head);
    assert_eq!(
        (opened[0].user.as_str(), opened[0].env.clone()),
        ("deploy", v2_env())
    );

    // Not asking for v2: no environment at all.
    let (r, opened) = fetch_ssh(
        "ssh://127.0.0.1:2222/~/site.git#feature",
        FetchOptions {
            protocol: ProtocolChoice::V0,
            ..FetchOptions::default()
        },
        &v2_server,
    );
    let snap = snapshot(r);
    assert_eq!(snap.stats.protocol, Some(ProtocolVersion::V0));
    assert_matches_repo(&snap, &repo.bare, &repo.feature);
    assert_eq!((opened[0].port, opened[0].env.is_empty()), (2222, true));

    // Quotes, spaces and '!' in the path survive the shell; absolute and relative paths.
    let absolute = format!("ssh://127.0.0.1{}", Path::new(&home).join(odd).display());
    for url in [
        format!("127.0.0.1:{odd}#feature"),
        format!("{absolute}#feature"),
    ] {
        for server in [&v2_server, &v0_server] {
            let (r, opened) = fetch_ssh(&url, FetchOptions::default(), server);
            assert_matches_repo(&snapshot(r), &repo.bare, &repo.feature);
            assert!(
                opened[0].command.contains(r#"it'\''s a "site" '\!'.git'"#),
                "{opened:?}"
            );
        }
    }

    // Unchanged: no pack; the session ends with a flush.
    for server in [&v2_server, &v0_server] {
        let current = ObjectId::from_hex(repo.head.as_bytes()).unwrap();
        let (r, _) = fetch_ssh(
            "127.0.0.1:site.git",
            FetchOptions {
                current: Some(current),
                ..FetchOptions::default()
            },
            server,
        );
        assert_eq!(r, Ok(Outcome::Unchanged(current)));
    }

    // No such repository: upload-pack dies before saying anything.
    let (r, _) = fetch_ssh("127.0.0.1:missing.git", FetchOptions::default(), &v2_server);
    assert!(matches!(r, Err(Error::ConnectionClosed { .. })), "{r:?}");
    // A v2-only fetch from the server that drops the environment.
    let (r, _) = fetch_ssh(
        "127.0.0.1:site.git",
        FetchOptions {
            protocol: ProtocolChoice::V2,
            ..FetchOptions::default()
        },
        &v0_server,
    );
    assert_eq!(r, Err(Error::V2Unsupported));
}
