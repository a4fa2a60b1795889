//! The Lua debugger (LDB, `eval.c`'s `ldb*` functions): `SCRIPT DEBUG
//! YES|SYNC|NO`, then an `EVAL` that stops at each line and talks to its
//! client directly over the socket, as Redis does from its line hook.
//!
//! The session runs on the connection's thread, which blocks reading the
//! client's debugger commands (Redis blocks its only thread in `SYNC`
//! mode). Redis runs a `YES` session in a forked child whose writes are
//! thrown away; Amber cannot fork a multi-threaded process, so the session
//! runs in place, records each key before the script first writes it, and
//! puts every such key back when the session ends ([`super::ldb_undo`]).
//! Either way the script holds the keyspace gate meanwhile.
//!
//! Only the debugging thread ever has a session, kept in a thread-local:
//! a script without one pays one thread-local flag read per `redis.call`.

use std::cell::{Cell, RefCell};
use std::ffi::{c_int, CStr};
use std::sync::Arc;
use std::time::Instant;

use mlua::ffi::{self, lua_Debug, lua_State};

use super::ldb_show;
use super::ldb_undo::Journal;
use crate::client::ClientHandle;

/// `SCRIPT DEBUG YES` (Redis forks) or `SYNC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `YES`: the script's changes are undone at the end.
    Forked,
    /// `SYNC`: the changes stay.
    Sync,
}

/// Most breakpoints (`LDB_BREAKPOINTS_MAX`).
const BREAKPOINTS_MAX: usize = 64;
/// Default trimming of logged values (`LDB_MAX_LEN_DEFAULT`).
const MAXLEN_DEFAULT: usize = 256;
/// Lua instructions between two timeout checks (Redis's hook count).
const CHECK_EVERY: c_int = 100_000;
/// Registry key of the script's globals, for `eval`.
const ENV_KEY: &CStr = c"amber.ldb.env";

/// One debugging session (Redis's `struct ldbState`).
pub struct Session {
    fd: i32,
    handle: Arc<ClientHandle>,
    mode: Mode,
    logs: Vec<Vec<u8>>,
    /// Breakpoint lines; only the first `bpcount` count.
    bp: [i32; BREAKPOINTS_MAX],
    bpcount: usize,
    step: bool,
    luabp: bool,
    src: Vec<Vec<u8>>,
    currentline: i32,
    cbuf: Vec<u8>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    /// When the script last resumed (the timeout stop).
    resumed: Instant,
    /// `busy-reply-threshold`, or 5000 ms when 0.
    time_limit_ms: u64,
    /// The keys to put back (`Mode::Forked`).
    pub journal: Journal,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
    /// A session runs and `redis.call`s are logged (`ldbIsEnabled`).
    static LOGGING: Cell<bool> = const { Cell::new(false) };
}

fn with<R>(f: impl FnOnce(&mut Session) -> R) -> Option<R> {
    SESSION.with(|s| s.borrow_mut().as_mut().map(f))
}

fn set_step(step: bool) {
    with(|s| s.step = step);
    LOGGING.with(|l| l.set(step));
}

/// Starts a session for the client of `handle` on socket `fd`, debugging
/// `body` (`ldbStartSession`).
pub fn start(fd: i32, handle: Arc<ClientHandle>, mode: Mode, body: &[u8], time_limit_ms: u64) {
    let mut end = body.len();
    while end > 0 && matches!(body.get(end - 1), Some(b'\n' | b'\r')) {
        end -= 1;
    }
    let src = body
        .get(..end)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let session = Session {
        fd,
        handle,
        mode,
        logs: Vec::new(),
        bp: [0; BREAKPOINTS_MAX],
        bpcount: 0,
        step: true,
        luabp: false,
        src,
        currentline: 0,
        cbuf: Vec::new(),
        maxlen: MAXLEN_DEFAULT,
        maxlen_hint_sent: false,
        resumed: Instant::now(),
        time_limit_ms: if time_limit_ms == 0 {
            5000
        } else {
            time_limit_ms
        },
        journal: Journal::default(),
    };
    SESSION.with(|s| *s.borrow_mut() = Some(session));
    LOGGING.with(|l| l.set(true));
}

