//! ACL against the real binary, compared byte for byte with a real
//! `redis-server` 7.0: users authenticated on separate connections,
//! `-NOPERM` for commands, keys (read/write patterns) and channels, users
//! turned off or deleted while connected, `requirepass` and the default
//! user, `ACL LOG` (ages and client ids normalised), and that a restricted
//! user reaches no key through MULTI/EXEC, EVAL or SORT BY/GET.

use std::time::Duration;

use amber_tests::reply::show;
use amber_tests::RespClient;
use amber_tests::{connect, differential};

/// A connection authenticated as `user`/`pass` (the AUTH reply included).
fn login(port: u16, user: &str, pass: &str, out: &mut Vec<Vec<u8>>) -> RespClient {
    let mut c = connect(port);
    out.push(c.cmd(&["AUTH", user, pass]));
    c
}

/// Whether the server closed `c` (reads until close, 2 s at most).
fn closed(c: &mut RespClient) -> Vec<u8> {
    let (_, closed) = c.read_until_close(Duration::from_secs(2));
    if closed {
        b"closed".to_vec()
    } else {
        b"open".to_vec()
    }
}

#[test]
fn users_on_separate_connections_keys_and_commands() {
    differential("keys and commands", &[], |p| {
        let mut admin = connect(p);
        let mut out = vec![
            admin.cmd_str("SET r:1 a"),
            admin.cmd_str("SET w:1 b"),
            admin.cmd_str("SET x:1 c"),
            admin.cmd(&[
                "ACL",
                "SETUSER",
                "reader",
                "on",
                ">rpw",
                "%R~r:*",
                "+@read",
                "+acl|whoami",
            ]),
            admin.cmd(&[
                "ACL", "SETUSER", "writer", "on", ">wpw", "%W~w:*", "%RW~x:*", "+@write", "+@read",
            ]),
        ];
        let mut reader = login(p, "reader", "rpw", &mut out);
        let mut writer = login(p, "writer", "wpw", &mut out);
        let mut wrong = login(p, "reader", "wpw", &mut out);
        out.push(wrong.cmd_str("ACL WHOAMI"));
        for line in [
            "ACL WHOAMI",
            "GET r:1",
            "GET w:1",
            "SET r:1 z",
            "MGET r:1 r:2",
            "MGET r:1 x:1",
            "STRLEN r:1",
            "CONFIG GET port",
        ] {
            out.push(reader.cmd_str(line));
        }
        for line in [
            "SET w:1 z",
            "GET w:1",
            "SET r:1 z",
            "APPEND x:1 d",
            "GET x:1",
            "COPY x:1 w:2",
            "COPY w:1 x:2",
            "DEL w:1",
            "ACL WHOAMI",
        ] {
            out.push(writer.cmd_str(line));
        }
        // Both users' CLIENT INFO `user=` fields, from the admin's CLIENT LIST.
        let list = admin.cmd_str("CLIENT LIST");
        let mut users: Vec<String> = String::from_utf8_lossy(&list)
            .split_whitespace()
            .filter(|f| f.starts_with("user="))
            .map(str::to_string)
            .collect();
        users.sort();
        out.push(users.join(" ").into_bytes());
        out.push(admin.cmd_str("ACL DELUSER reader writer"));
        out
    });
}

#[test]
fn channels_subscribe_and_publish() {
    differential("channels", &[], |p| {
        let mut admin = connect(p);
        let mut out = vec![admin.cmd(&[
            "ACL", "SETUSER", "sub", "on", ">pw", "&news.*", "+@pubsub", "+ping",
        ])];
        let mut s = login(p, "sub", "pw", &mut out);
        out.push(s.cmd_str("PUBLISH news.a m"));
        out.push(s.cmd_str("PUBLISH other m"));
        out.push(s.cmd_str("PSUBSCRIBE news.*"));
        out.push(s.cmd_str("PSUBSCRIBE news.a*"));
        out.push(s.cmd_str("SUBSCRIBE news.a other"));
        out.push(s.cmd_str("SUBSCRIBE news.b"));
        out.push(admin.cmd_str("PUBLISH news.b hello"));
        out.push(s.read_reply().expect("pmessage"));
        out.push(s.read_reply().expect("message"));
        // Channel rules change while subscribed: the subscriber is dropped.
        out.push(admin.cmd(&["ACL", "SETUSER", "sub", "resetchannels", "&other"]));
        out.push(closed(&mut s));
        out.push(admin.cmd_str("ACL DELUSER sub"));
        out
    });
}

