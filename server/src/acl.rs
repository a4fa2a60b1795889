//! Users and permissions: Redis 7.0's ACL (see `crate::cmd::acl` for the
//! `ACL` command).
//!
//! A [`User`] is immutable once published: `ACL SETUSER` builds a changed
//! copy and swaps it into the [`Acl`] table, then bumps the table's epoch.
//! A client remembers the epoch at which it last found its user
//! unrestricted (all commands, keys and channels): while that epoch is
//! current, the dispatcher's check is one load and one compare. Any other
//! client looks its user up by name and checks the command, its keys and
//! its channels against the user's selectors, as Redis's
//! `ACLCheckAllUserCommandPerm`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use hashbrown::HashMap;
use parking_lot::RwLock;

use crate::cmd::CommandDef;
use crate::state::ServerState;

/// Redis's categories, in the order Redis lists and tries them.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The commands, numbered for the permission bitmaps, with their categories.
#[derive(Debug)]
pub struct Catalog {
    /// Full names (`get`, `config|get`), by id.
    pub names: Vec<String>,
    /// Category bits (index in [`CATEGORIES`]), by id.
    pub cats: Vec<u32>,
    /// Subcommand ids of a container, by id.
    pub subs: Vec<Vec<usize>>,
    /// Whether the command is a subcommand.
    pub is_sub: Vec<bool>,
    ids: HashMap<String, usize>,
    /// `acl-pubsub-default allchannels`: new selectors (and `reset`)
    /// start with every channel, as Redis's `server.acl_pubsub_default`.
    allchannels_default: std::sync::atomic::AtomicBool,
}

impl Catalog {
    fn build(srv: &ServerState) -> Catalog {
        let mut defs: Vec<&Arc<CommandDef>> = srv.commands.iter().collect();
        defs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut c = Catalog {
            names: Vec::new(),
            cats: Vec::new(),
            subs: Vec::new(),
            is_sub: Vec::new(),
            ids: HashMap::new(),
            allchannels_default: Default::default(),
        };
        c.sync_pubsub_default(srv);
        for d in defs {
            let id = c.push(srv, d, false);
            let mut subs: Vec<&Arc<CommandDef>> = d.subcommands.values().collect();
            subs.sort_by(|a, b| a.name.cmp(&b.name));
            for s in subs {
                let sid = c.push(srv, s, true);
                if let Some(v) = c.subs.get_mut(id) {
                    v.push(sid);
                }
            }
        }
        c
    }

    fn push(&mut self, srv: &ServerState, d: &CommandDef, is_sub: bool) -> usize {
        let id = self.names.len();
        let mut bits = 0;
        for cat in crate::cmd::command::command_categories(srv, d) {
            if let Some(i) = CATEGORIES.iter().position(|c| *c == cat) {
                bits |= 1 << i;
            }
        }
        self.names.push(d.name.clone());
        self.cats.push(bits);
        self.subs.push(Vec::new());
        self.is_sub.push(is_sub);
        self.ids.insert(d.name.clone(), id);
        id
    }

    /// Reads `acl-pubsub-default` from the configuration.
    pub fn sync_pubsub_default(&self, srv: &ServerState) {
        let all = srv.config.get("acl-pubsub-default").as_deref() == Some("allchannels");
        self.allchannels_default.store(all, Ordering::Relaxed);
    }

    /// Whether new selectors allow every channel (`acl-pubsub-default`).
    pub fn allchannels_default(&self) -> bool {
        self.allchannels_default.load(Ordering::Relaxed)
    }

    /// A command's id by full name (case-insensitive).
    pub fn id(&self, name: &str) -> Option<usize> {
        self.ids.get(&name.to_ascii_lowercase()).copied()
    }

    fn len(&self) -> usize {
        self.names.len()
    }
}

/// Key pattern permissions.
pub const READ: u8 = 1;
/// Key pattern permissions.
pub const WRITE: u8 = 2;

/// A set of permissions: the user's root, or one `(...)` selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Allowed commands, by catalog id.
    pub commands: Vec<bool>,
    /// `+@all` was the base (Redis's reserved "future commands" bit).
    pub future: bool,
    /// `SELECTOR_FLAG_ALLCOMMANDS`.
    pub allcommands: bool,
    /// Allowed first arguments of otherwise denied commands (`+select|0`).
    pub firstargs: Vec<(usize, Vec<Vec<u8>>)>,
    /// `allkeys` / `~*`.
    pub allkeys: bool,
    /// Key patterns with [`READ`]/[`WRITE`] bits, in order.
    pub keys: Vec<(Vec<u8>, u8)>,
    /// `allchannels` / `&*`.
    pub allchannels: bool,
    /// Channel patterns, in order.
    pub channels: Vec<Vec<u8>>,
}