/// Ends the session: sends the last logs and `<endsession>`
/// (`ldbEndSession`); returns the session for its journal.
pub fn end() -> Option<Session> {
    LOGGING.with(|l| l.set(false));
    let mut session = SESSION.with(|s| s.borrow_mut().take())?;
    session.log(b"<endsession>".to_vec());
    session.send_logs();
    Some(session)
}

/// The mode of the running session, if any.
pub fn mode() -> Option<Mode> {
    SESSION.with(|s| s.borrow().as_ref().map(|s| s.mode))
}

/// In a `SCRIPT DEBUG YES` session, saves what a write is about to
/// change (see [`super::ldb_undo`]), or refuses the write.
pub fn before_write(
    ctx: &mut crate::cmd::Ctx<'_>,
    def: &crate::cmd::CommandDef,
    args: &[&[u8]],
) -> Result<(), String> {
    if mode() != Some(Mode::Forked) {
        return Ok(());
    }
    let mut journal = with(|s| std::mem::take(&mut s.journal)).unwrap_or_default();
    let result = journal.before_write(ctx, def, args);
    with(|s| s.journal = journal);
    result
}

/// Whether `redis.call` logs its command and reply now.
#[inline]
pub fn logging() -> bool {
    LOGGING.with(Cell::get)
}

/// Logs a command a script calls (`<redis> ...`, ten arguments at most).
pub fn log_command(argv: &[Vec<u8>]) {
    let mut line = b"<redis>".to_vec();
    for (j, a) in argv.iter().enumerate() {
        if j == 10 {
            // Redis's count is one short; kept so the output matches.
            line.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
            break;
        }
        line.push(b' ');
        line.extend_from_slice(a);
    }
    with(|s| s.log(line));
}

/// Logs a command's reply (`ldbLogRedisReply`).
pub fn log_reply(reply: &[u8]) {
    let mut line = b"<reply> ".to_vec();
    ldb_show::reply_to_human(&mut line, reply, 0);
    with(|s| s.log_with_maxlen(line));
}

impl Session {
    fn log(&mut self, line: Vec<u8>) {
        self.logs.push(line);
    }

    /// `ldbLogWithMaxLen`: long entries are cut, with a hint the first time.
    fn log_with_maxlen(&mut self, mut line: Vec<u8>) {
        let trimmed = self.maxlen != 0 && line.len() > self.maxlen;
        if trimmed {
            line.truncate(self.maxlen);
            line.extend_from_slice(b" ...");
        }
        self.log(line);
        if trimmed && !self.maxlen_hint_sent {
            self.maxlen_hint_sent = true;
            self.log(
                b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.".to_vec(),
            );
        }
    }

    /// Sends the logs as an array of status lines (`ldbSendLogs`); a
    /// failed write shows at the next read.
    fn send_logs(&mut self) {
        let mut proto = format!("*{}\r\n", self.logs.len()).into_bytes();
        for mut line in self.logs.drain(..) {
            for b in line.iter_mut() {
                if *b == b'\r' || *b == b'\n' {
                    *b = b' ';
                }
            }
            proto.push(b'+');
            proto.extend_from_slice(&line);
            proto.extend_from_slice(b"\r\n");
        }
        let _ = super::ldb_io::write_all(self.fd, &proto);
    }

    fn source_line(&self, line: i32) -> &[u8] {
        usize::try_from(line - 1)
            .ok()
            .and_then(|i| self.src.get(i))
            .map_or(b"<out of range source code line>", |l| l.as_slice())
    }

    fn is_breakpoint(&self, line: i32) -> bool {
        self.bp.iter().take(self.bpcount).any(|&b| b == line)
    }