#[test]
fn users_turned_off_or_deleted_while_connected() {
    differential("off and deleted", &[], |p| {
        let mut admin = connect(p);
        let mut out = vec![admin.cmd_str("ACL SETUSER u on >pw ~* +@all")];
        let mut c = login(p, "u", "pw", &mut out);
        // Off: the connection keeps working, new logins fail.
        out.push(admin.cmd_str("ACL SETUSER u off"));
        out.push(c.cmd_str("SET k v"));
        out.push(connect(p).cmd_str("AUTH u pw"));
        // Permissions change at once for connected clients.
        out.push(admin.cmd_str("ACL SETUSER u -set"));
        out.push(c.cmd_str("SET k v"));
        out.push(c.cmd_str("GET k"));
        // Deleted: the connection closes.
        out.push(admin.cmd_str("ACL DELUSER u"));
        out.push(closed(&mut c));
        // A user deleting itself gets the reply, then the close.
        out.push(admin.cmd_str("ACL SETUSER self on nopass +@all"));
        let mut me = login(p, "self", "x", &mut out);
        out.push(me.cmd_str("ACL DELUSER self"));
        out.push(closed(&mut me));
        out.push(admin.cmd_str("ACL USERS"));
        out
    });
}

#[test]
fn requirepass_is_the_default_users_password() {
    differential("requirepass", &["--requirepass", "boot"], |p| {
        let mut out = vec![];
        let mut c = connect(p);
        out.push(c.cmd_str("GET k"));
        out.push(c.cmd_str("AUTH default wrong"));
        out.push(c.cmd_str("AUTH boot"));
        out.push(c.cmd_str("ACL GETUSER default"));
        out.push(c.cmd_str("CONFIG SET requirepass other"));
        out.push(c.cmd_str("ACL LIST"));
        out.push(connect(p).cmd_str("AUTH boot"));
        out.push(connect(p).cmd_str("AUTH other"));
        // Without a password the default user is nopass: no AUTH needed.
        out.push(c.cmd_str("CONFIG SET requirepass \"\""));
        out.push(connect(p).cmd_str("GET k"));
        // A password given to the default user by ACL requires AUTH too.
        out.push(c.cmd_str("ACL SETUSER default resetpass >viaacl"));
        let mut n = connect(p);
        out.push(n.cmd_str("GET k"));
        let hello = n.cmd_str("HELLO 2 AUTH default viaacl");
        out.push(hello.get(..1).unwrap_or_default().to_vec());
        out.push(n.cmd_str("GET k"));
        out.push(c.cmd_str("ACL SETUSER default nopass"));
        out.push(connect(p).cmd_str("GET k"));
        out
    });
}

/// `ACL LOG` with the ages dropped and the client lines cut to their
/// `cmd=` and `user=` fields.
fn normalised_log(c: &mut RespClient) -> Vec<u8> {
    let raw = String::from_utf8_lossy(&c.cmd_str("ACL LOG")).into_owned();
    let mut out = Vec::new();
    let mut lines = raw.split("\r\n").peekable();
    while let Some(l) = lines.next() {
        if l == "age-seconds" {
            lines.next();
            lines.next();
            out.push("age-seconds ?".to_string());
        } else if l.starts_with("id=") {
            let keep: Vec<&str> = l
                .split(' ')
                .filter(|f| {
                    f.starts_with("cmd=") || f.starts_with("user=") || f.starts_with("multi=")
                })
                .collect();
            out.push(keep.join(" "));
        } else if !l.starts_with('$') {
            out.push(l.to_string());
        }
    }
    out.join("\n").into_bytes()
}