/// Why `ACL SETUSER` refused a rule (Redis's `ACLSetUserStringError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    /// EINVAL.
    Syntax,
    /// ENOENT.
    Unknown,
    /// EEXIST.
    AfterAllKeys,
    /// EISDIR.
    AfterAllChannels,
    /// ENODEV.
    NoSuchPassword,
    /// EBADMSG.
    BadHash,
    /// ECHILD.
    FirstArgOfSub,
}

impl RuleError {
    /// Redis's text.
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::AfterAllKeys => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::AfterAllChannels => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == 0 || c.is_ascii_whitespace() || c == 0x0b)
}

impl Selector {
    fn new(cat: &Catalog) -> Selector {
        Selector {
            commands: vec![false; cat.len()],
            allchannels: cat.allchannels_default(),
            ..Selector::default()
        }
    }

    fn set_bit(&mut self, id: usize, allow: bool) {
        if let Some(b) = self.commands.get_mut(id) {
            *b = allow;
        }
        if !allow {
            self.allcommands = false;
        }
    }

    fn change(&mut self, cat: &Catalog, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.retain(|(i, _)| *i != id);
        for &s in cat.subs.get(id).map(Vec::as_slice).unwrap_or_default() {
            self.set_bit(s, allow);
        }
    }

    fn set_category(&mut self, cat: &Catalog, name: &str, allow: bool) -> Result<(), RuleError> {
        let i = CATEGORIES
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or(RuleError::Unknown)?;
        for id in 0..cat.len() {
            if cat.cats.get(id).is_some_and(|b| b & (1 << i) != 0) {
                self.change(cat, id, allow);
            }
        }
        Ok(())
    }

    fn all(&mut self, allow: bool) {
        self.commands.iter_mut().for_each(|b| *b = allow);
        self.future = allow;
        self.allcommands = allow;
        self.firstargs.clear();
    }