    fn log_source_line(&mut self, line: i32) {
        let prefix = match (self.currentline == line, self.is_breakpoint(line)) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut text = format!("{prefix}{line:<3} ").into_bytes();
        text.extend_from_slice(self.source_line(line));
        self.log(text);
    }

    fn list(&mut self, around: i32, context: i32) {
        for j in 1..=self.src.len() as i32 {
            if around != 0 && (around - j).abs() > context {
                continue;
            }
            self.log_source_line(j);
        }
    }

    /// `ldbDelBreakpoint`, including its `memmove` of `bpcount - j` bytes
    /// (not entries): the list it leaves is what Redis shows.
    fn del_breakpoint(&mut self, line: i32) -> bool {
        let Some(j) = self.bp.iter().take(self.bpcount).position(|&b| b == line) else {
            return false;
        };
        self.bpcount -= 1;
        let mut bytes: Vec<u8> = self.bp.iter().flat_map(|b| b.to_ne_bytes()).collect();
        let n = self.bpcount - j;
        bytes.copy_within((j + 1) * 4..(j + 1) * 4 + n, j * 4);
        for (slot, chunk) in self.bp.iter_mut().zip(bytes.chunks_exact(4)) {
            *slot = i32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        true
    }

    fn breakpoints(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 1 {
            if self.bpcount == 0 {
                self.log(b"No breakpoints set. Use 'b <line>' to add one.".to_vec());
                return;
            }
            self.log(format!("{} breakpoints set:", self.bpcount).into_bytes());
            for j in 0..self.bpcount {
                let line = self.bp.get(j).copied().unwrap_or_default();
                self.log_source_line(line);
            }
            return;
        }
        for arg in argv.iter().skip(1) {
            let Some(line) = crate::cmd::args::parse_i64(arg) else {
                let mut text = b"Invalid argument:'".to_vec();
                text.extend_from_slice(arg);
                text.push(b'\'');
                self.log(text);
                continue;
            };
            let line = line.clamp(i32::MIN as i64 + 1, i32::MAX as i64) as i32;
            if line == 0 {
                self.bpcount = 0;
                self.log(b"All breakpoints removed.".to_vec());
            } else if line > 0 {
                if self.bpcount == BREAKPOINTS_MAX {
                    self.log(b"Too many breakpoints set.".to_vec());
                } else if line as usize <= self.src.len() && !self.is_breakpoint(line) {
                    if let Some(slot) = self.bp.get_mut(self.bpcount) {
                        *slot = line;
                    }
                    self.bpcount += 1;
                    self.list(line, 1);
                } else {
                    self.log(b"Wrong line number.".to_vec());
                }
            } else if self.del_breakpoint(-line) {
                self.log(b"Breakpoint removed.".to_vec());
            } else {
                self.log(b"No breakpoint in the specified line.".to_vec());
            }
        }
    }

    fn maxlen_cmd(&mut self, argv: &[Vec<u8>]) {
        if let [_, len] = argv {
            self.maxlen_hint_sent = true;
            let mut n = atoi(len);
            if n != 0 && n <= 60 {
                n = 60;
            }
            self.maxlen = n as usize;
        }
        let text = if self.maxlen != 0 {
            format!("<value> replies are truncated at {} bytes.", self.maxlen)
        } else {
            "<value> replies are unlimited.".to_string()
        };
        self.log(text.into_bytes());
    }
}

/// C's `atoi`: leading blanks, a sign, digits; 0 when there are none.
fn atoi(s: &[u8]) -> i32 {
    let s = std::str::from_utf8(s).unwrap_or_default().trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or_default()),
        Some(b'+') => (false, s.get(1..).unwrap_or_default()),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = (n * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX) + 1);
    }
    (if neg { -n } else { n }) as i32
}

/// What parsing the command buffer gave (`ldbReplParseCommand`).
enum Parsed {
    Command(Vec<Vec<u8>>),
    More,
    ProtocolError,
}