#[test]
fn acl_log_entries() {
    differential("acl log", &[], |p| {
        let mut admin = connect(p);
        let mut out = vec![
            admin.cmd_str("ACL LOG RESET"),
            admin.cmd_str("ACL SETUSER lg on nopass ~a &c +get +publish +multi +exec +eval"),
        ];
        let mut c = login(p, "lg", "x", &mut out);
        for line in [
            "GET b",
            "GET b",
            "SET a v",
            "PUBLISH d m",
            "MULTI",
            "GET c",
            "EXEC",
        ] {
            out.push(c.cmd_str(line));
        }
        out.push(c.cmd(&["EVAL", "return redis.call('get','d')", "0"]));
        out.push(c.cmd_str("AUTH nosuch pw"));
        out.push(c.cmd_str("AUTH lg x"));
        out.push(normalised_log(&mut admin));
        // One entry (its header only: the client line's sizes differ).
        out.push(
            admin
                .cmd_str("ACL LOG 1")
                .get(..8)
                .unwrap_or_default()
                .to_vec(),
        );
        out.push(admin.cmd_str("ACL LOG x"));
        out.push(admin.cmd_str("ACL LOG RESET"));
        out.push(admin.cmd_str("ACL LOG"));
        out.push(admin.cmd_str("ACL DELUSER lg"));
        out
    });
}

#[test]
fn no_way_around_key_permissions() {
    differential("transactions, scripts, sort", &[], |p| {
        let mut admin = connect(p);
        let mut out = vec![
            admin.cmd_str("RPUSH mine:l 3 1 2"),
            admin.cmd_str("SET secret:1 s"),
            admin.cmd_str("SET mine:w_1 1"),
            admin.cmd_str(
                "ACL SETUSER lim on >pw ~mine:* -@all +@read +@write +@transaction +@scripting +sort",
            ),
        ];
        let mut c = login(p, "lim", "pw", &mut out);
        for line in [
            // MULTI/EXEC: refused at queue time, and at EXEC when the
            // rules changed after queueing.
            "MULTI",
            "GET mine:w_1",
            "GET secret:1",
            "EXEC",
            "MULTI",
            "GET mine:w_1",
            "SET mine:w_1 2",
        ] {
            out.push(c.cmd_str(line));
        }
        out.push(admin.cmd_str("ACL SETUSER lim -set"));
        out.push(c.cmd_str("EXEC"));
        // Scripts: the commands they run are checked.
        for script in [
            "return redis.call('get','secret:1')",
            "return redis.pcall('get','secret:1')",
            "return redis.call('get','mine:w_1')",
            "return redis.call('flushall')",
        ] {
            out.push(c.cmd(&["EVAL", script, "0"]));
        }
        out.push(c.cmd(&["EVAL", "return 1", "1", "secret:1"]));
        out.push(c.cmd(&["EVAL", "return 1", "x", "secret:1"]));
        for line in [
            // SORT: BY and GET patterns need access to every key.
            "SORT mine:l",
            "SORT mine:l BY mine:w_*",
            "SORT mine:l BY nosort",
            "SORT mine:l GET #",
            "SORT mine:l GET secret:*",
            "SORT mine:l BY nosort STORE secret:2",
            "SORT mine:l BY nosort STORE mine:2",
            "SORT_RO mine:l BY secret:*",
        ] {
            out.push(c.cmd_str(line));
        }
        out.push(admin.cmd_str("ACL DELUSER lim"));
        out
    });
}