    /// Applies one selector rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, cat: &Catalog, op: &[u8]) -> Result<(), RuleError> {
        let is = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.all(true);
        } else if is("nocommands") || is("-@all") {
            self.all(false);
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            if self.allkeys {
                return Err(RuleError::AfterAllKeys);
            }
            let mut flags = 0;
            let mut off = 1;
            if op.first() == Some(&b'%') {
                loop {
                    match op.get(off).map(u8::to_ascii_uppercase) {
                        Some(b'R') if flags & READ == 0 => flags |= READ,
                        Some(b'W') if flags & WRITE == 0 => flags |= WRITE,
                        Some(b'~') => {
                            off += 1;
                            break;
                        }
                        None => break,
                        _ => return Err(RuleError::Syntax),
                    }
                    off += 1;
                }
            } else {
                flags = READ | WRITE;
            }
            let pat = op.get(off..).unwrap_or_default();
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|(p, _)| p == pat) {
                Some((_, f)) => *f |= flags,
                None => self.keys.push((pat.to_vec(), flags)),
            }
            self.allkeys = false;
        } else if op.first() == Some(&b'&') {
            if self.allchannels {
                return Err(RuleError::AfterAllChannels);
            }
            let pat = op.get(1..).unwrap_or_default();
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|p| p == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if (op.first() == Some(&b'+') || op.first() == Some(&b'-'))
            && op.get(1) == Some(&b'@')
        {
            let allow = op.first() == Some(&b'+');
            let name = String::from_utf8_lossy(op.get(2..).unwrap_or_default()).into_owned();
            self.set_category(cat, &name, allow)?;
        } else if op.first() == Some(&b'+') {
            let rest = String::from_utf8_lossy(op.get(1..).unwrap_or_default()).into_owned();
            match rest.rsplit_once('|') {
                None => {
                    let id = cat.id(&rest).ok_or(RuleError::Unknown)?;
                    self.change(cat, id, true);
                }
                Some((base, sub)) => {
                    let id = cat.id(base).ok_or(RuleError::Unknown)?;
                    if cat.is_sub.get(id).copied().unwrap_or(false) {
                        return Err(RuleError::FirstArgOfSub);
                    }
                    if sub.is_empty() {
                        return Err(RuleError::Syntax);
                    }
                    if cat.subs.get(id).is_some_and(|s| !s.is_empty()) {
                        let sid = cat.id(&rest).ok_or(RuleError::Unknown)?;
                        self.change(cat, sid, true);
                    } else {
                        let sub = sub.as_bytes().to_vec();
                        match self.firstargs.iter_mut().find(|(i, _)| *i == id) {
                            Some((_, v)) => {
                                if !v.iter().any(|s| s.eq_ignore_ascii_case(&sub)) {
                                    v.push(sub);
                                }
                            }
                            None => self.firstargs.push((id, vec![sub])),
                        }
                    }
                }
            }
        } else if op.first() == Some(&b'-') {
            let rest = String::from_utf8_lossy(op.get(1..).unwrap_or_default()).into_owned();
            let id = cat.id(&rest).ok_or(RuleError::Unknown)?;
            self.change(cat, id, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn count(&self, cat: &Catalog, bit: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (id, c) in cat.cats.iter().enumerate() {
            if c & bit != 0 {
                if self.commands.get(id).copied().unwrap_or(false) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// The command rules, as Redis's `ACLDescribeSelectorCommandRules`:
    /// `+@all` or `-@all`, the best-fitting categories, then single commands.
    pub fn describe_commands(&self, cat: &Catalog) -> String {
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::new(cat);
        fake.all(!additive);
        let mut temp = self.clone();
        let mut applied = [false; 32];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied.get(j).copied().unwrap_or(true) {
                    continue;
                }
                let (on, off) = temp.count(cat, 1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            let name = CATEGORIES.get(j).copied().unwrap_or_default();
            let _ = fake.set_category(cat, name, additive);
            let _ = temp.set_category(cat, name, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(name);
            rules.push(' ');
            if let Some(a) = applied.get_mut(j) {
                *a = true;
            }
        }
        for id in 0..cat.len() {
            let user = self.commands.get(id).copied().unwrap_or(false);
            let have = fake.commands.get(id).copied().unwrap_or(false);
            if user != have {
                rules.push(if user { '+' } else { '-' });
                rules.push_str(cat.names.get(id).map(String::as_str).unwrap_or_default());
                rules.push(' ');
                fake.change(cat, id, user);
            }
            if !user {
                if let Some((_, args)) = self.firstargs.iter().find(|(i, _)| *i == id) {
                    for a in args {
                        rules.push('+');
                        rules.push_str(cat.names.get(id).map(String::as_str).unwrap_or_default());
                        rules.push('|');
                        rules.push_str(&String::from_utf8_lossy(a));
                        rules.push(' ');
                    }
                }
            }
        }
        rules.pop();
        rules
    }

    /// The key patterns as `ACL GETUSER` shows them (`~*`, `%R~a ~b`).
    pub fn describe_keys(&self) -> String {
        if self.allkeys {
            return "~*".into();
        }
        let v: Vec<String> = self.keys.iter().map(|(p, f)| pattern_text(p, *f)).collect();
        v.join(" ")
    }

    /// The channel patterns as `ACL GETUSER` shows them.
    pub fn describe_channels(&self) -> String {
        if self.allchannels {
            return "&*".into();
        }
        let v: Vec<String> = self
            .channels
            .iter()
            .map(|p| format!("&{}", String::from_utf8_lossy(p)))
            .collect();
        v.join(" ")
    }

    /// Redis's `ACLDescribeSelector`.
    pub fn describe(&self, cat: &Catalog) -> String {
        let mut s = String::new();
        if self.allkeys {
            s.push_str("~* ");
        } else {
            for (p, f) in &self.keys {
                s.push_str(&pattern_text(p, *f));
                s.push(' ');
            }
        }
        if self.allchannels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for p in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(p));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands(cat));
        s
    }

    fn unrestricted(&self) -> bool {
        self.allcommands && self.allkeys && self.allchannels
    }

    fn command_ok(&self, cat: &Catalog, def: &CommandDef, args: &[&[u8]]) -> bool {
        if self.allcommands {
            return true;
        }
        let Some(id) = cat.id(&def.name) else {
            return false;
        };
        if self.commands.get(id).copied().unwrap_or(false) {
            return true;
        }
        // First-arg exceptions (`+select|0`): argv[1], or argv[2] of a subcommand.
        let pos = if def.name.contains('|') { 2 } else { 1 };
        match (self.firstargs.iter().find(|(i, _)| *i == id), args.get(pos)) {
            (Some((_, allowed)), Some(a)) => allowed.iter().any(|x| x.eq_ignore_ascii_case(a)),
            _ => false,
        }
    }

    fn key_ok(&self, key: &[u8], need: u8) -> bool {
        self.allkeys
            || self
                .keys
                .iter()
                .any(|(p, f)| f & need == need && amber_storage::glob::matches(p, key, false))
    }

    fn channel_ok(&self, channel: &[u8], literal: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|p| {
                if literal {
                    p == channel
                } else {
                    amber_storage::glob::matches(p, channel, false)
                }
            })
    }

    /// Redis's `ACLSelectorCheckCmd`.
    fn check(&self, srv: &ServerState, cat: &Catalog, def: &CommandDef, args: &[&[u8]]) -> Denied {
        if !self.command_ok(cat, def, args) {
            return Denied::Command;
        }
        if !self.allkeys {
            for (i, need) in crate::cmd::command::key_access(srv, def, args) {
                if !self.key_ok(args.get(i).copied().unwrap_or_default(), need) {
                    return Denied::Key(i);
                }
            }
        }
        if !self.allchannels {
            for (i, literal) in channel_args(def, args) {
                if !self.channel_ok(args.get(i).copied().unwrap_or_default(), literal) {
                    return Denied::Channel(i);
                }
            }
        }
        Denied::None
    }
}

fn pattern_text(p: &[u8], f: u8) -> String {
    let prefix = match f {
        READ => "%R~",
        WRITE => "%W~",
        _ => "~",
    };
    format!("{prefix}{}", String::from_utf8_lossy(p))
}

/// The channel arguments of a command: position and whether the user's
/// patterns must equal it literally (`PSUBSCRIBE`'s patterns), as Redis's
/// `ACLDoesCommandHaveChannels` (the unsubscribe commands have none).
fn channel_args(def: &CommandDef, args: &[&[u8]]) -> Vec<(usize, bool)> {
    match def.name.as_str() {
        "publish" | "spublish" => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// The outcome of a permission check (ordered as Redis's `ACL_DENIED_*`:
/// the highest refusal among the selectors is reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    /// Allowed.
    None,
    /// The command.
    Command,
    /// The key at this argument position.
    Key(usize),
    /// The channel at this argument position.
    Channel(usize),
}

impl Denied {
    fn rank(self) -> u8 {
        match self {
            Denied::None => 0,
            Denied::Command => 1,
            Denied::Key(_) => 2,
            Denied::Channel(_) => 4,
        }
    }

    /// Redis's `-NOPERM` text (`getAclErrorMessage`).
    pub fn text(self, def: &CommandDef) -> String {
        match self {
            Denied::None => String::new(),
            Denied::Command => format!(
                "NOPERM this user has no permissions to run the '{}' command",
                def.name
            ),
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .into()
            }
        }
    }
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Name.
    pub name: Vec<u8>,
    /// `on`.
    pub enabled: bool,
    /// `nopass`.
    pub nopass: bool,
    /// `sanitize-payload` / `skip-sanitize-payload` (0: neither was set).
    pub sanitize: u8,
    /// SHA-256 hex digests, in order.
    pub passwords: Vec<String>,
    /// Permissions outside any parentheses.
    pub root: Selector,
    /// `(...)` selectors.
    pub selectors: Vec<Selector>,
}

impl User {
    /// A new user: off, no password, no permissions, channels as
    /// `acl-pubsub-default` says.
    pub fn new(cat: &Catalog, name: &[u8]) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: 0,
            passwords: Vec::new(),
            root: Selector::new(cat),
            selectors: Vec::new(),
        }
    }

    /// Applies one `ACL SETUSER` rule (Redis's `ACLSetUser`).
    pub fn apply(&mut self, cat: &Catalog, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |s: &str| op.eq_ignore_ascii_case(s.as_bytes());
        let first = op.first().copied().unwrap_or_default();
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = 2;
        } else if is("sanitize-payload") {
            self.sanitize = 1;
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if first == b'>' || first == b'#' {
            let rest = op.get(1..).unwrap_or_default();
            let hash = if first == b'>' {
                sha256_hex(rest)
            } else {
                valid_hash(rest)?
            };
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if first == b'<' || first == b'!' {
            let rest = op.get(1..).unwrap_or_default();
            let hash = if first == b'<' {
                sha256_hex(rest)
            } else {
                valid_hash(rest)?
            };
            let at = self
                .passwords
                .iter()
                .position(|p| *p == hash)
                .ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if first == b'(' && op.last() == Some(&b')') {
            let inner = op.get(1..op.len() - 1).unwrap_or_default();
            let mut s = Selector::new(cat);
            for part in inner
                .split(|c| c.is_ascii_whitespace())
                .filter(|p| !p.is_empty())
            {
                s.apply(cat, part)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.clear();
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            self.root.allkeys = false;
            self.root.keys.clear();
            self.root.allchannels = cat.allchannels_default();
            self.root.channels.clear();
            self.enabled = false;
            self.sanitize = 1;
            self.selectors.clear();
            self.root.all(false);
        } else {
            self.root.apply(cat, op)?;
        }
        Ok(())
    }

    /// The flags `ACL GETUSER` lists, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            2 => f.push("skip-sanitize-payload"),
            1 => f.push("sanitize-payload"),
            _ => {}
        }
        f
    }

    /// Redis's `ACLDescribeUser`: the rules of `ACL LIST` and the ACL file.
    pub fn describe(&self, cat: &Catalog) -> String {
        let mut s = String::new();
        for f in self.flags() {
            s.push_str(f);
            s.push(' ');
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        s.push_str(&self.root.describe(cat));
        for sel in &self.selectors {
            s.push_str(" (");
            s.push_str(&sel.describe(cat));
            s.push(')');
        }
        s
    }

    /// Does `pass` authenticate this user?
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let h = sha256_hex(pass);
        self.passwords
            .iter()
            .any(|p| constant_time_eq(p.as_bytes(), h.as_bytes()))
    }

    /// All commands, keys and channels, and no selector needed.
    pub fn unrestricted(&self) -> bool {
        self.root.unrestricted()
    }

    /// Redis's `ACLCheckAllUserCommandPerm`: the root selector, then the
    /// others; the highest refusal is reported.
    pub fn check(
        &self,
        srv: &ServerState,
        cat: &Catalog,
        def: &CommandDef,
        args: &[&[u8]],
    ) -> Denied {
        let mut worst = Denied::None;
        for s in self.all_selectors() {
            let d = s.check(srv, cat, def, args);
            if d == Denied::None {
                return d;
            }
            if d.rank() > worst.rank() {
                worst = d;
            }
        }
        worst
    }

    /// Whether a selector that allows `def` also allows every key for
    /// reading (SORT's BY and GET patterns need it, as Redis's
    /// `ACLUserCheckCmdWithUnrestrictedKeyAccess`).
    pub fn all_keys_for(&self, cat: &Catalog, def: &CommandDef, args: &[&[u8]]) -> bool {
        self.all_selectors()
            .any(|s| s.command_ok(cat, def, args) && s.allkeys)
    }

    /// The root selector, then the `(...)` ones.
    pub fn all_selectors(&self) -> impl Iterator<Item = &Selector> {
        std::iter::once(&self.root).chain(self.selectors.iter())
    }
}

fn valid_hash(h: &[u8]) -> Result<String, RuleError> {
    if h.len() != 64 || !h.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b) {
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// One `ACL LOG` entry (Redis's `ACLLogEntry`).
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Times this denial happened (grouped within 60 s).
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    /// The command, key or channel refused (`AUTH` for authentication).
    pub object: Vec<u8>,
    /// The user (for `auth`, the name tried).
    pub username: Vec<u8>,
    /// Unix time of the last occurrence, in milliseconds.
    pub ctime_ms: u64,
    /// The client's `CLIENT LIST` line at the last occurrence.
    pub client_info: String,
}

impl Denied {
    /// The `ACL LOG` reason and the object refused.
    pub fn log_fields<'a>(
        self,
        def: &'a CommandDef,
        args: &[&'a [u8]],
    ) -> (&'static str, &'a [u8]) {
        match self {
            Denied::None | Denied::Command => ("command", def.name.as_bytes()),
            Denied::Key(i) => ("key", args.get(i).copied().unwrap_or_default()),
            Denied::Channel(i) => ("channel", args.get(i).copied().unwrap_or_default()),
        }
    }
}

/// The server's users.
#[derive(Debug, Default)]
pub struct Acl {
    /// `ACL LOG`, newest first.
    pub log: parking_lot::Mutex<std::collections::VecDeque<LogEntry>>,
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    /// Bumped by every change of any user.
    epoch: AtomicU64,
    /// The default user needs a password (or is off): new connections
    /// must authenticate, as Redis's `authRequired`.
    auth_required: std::sync::atomic::AtomicBool,
    catalog: OnceLock<Catalog>,
}

impl Acl {
    /// The command catalog (built on first use from the command table).
    pub fn catalog(&self, srv: &ServerState) -> &Catalog {
        self.catalog.get_or_init(|| Catalog::build(srv))
    }

    /// The current epoch (never 0, so a client's 0 means "not checked").
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Creates the `default` user (`+@all ~* &* on nopass`, or `requirepass`).
    pub fn init(&self, srv: &ServerState) {
        let cat = self.catalog(srv);
        let mut u = User::new(cat, b"default");
        for r in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(cat, r.as_bytes());
        }
        self.users.write().insert(b"default".to_vec(), Arc::new(u));
        self.sync_requirepass(srv);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// `requirepass` changed: the default user gets that one password (or
    /// `nopass` when empty), as Redis's `updateRequirePass`.
    pub fn sync_requirepass(&self, srv: &ServerState) {
        let pass = srv.config.get("requirepass").unwrap_or_default();
        let cat = self.catalog(srv);
        self.update(b"default", |u| {
            let _ = u.apply(cat, b"resetpass");
            if pass.is_empty() {
                let _ = u.apply(cat, b"nopass");
            } else {
                let mut op = b">".to_vec();
                op.extend_from_slice(pass.as_bytes());
                let _ = u.apply(cat, &op);
            }
        });
    }

    /// Records a denial in `ACL LOG`: an entry with the same reason,
    /// context, object and user less than 60 s old is counted again and
    /// moves to the front, as Redis's `addACLLogEntry`.
    pub fn log_denial(&self, srv: &ServerState, mut e: LogEntry) {
        let max = srv.config.get_u64("acllog-max-len") as usize;
        let mut log = self.log.lock();
        // Redis looks at the ten newest entries only.
        let same = log.iter().take(10).position(|o| {
            o.reason == e.reason
                && o.context == e.context
                && o.object == e.object
                && o.username == e.username
                && e.ctime_ms.saturating_sub(o.ctime_ms) <= 60_000
        });
        if let Some(i) = same {
            if let Some(old) = log.remove(i) {
                e.count = old.count + 1;
            }
        }
        log.push_front(e);
        log.truncate(max);
    }

    /// `ACL LOAD` (and startup with `aclfile`): replaces every user with
    /// the file's, all or nothing, as Redis's `ACLLoadFromFile` (its error
    /// texts). The file holds one `user <name> <rules...>` per line; blank
    /// lines are skipped.
    pub fn load_file(&self, srv: &ServerState, path: &str) -> Result<(), String> {
        let text = std::fs::read(path).map_err(|e| {
            format!(
                "Error loading ACLs, opening file '{path}': {}",
                crate::config::value::strerror(&e)
            )
        })?;
        let cat = self.catalog(srv);
        let mut users: BTreeMap<Vec<u8>, Arc<User>> = BTreeMap::new();
        let mut errors = String::new();
        for (i, line) in text.split(|&c| c == b'\n').enumerate() {
            let n = i + 1;
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let argv: Vec<&[u8]> = line
                .split(|&c| c == b' ')
                .filter(|a| !a.is_empty())
                .collect();
            let first = argv.first().copied().unwrap_or_default();
            let Some(name) = argv.get(1).copied().filter(|_| first == b"user") else {
                errors.push_str(&format!(
                    "{path}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            };
            if has_spaces(name) {
                errors.push_str(&format!(
                    "'{path}:{n}: username '{}' contains invalid characters. ",
                    String::from_utf8_lossy(name)
                ));
                continue;
            }
            let mut u = match users.get(name) {
                None => User::new(cat, name),
                Some(_) => {
                    errors.push_str(&format!(
                        "WARNING: Duplicate user '{}' found on line {n}. ",
                        String::from_utf8_lossy(name)
                    ));
                    continue;
                }
            };
            let mut reported = false;
            for op in argv.get(2..).unwrap_or_default() {
                let op = op.trim_ascii();
                if let Err(e) = u.apply(cat, op) {
                    if e == RuleError::Unknown {
                        errors.push_str(&format!(
                            "{path}:{n}: Error in applying operation '{}': {}. ",
                            String::from_utf8_lossy(op),
                            e.text()
                        ));
                    } else if !reported {
                        errors.push_str(&format!("{path}:{n}: {}. ", e.text()));
                        reported = true;
                    }
                }
            }
            // Kept even after an error: a later duplicate is reported too.
            users.insert(name.to_vec(), Arc::new(u));
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
            );
            return Err(errors);
        }
        // A file without `default`: the default user as Redis creates it
        // (`on nopass ~* &* +@all`). With `requirepass` set, redis-server
        // 7.0.15 was seen refusing every login then (requirepass included):
        // Amber leaves the default user off, the closest safe answer.
        users.entry(b"default".to_vec()).or_insert_with(|| {
            let mut d = User::new(cat, b"default");
            if srv.config.get("requirepass").unwrap_or_default().is_empty() {
                for r in ["+@all", "~*", "&*", "on", "nopass"] {
                    let _ = d.apply(cat, r.as_bytes());
                }
            }
            Arc::new(d)
        });
        *self.users.write() = users;
        self.changed();
        Ok(())
    }

    /// The configuration's `user` lines at start-up, as Redis: each line's
    /// rules are checked on a scratch user as the file is read
    /// (`ACLAppendUserForLoading`: unknown commands pass there), then
    /// `aclfile` must not be set too, then the users are created
    /// (`ACLLoadConfiguredUsers`: `default` is reset first). The error is
    /// the one Redis stops with.
    pub fn load_config_users(
        &self,
        srv: &ServerState,
        lines: &[crate::config::UserLine],
    ) -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        let cat = self.catalog(srv);
        let mut parsed = Vec::new();
        for line in lines {
            let argv: Vec<&[u8]> = line.args.iter().map(Vec::as_slice).collect();
            let name = argv.get(1).copied().unwrap_or_default();
            let rules = argv.get(2..).unwrap_or_default();
            // Redis quotes the argument at the rule's index among the rules
            // (counting from `user`), and for an open selector the text of
            // whatever error came last: its unknown-name one.
            let ops = merge_selectors(rules)
                .map_err(|at| line.error(at, RuleError::Unknown.text()).to_string())?;
            let mut scratch = User::new(cat, name);
            for (j, op) in ops.iter().enumerate() {
                match scratch.apply(cat, op) {
                    Err(e) if e != RuleError::Unknown => {
                        return Err(line.error(j, e.text()).to_string())
                    }
                    _ => {}
                }
            }
            parsed.push((name, ops));
        }
        if !srv.config.get("aclfile").unwrap_or_default().is_empty() {
            return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
        }
        let mut users = self.users.read().clone();
        for (name, ops) in parsed {
            let mut u = match users.get(name) {
                Some(d) if name == b"default" => {
                    let mut d = (**d).clone();
                    let _ = d.apply(cat, b"reset");
                    d
                }
                _ => User::new(cat, name),
            };
            for op in &ops {
                if let Err(e) = u.apply(cat, op) {
                    return Err(format!(
                        "Error loading ACL rule '{}' for the user named '{}': {}\nCritical error while loading ACLs. Exiting.",
                        String::from_utf8_lossy(op),
                        String::from_utf8_lossy(name),
                        e.text()
                    ));
                }
            }
            users.insert(name.to_vec(), Arc::new(u));
        }
        *self.users.write() = users;
        self.changed();
        Ok(())
    }

    /// Every user as a `user <name> <rules>` line, by name: the lines of
    /// `ACL SAVE`'s file and of `CONFIG REWRITE`.
    pub fn config_lines(&self, srv: &ServerState) -> Vec<String> {
        let cat = self.catalog(srv);
        self.all()
            .iter()
            .map(|u| {
                format!(
                    "user {} {}",
                    String::from_utf8_lossy(&u.name),
                    u.describe(cat)
                )
            })
            .collect()
    }

    /// `ACL SAVE`: every user as `ACL LIST` shows it, one per line, written
    /// to a temporary file renamed over `path`.
    pub fn save_file(&self, srv: &ServerState, path: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut text = String::new();
        for line in self.config_lines(srv) {
            text.push_str(&line);
            text.push('\n');
        }
        let tmp = format!(
            "{path}.tmp-{}-{}",
            std::process::id(),
            amber_storage::clock::now_ms()
        );
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        let r = write();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Whether new connections must authenticate.
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Ordering::Relaxed)
    }

    fn changed(&self) {
        let open = self
            .users
            .read()
            .get(&b"default"[..])
            .is_some_and(|u| u.enabled && u.nopass);
        self.auth_required.store(!open, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A user by name.
    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// Every user, by name.
    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Replaces (or creates) a user.
    pub fn put(&self, u: User) {
        self.users.write().insert(u.name.clone(), Arc::new(u));
        self.changed();
    }

    /// Changes an existing user in place.
    pub fn update(&self, name: &[u8], f: impl FnOnce(&mut User)) {
        let mut users = self.users.write();
        if let Some(u) = users.get_mut(name) {
            f(Arc::make_mut(u));
        }
        drop(users);
        self.changed();
    }

    /// Removes a user; true when it existed.
    pub fn remove(&self, name: &[u8]) -> bool {
        let gone = self.users.write().remove(name).is_some();
        self.changed();
        gone
    }
}

/// Merges `(`...`)` selector arguments split apart (by a client or a
/// config line) into one rule each, as Redis's
/// `ACLMergeSelectorArguments`; the error is the index of a selector's
/// first part that is never closed.
pub fn merge_selectors(ops: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(Vec<u8>, usize)> = None;
    for (i, op) in ops.iter().enumerate() {
        match open.as_mut() {
            Some((acc, _)) => {
                acc.push(b' ');
                acc.extend_from_slice(op);
                if op.last() == Some(&b')') {
                    out.extend(open.take().map(|(acc, _)| acc));
                }
            }
            None if op.first() == Some(&b'(') && op.last() != Some(&b')') => {
                open = Some((op.to_vec(), i));
            }
            None => out.push(op.to_vec()),
        }
    }
    match open {
        Some((_, at)) => Err(at),
        None => Ok(out),
    }
}

/// The clients of user `old` to disconnect now that it became `new`:
/// those subscribed to a channel or pattern `new` no longer allows, as
/// Redis's `ACLKillPubsubClientsIfNeeded`. Nobody when a selector of
/// `new` allows every channel, or when every channel rule of `old` is
/// still among `new`'s (and `old` did not allow every channel). Patterns
/// must be listed as such; channels may match a rule's pattern. Shard
/// channels count as channels.
pub fn revoked_subscribers(
    srv: &ServerState,
    old: &User,
    new: &User,
) -> Vec<Arc<crate::client::ClientHandle>> {
    use crate::pubsub::Kind;
    if new.all_selectors().any(|s| s.allchannels) {
        return Vec::new();
    }
    let upcoming: Vec<&Vec<u8>> = new.all_selectors().flat_map(|s| &s.channels).collect();
    let kept = !old.all_selectors().any(|s| s.allchannels)
        && old
            .all_selectors()
            .flat_map(|s| &s.channels)
            .all(|c| upcoming.contains(&c));
    if kept {
        return Vec::new();
    }
    let allowed = |name: &[u8], pattern: bool| {
        upcoming.iter().any(|p| {
            if pattern {
                p.as_slice() == name
            } else {
                amber_storage::glob::matches(p, name, false)
            }
        })
    };
    srv.clients
        .all()
        .into_iter()
        .filter(|h| {
            let (user, subscribed) = {
                let info = h.info.lock();
                (info.user == old.name, info.subs.iter().any(|&n| n > 0))
            };
            if !user || !subscribed {
                return false;
            }
            let denied = |kind: Kind| {
                srv.pubsub
                    .subscriptions_of(kind, h.id)
                    .iter()
                    .any(|n| !allowed(n, kind == Kind::Pattern))
            };
            denied(Kind::Pattern) || denied(Kind::Channel) || denied(Kind::Shard)
        })
        .collect()
}

/// SHA-256 of `data` as 64 lowercase hex digits (Redis's `ACLHashPassword`).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    sha2::Sha256::digest(data)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_digests() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Redis's hash of "pw" (ACL GETUSER on redis-server 7.0.15).
        assert_eq!(
            sha256_hex(b"pw"),
            "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
        );
    }
}