/// Redis's forgiving parser of one request in `buf`.
fn parse_command(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::More;
    }
    let find_crlf = |from: usize| {
        buf.get(from..)
            .and_then(|r| r.windows(2).position(|w| w == b"\r\n"))
            .map(|i| from + i)
    };
    let Some(star) = buf.iter().position(|&b| b == b'*') else {
        return Parsed::ProtocolError;
    };
    let Some(eol) = find_crlf(star) else {
        return Parsed::More;
    };
    let argc = atoi(buf.get(star + 1..eol).unwrap_or_default());
    if argc <= 0 || argc > 1024 {
        return Parsed::ProtocolError;
    }
    let mut p = eol + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        match buf.get(p) {
            None => return Parsed::More,
            Some(b'$') => {}
            Some(_) => return Parsed::ProtocolError,
        }
        let Some(eol) = find_crlf(p) else {
            return Parsed::More;
        };
        let len = atoi(buf.get(p + 1..eol).unwrap_or_default());
        if len <= 0 || len > 1024 {
            return Parsed::ProtocolError;
        }
        let start = eol + 2;
        let end = start + len as usize;
        if end + 2 > buf.len() {
            return Parsed::More;
        }
        argv.push(buf.get(start..end).unwrap_or_default().to_vec());
        if buf.get(end..end + 2) != Some(b"\r\n") {
            return Parsed::ProtocolError;
        }
        p = end + 2;
    }
    Parsed::Command(argv)
}

/// How the REPL ended.
enum Repl {
    /// Back to the script.
    Resume,
    /// The client is gone (`C_ERR`).
    Gone,
    /// The script must stop with this error.
    Raise(Vec<u8>),
}

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// Reads the next debugger command, or how the REPL ends.
fn next_command() -> Result<Vec<Vec<u8>>, Repl> {
    loop {
        let parsed = with(|s| parse_command(&s.cbuf)).unwrap_or(Parsed::ProtocolError);
        match parsed {
            Parsed::Command(argv) => {
                with(|s| s.cbuf.clear());
                return Ok(argv);
            }
            Parsed::ProtocolError => return Err(Repl::Raise(b"protocol error".to_vec())),
            Parsed::More => {}
        }
        let Some((fd, handle)) = with(|s| (s.fd, s.handle.clone())) else {
            return Err(Repl::Gone);
        };
        let Some(bytes) = super::ldb_io::read_some(fd, &handle) else {
            with(|s| s.bpcount = 0);
            set_step(false);
            return Err(Repl::Gone);
        };
        let too_big = with(|s| {
            s.cbuf.extend_from_slice(&bytes);
            if s.cbuf.len() > 1 << 20 {
                s.cbuf = Vec::new();
                true
            } else {
                false
            }
        });
        if too_big == Some(true) {
            return Err(Repl::Raise(b"max client buffer reached".to_vec()));
        }
    }
}

fn is_cmd(name: &[u8], short: &str, long: &str) -> bool {
    name.eq_ignore_ascii_case(short.as_bytes()) || name.eq_ignore_ascii_case(long.as_bytes())
}