/// `aclfile`: users loaded at startup, `ACL SAVE` then `ACL LOAD` round
/// trip, `ACL LOAD`'s all-or-nothing errors (file names cut out).
#[test]
fn aclfile_save_and_load() {
    use amber_tests::ServerProcess;
    let scenario = |p: u16, path: &std::path::Path| -> Vec<Vec<u8>> {
        let file = path.display().to_string();
        let cut = |b: Vec<u8>| {
            String::from_utf8_lossy(&b)
                .replace(&file, "FILE")
                .into_bytes()
        };
        let mut admin = connect(p);
        let mut out = vec![admin.cmd_str("ACL LIST")];
        let mut alice = login(p, "alice", "pw", &mut out);
        out.push(alice.cmd_str("GET a:1"));
        out.push(alice.cmd_str("GET b:1"));
        out.push(admin.cmd_str("ACL SETUSER carol on >cpw %R~c:* &ch +@read"));
        out.push(admin.cmd_str("ACL SETUSER alice >pw2"));
        out.push(admin.cmd_str("ACL SAVE"));
        out.push(std::fs::read(path).expect("saved file"));
        // Changes after the save are undone by LOAD; clients of the
        // replaced users are disconnected.
        out.push(admin.cmd_str("ACL DELUSER carol"));
        out.push(admin.cmd_str("ACL SETUSER dave on nopass"));
        out.push(admin.cmd_str("ACL LOAD"));
        out.push(closed(&mut alice));
        out.push(admin.cmd_str("ACL LIST"));
        out.push(connect(p).cmd_str("AUTH carol cpw"));
        // A broken file changes nothing.
        std::fs::write(
            path,
            "user alice on bogus %X~ +nosuch\n# comment\nfoo\nuser x +nosuch\nuser x on\n",
        )
        .expect("write");
        out.push(cut(admin.cmd_str("ACL LOAD")));
        out.push(admin.cmd_str("ACL USERS"));
        std::fs::remove_file(path).expect("remove");
        out.push(cut(admin.cmd_str("ACL LOAD")));
        out
    };
    let mut replies = Vec::new();
    for amber in [false, true] {
        let dir = std::env::temp_dir().join(format!(
            "amber-acl-{}-{}",
            std::process::id(),
            if amber { "amber" } else { "redis" }
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("users.acl");
        std::fs::write(&path, "user alice on >pw ~a:* +get\n\nuser bob off\n").expect("write");
        let arg = path.display().to_string();
        let server = if amber {
            ServerProcess::amber(&["--aclfile", &arg])
        } else {
            ServerProcess::redis(&["--aclfile", &arg])
        };
        replies.push(scenario(server.port, &path));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let show_all = |v: &[Vec<u8>]| v.iter().map(|b| show(b)).collect::<Vec<_>>();
    assert_eq!(
        show_all(&replies[1]),
        show_all(&replies[0]),
        "aclfile: replies differ (left: amber, right: redis)"
    );
}

/// Whether `c` still answers (a subscriber's `PING`), after the server
/// had a moment to close it.
fn alive(c: &mut RespClient) -> Vec<u8> {
    std::thread::sleep(Duration::from_millis(100));
    match c.try_cmd(&["PING"]) {
        Ok(r) if !r.is_empty() => b"open".to_vec(),
        _ => b"closed".to_vec(),
    }
}

/// `acl-pubsub-default`: the channels of new users, of `reset` and of new
/// selectors, at startup and after `CONFIG SET`.
#[test]
fn acl_pubsub_default() {
    let scenario = |p: u16| {
        let mut admin = connect(p);
        let mut out = vec![admin.cmd_str("CONFIG GET acl-pubsub-default")];
        out.push(admin.cmd_str("ACL SETUSER a on nopass +@all"));
        out.push(admin.cmd_str("CONFIG SET acl-pubsub-default allchannels"));
        out.push(admin.cmd_str("CONFIG GET acl-pubsub-default"));
        out.push(admin.cmd_str("ACL SETUSER b on nopass +@all"));
        out.push(admin.cmd(&["ACL", "SETUSER", "c", "on", "nopass", "(+get ~x)"]));
        out.push(admin.cmd_str("ACL SETUSER a reset"));
        out.push(admin.cmd_str("ACL LIST"));
        let mut b = login(p, "b", "x", &mut out);
        out.push(b.cmd_str("PUBLISH anything m"));
        out.push(admin.cmd_str("CONFIG SET acl-pubsub-default resetchannels"));
        out.push(admin.cmd_str("ACL SETUSER d on nopass +@all"));
        out.push(admin.cmd_str("ACL SETUSER b reset on nopass +@all"));
        out.push(b.cmd_str("PUBLISH anything m"));
        out.push(admin.cmd_str("ACL LIST"));
        out.push(admin.cmd_str("CONFIG SET acl-pubsub-default bogus"));
        out
    };
    differential("acl-pubsub-default", &[], scenario);
    differential(
        "acl-pubsub-default at startup",
        &["--acl-pubsub-default", "allchannels"],
        |p| {
            let mut admin = connect(p);
            vec![
                admin.cmd_str("ACL SETUSER x on nopass +@all"),
                admin.cmd_str("ACL GETUSER x"),
                admin.cmd_str("ACL LIST"),
            ]
        },
    );
}

/// Channel rules change: only the subscribers whose channels or patterns
/// are no longer allowed are closed.
#[test]
fn only_subscribers_of_revoked_channels_are_closed() {
    differential("revoked channels", &[], |p| {
        let mut admin = connect(p);
        let mut out = vec![admin.cmd_str("ACL SETUSER sub on >pw &news.* &other +@all")];
        let mut s1 = login(p, "sub", "pw", &mut out);
        let mut s2 = login(p, "sub", "pw", &mut out);
        let mut s3 = login(p, "sub", "pw", &mut out);
        let mut s4 = login(p, "sub", "pw", &mut out);
        let mut idle = login(p, "sub", "pw", &mut out);
        out.push(s1.cmd_str("SUBSCRIBE news.a"));
        out.push(s2.cmd_str("PSUBSCRIBE news.*"));
        out.push(s3.cmd_str("SUBSCRIBE other"));
        out.push(s4.cmd_str("SSUBSCRIBE news.b"));
        let check = |out: &mut Vec<Vec<u8>>, all: [&mut RespClient; 5]| {
            for c in all {
                out.push(alive(c));
            }
        };
        // More channels: nobody closed.
        out.push(admin.cmd_str("ACL SETUSER sub &more"));
        check(&mut out, [&mut s1, &mut s2, &mut s3, &mut s4, &mut idle]);
        // The pattern goes, channels matched by a pattern stay.
        out.push(admin.cmd_str("ACL SETUSER sub resetchannels &other &news.a*"));
        check(&mut out, [&mut s1, &mut s2, &mut s3, &mut s4, &mut idle]);
        // Every channel, then none.
        out.push(admin.cmd_str("ACL SETUSER sub allchannels"));
        out.push(s1.cmd_str("SUBSCRIBE x"));
        out.push(admin.cmd_str("ACL SETUSER sub resetchannels &other"));
        out.push(alive(&mut s1));
        out.push(alive(&mut s3));
        out.push(admin.cmd_str("ACL SETUSER sub resetchannels"));
        out.push(alive(&mut s3));
        out.push(alive(&mut idle));
        out
    });
}

/// `user` lines in the configuration (here on the command line, which is
/// read as configuration lines): users as declared, `default` redefined.
#[test]
fn users_declared_in_the_configuration() {
    let users = [
        "--user",
        "alice",
        "on",
        ">pw",
        "~a:*",
        "+get",
        "--user",
        "default",
        "on",
        "nopass",
        "~*",
        "&*",
        "+@all",
        "--user",
        "bob",
        "off",
        "(+set",
        "~b)",
        "#5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
    ];
    differential("user lines", &users, |p| {
        let mut admin = connect(p);
        let mut out = vec![admin.cmd_str("ACL LIST")];
        let mut alice = login(p, "alice", "pw", &mut out);
        out.push(alice.cmd_str("GET a:1"));
        out.push(alice.cmd_str("GET b:1"));
        out.push(admin.cmd_str("ACL GETUSER bob"));
        out.push(admin.cmd_str("ACL SAVE"));
        out
    });
}

/// A bad `user` line stops start-up with Redis's message, as does
/// declaring users together with an `aclfile`.
#[test]
fn bad_user_lines_stop_startup_as_redis() {
    use std::process::Command;
    let dir = tempfile::tempdir().expect("tempdir");
    let acl = dir.path().join("users.acl");
    std::fs::write(&acl, "user carol on\n").expect("acl file");
    let cases = [
        "user alice on >pw badrule ~*".to_string(),
        "user alice on >pw +nosuch".to_string(),
        "user alice on\nuser alice off".to_string(),
        "user alice on (+get ~x".to_string(),
        format!("user alice on >pw\naclfile {}", acl.display()),
    ];
    for (i, case) in cases.iter().enumerate() {
        let conf = dir.path().join(format!("case{i}.conf"));
        let port = amber_tests::process::free_port();
        std::fs::write(&conf, format!("{case}\nport {port}\nsave \"\"\n")).expect("conf");
        let redis = Command::new("redis-server")
            .arg(&conf)
            .output()
            .expect("redis-server");
        let redis_text =
            String::from_utf8_lossy(&[redis.stdout, redis.stderr].concat()).into_owned();
        let expected: Vec<&str> = redis_text
            .lines()
            .filter_map(|l| {
                [
                    "Error in user declaration",
                    "Configuring Redis with users",
                    "Error loading ACL rule",
                ]
                .iter()
                .find_map(|m| l.find(m).map(|at| &l[at..]))
            })
            .collect();
        assert_eq!(expected.len(), 1, "{case}: redis said {redis_text}");
        let amber = amber_tests::process::run_amber_to_exit(
            &[
                &conf.display().to_string(),
                "--dir",
                &dir.path().display().to_string(),
            ],
            dir.path(),
            Duration::from_secs(20),
        )
        .expect("amber exits");
        let amber_text = String::from_utf8_lossy(&amber.stderr).into_owned();
        assert!(!amber.status.success(), "{case}: amber started");
        assert!(
            amber_text.contains(expected[0]),
            "{case}: amber said {amber_text}, redis {}",
            expected[0]
        );
    }
}

/// `CONFIG REWRITE` writes the users over the file's `user` lines (users
/// changed, added or deleted since start-up), as Redis does.
#[test]
fn config_rewrite_writes_users() {
    use amber_tests::process::free_port;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for amber in [false, true] {
        let name = if amber { "amber" } else { "redis" };
        let data = dir.path().join(name);
        std::fs::create_dir_all(&data).expect("dir");
        let port = free_port();
        let conf = dir.path().join(format!("{name}.conf"));
        let mut text = format!(
            "# users\nuser alice on >pw ~* +@all\nuser zed on\nport {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\n",
            data.display()
        );
        if amber {
            text.push_str(&format!(
                "pmem-path {}/amber.arena\npmem-size 64mb\n",
                data.display()
            ));
        }
        std::fs::write(&conf, text).expect("conf");
        let bin = if amber {
            amber_tests::binary::amber_server_bin()
        } else {
            "redis-server".into()
        };
        let mut child = Command::new(bin)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut c = (0..500)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(20));
                RespClient::connect(port).ok()
            })
            .expect("server up");
        let mut out = vec![c.cmd_str("ACL SETUSER bob on >b ~b:* +get")];
        out.push(c.cmd_str("ACL DELUSER zed"));
        out.push(c.cmd_str("ACL SETUSER alice -@dangerous"));
        out.push(c.cmd_str("CONFIG REWRITE"));
        let _ = c.try_cmd(&["SHUTDOWN", "NOSAVE"]);
        let _ = child.wait();
        let written = std::fs::read_to_string(&conf).expect("rewritten");
        let kept: Vec<String> = written
            .lines()
            .filter(|l| {
                !["port ", "dir ", "pmem-", "bind "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .map(str::to_string)
            .collect();
        files.push((out, kept));
    }
    assert!(
        files[0].1.iter().any(|l| l.starts_with("user bob on")),
        "{:?}",
        files[0]
    );
    assert_eq!(files[1], files[0], "left: amber, right: redis");
}