/// Talks with the client until a command resumes the script (`ldbRepl`).
///
/// # Safety
/// `l` is the running script's state, inside the line hook.
unsafe fn repl(l: *mut lua_State) -> Repl {
    loop {
        let argv = match next_command() {
            Ok(argv) => argv,
            Err(end) => return end,
        };
        let name = argv.first().map(Vec::as_slice).unwrap_or_default();
        if is_cmd(name, "h", "help") {
            with(|s| HELP.iter().for_each(|h| s.log(h.as_bytes().to_vec())));
        } else if is_cmd(name, "s", "step") || is_cmd(name, "n", "next") {
            set_step(true);
            return Repl::Resume;
        } else if is_cmd(name, "c", "continue") {
            return Repl::Resume;
        } else if is_cmd(name, "t", "trace") {
            trace(l);
        } else if is_cmd(name, "m", "maxlen") {
            with(|s| s.maxlen_cmd(&argv));
        } else if is_cmd(name, "b", "break") {
            with(|s| s.breakpoints(&argv));
        } else if is_cmd(name, "e", "eval") {
            eval(l, &argv);
        } else if is_cmd(name, "a", "abort") {
            return Repl::Raise(b"script aborted for user request".to_vec());
        } else if argv.len() > 1 && is_cmd(name, "r", "redis") {
            redis(l, &argv);
        } else if is_cmd(name, "p", "print") {
            match argv.get(1) {
                Some(var) if argv.len() == 2 => print_var(l, var),
                _ => print_all(l),
            }
        } else if is_cmd(name, "l", "list") {
            with(|s| {
                let mut around = s.currentline;
                if let Some(n) = argv.get(1).map(|a| atoi(a)).filter(|&n| n > 0) {
                    around = n;
                }
                let context = argv.get(2).map_or(5, |a| atoi(a));
                s.list(around, context);
            });
        } else if is_cmd(name, "w", "whole") {
            with(|s| s.list(1, 1_000_000));
        } else {
            with(|s| {
                s.log(
                    b"<error> Unknown Redis Lua debugger command or wrong number of arguments."
                        .to_vec(),
                )
            });
        }
        with(Session::send_logs);
    }
}

/// Logs the value on top of the stack, prefixed (`ldbLogStackValue`).
unsafe fn log_top(l: *mut lua_State, prefix: &[u8]) {
    let mut line = prefix.to_vec();
    ldb_show::cat_value(&mut line, l, -1);
    with(|s| s.log_with_maxlen(line));
}

/// Walks the locals of frame `ar`: each is pushed on top of the stack
/// while `each(name)` runs, then popped; stops when `each` returns true,
/// and returns whether it did.
unsafe fn each_local(
    l: *mut lua_State,
    ar: &lua_Debug,
    mut each: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut i = 1;
    loop {
        let name = ffi::lua_getlocal(l, ar, i);
        if name.is_null() {
            return false;
        }
        i += 1;
        let stop = each(CStr::from_ptr(name).to_bytes());
        ffi::lua_pop(l, 1);
        if stop {
            return true;
        }
    }
}

/// `ldbPrint`: the first local of that name from the current frame out,
/// else the globals `KEYS` and `ARGV`.
unsafe fn print_var(l: *mut lua_State, var: &[u8]) {
    let mut ar: lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        level += 1;
        let found = each_local(l, &ar, |name| {
            let found = name == var;
            if found {
                log_top(l, b"<value> ");
            }
            found
        });
        if found {
            return;
        }
    }
    if var == b"ARGV" || var == b"KEYS" {
        let global = if var == b"ARGV" { c"ARGV" } else { c"KEYS" };
        ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, global.as_ptr());
        log_top(l, b"<value> ");
        ffi::lua_pop(l, 1);
    } else {
        with(|s| s.log(b"No such variable.".to_vec()));
    }
}

/// `ldbPrintAll`: the locals of the current frame.
unsafe fn print_all(l: *mut lua_State) {
    let mut ar: lua_Debug = std::mem::zeroed();
    let mut vars = 0;
    if ffi::lua_getstack(l, 0, &mut ar) != 0 {
        each_local(l, &ar, |name| {
            if !name.windows(12).any(|w| w == b"(*temporary)") {
                let mut prefix = b"<value> ".to_vec();
                prefix.extend_from_slice(name);
                prefix.extend_from_slice(b" = ");
                log_top(l, &prefix);
                vars += 1;
            }
            false
        });
    }
    if vars == 0 {
        with(|s| s.log(b"No local variables in the current context.".to_vec()));
    }
}

/// `ldbTrace`: the script's frames, innermost first.
unsafe fn trace(l: *mut lua_State) {
    let mut ar: lua_Debug = std::mem::zeroed();
    let mut level = 0;
    while ffi::lua_getstack(l, level, &mut ar) != 0 {
        ffi::lua_getinfo(l, c"Snl".as_ptr(), &mut ar);
        let src = CStr::from_ptr(ar.short_src.as_ptr()).to_bytes();
        if src.windows(11).any(|w| w == b"user_script") {
            let name = if ar.name.is_null() {
                "top level".to_string()
            } else {
                CStr::from_ptr(ar.name).to_string_lossy().into_owned()
            };
            let line = ar.currentline;
            let label = if level == 0 { "In" } else { "From" };
            with(|s| {
                s.log(format!("{label} {name}:").into_bytes());
                s.log_source_line(line);
            });
        }
        level += 1;
    }
    if level == 0 {
        with(|s| s.log(b"<error> Can't retrieve Lua stack.".to_vec()));
    }
}

/// Logs the error message on top of the stack and pops it.
unsafe fn log_error_top(l: *mut lua_State) {
    let mut len = 0;
    let p = ffi::lua_tolstring(l, -1, &mut len);
    let mut line = b"<error> ".to_vec();
    if !p.is_null() {
        line.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
    }
    ffi::lua_pop(l, 1);
    with(|s| s.log(line));
}

/// `ldbEval`: runs the arguments as an expression, else as statements,
/// with the script's globals.
unsafe fn eval(l: *mut lua_State, argv: &[Vec<u8>]) {
    let code = argv.get(1..).unwrap_or_default().join(&b' ');
    let mut expr = b"return ".to_vec();
    expr.extend_from_slice(&code);
    let load = |chunk: &[u8]| {
        ffi::luaL_loadbuffer(
            l,
            chunk.as_ptr() as *const _,
            chunk.len(),
            c"@ldb_eval".as_ptr(),
        )
    };
    if load(&expr) != 0 {
        ffi::lua_pop(l, 1);
        if load(&code) != 0 {
            log_error_top(l);
            return;
        }
    }
    // The chunk sees what scripts see (protected globals).
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, ENV_KEY.as_ptr());
    if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
        ffi::lua_setfenv(l, -2);
    } else {
        ffi::lua_pop(l, 1);
    }
    if ffi::lua_pcall(l, 0, 1, 0) != 0 {
        log_error_top(l);
        return;
    }
    log_top(l, b"<retval> ");
    ffi::lua_pop(l, 1);
}

/// `ldbRedis`: calls `redis.call` with logging on, so the command and its
/// reply are logged.
unsafe fn redis(l: *mut lua_State, argv: &[Vec<u8>]) {
    if ffi::lua_checkstack(l, argv.len() as c_int + 1) == 0 {
        log_reply(b"max lua stack reached");
        return;
    }
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());
    ffi::lua_getfield(l, -1, c"call".as_ptr());
    for a in argv.iter().skip(1) {
        ffi::lua_pushlstring(l, a.as_ptr() as *const _, a.len());
    }
    set_step(true);
    ffi::lua_pcall(l, argv.len() as c_int - 1, 1, 0);
    set_step(false);
    ffi::lua_pop(l, 2);
}

/// Makes `env` (the scripts' globals) what `eval` runs with.
///
/// # Safety
/// `l` is a valid state with `env` on top of its stack.
pub unsafe fn keep_env(l: *mut lua_State) {
    ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, ENV_KEY.as_ptr());
}

/// Installs the line hook for the session's script.
///
/// # Safety
/// `l` is the interpreter's main state.
pub unsafe fn watch(l: *mut lua_State) {
    ffi::lua_sethook(
        l,
        Some(line_hook),
        ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT,
        CHECK_EVERY,
    );
}

/// `luaLdbLineHook`. The work is in [`stop_here`], which returns with
/// nothing of Rust's left alive, so a raised error does not skip drops.
unsafe extern "C-unwind" fn line_hook(l: *mut lua_State, ar: *mut lua_Debug) {
    let Some(error) = stop_here(l, ar) else {
        return;
    };
    ffi::lua_pushlstring(l, error.as_ptr() as *const _, error.len());
    drop(error);
    ffi::lua_error(l);
}

unsafe fn stop_here(l: *mut lua_State, ar: *mut lua_Debug) -> Option<Vec<u8>> {
    let ar = ar.as_mut()?;
    let event = ar.event;
    ffi::lua_getstack(l, 0, ar);
    ffi::lua_getinfo(l, c"Sl".as_ptr(), ar);
    let line = ar.currentline;
    let in_script = CStr::from_ptr(ar.short_src.as_ptr())
        .to_bytes()
        .windows(11)
        .any(|w| w == b"user_script");
    let (step, bp, luabp, timeout) = with(|s| {
        s.currentline = line;
        let bp = s.is_breakpoint(line) || s.luabp;
        let mut timeout = false;
        if in_script
            && event == ffi::LUA_HOOKCOUNT
            && !s.step
            && !bp
            && s.resumed.elapsed().as_millis() as u64 >= s.time_limit_ms
        {
            timeout = true;
            s.step = true;
        }
        (s.step, bp, s.luabp, timeout)
    })?;
    if !in_script || !(step || bp) {
        return None;
    }
    let reason = if bp {
        if luabp {
            "redis.breakpoint() called"
        } else {
            "break point"
        }
    } else if timeout {
        "timeout reached, infinite loop?"
    } else {
        "step over"
    };
    with(|s| {
        s.luabp = false;
        s.log(format!("* Stopped at {line}, stop reason = {reason}").into_bytes());
        s.log_source_line(line);
        s.send_logs();
    });
    set_step(false);
    let outcome = repl(l);
    with(|s| s.resumed = Instant::now());
    match outcome {
        Repl::Resume => None,
        Repl::Gone if timeout => {
            Some(b"timeout during Lua debugging with client closing connection".to_vec())
        }
        Repl::Gone => None,
        Repl::Raise(e) => Some(e),
    }
}

/// `redis.breakpoint()`: true in a session, which then stops at the next
/// line.
///
/// # Safety
/// Called by Lua only.
pub unsafe extern "C-unwind" fn breakpoint(l: *mut lua_State) -> c_int {
    let active = with(|s| s.luabp = true).is_some();
    ffi::lua_pushboolean(l, c_int::from(active));
    1
}

/// `redis.debug(...)`: logs its arguments in a session.
///
/// # Safety
/// Called by Lua only.
pub unsafe extern "C-unwind" fn debug(l: *mut lua_State) -> c_int {
    let Some(line) = with(|s| s.currentline) else {
        return 0;
    };
    let mut text = format!("<debug> line {line}: ").into_bytes();
    let argc = ffi::lua_gettop(l);
    for i in 1..=argc {
        ldb_show::cat_value(&mut text, l, i);
        if i != argc {
            text.extend_from_slice(b", ");
        }
    }
    with(|s| s.log(text));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_redis() {
        assert!(matches!(parse_command(b""), Parsed::More));
        assert!(matches!(parse_command(b"step\r\n"), Parsed::ProtocolError));
        assert!(matches!(parse_command(b"*1\r\n$4\r\nst"), Parsed::More));
        assert!(matches!(
            parse_command(b"*1\r\n$0\r\n\r\n"),
            Parsed::ProtocolError
        ));
        match parse_command(b"*2\r\n$1\r\np\r\n$1\r\na\r\n") {
            Parsed::Command(argv) => assert_eq!(argv, vec![b"p".to_vec(), b"a".to_vec()]),
            _ => panic!("not parsed"),
        }
    }

    #[test]
    fn atoi_as_c() {
        assert_eq!(atoi(b" 12x"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
    }
}
