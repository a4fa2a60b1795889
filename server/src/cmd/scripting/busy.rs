//! Long scripts (`busy-reply-threshold`, `SCRIPT KILL`), as in Redis 7.0's
//! `script.c`: once a script has run longer than the threshold, other
//! clients' commands are refused with `-BUSY` (but those Redis allows
//! while busy), and `SCRIPT KILL` stops the script at its next check (every
//! 100,000 Lua instructions), unless it already wrote.
//!
//! A script holds the keyspace's exclusive gate, so `SCRIPT KILL` runs
//! without the gate ([`check`]); everything else here is atomics, and a
//! command costs one atomic load when no script runs.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mlua::ffi::{self, lua_Debug, lua_State};

use crate::cmd::{CmdError, CommandDef, Flags};
use crate::state::ServerState;

/// Registry key of the running script's [`Busy`] (a light userdata).
const BUSY_KEY: &std::ffi::CStr = c"amber.busy";
/// Lua instructions between two checks (Redis's hook count).
const CHECK_EVERY: c_int = 100_000;

/// The state of the running script, shared with the other connections.
#[derive(Debug, Default)]
pub struct Busy {
    /// When the running script started (ms since the Unix epoch + 1), 0
    /// when none runs.
    started_ms: AtomicU64,
    /// `SCRIPT KILL` asked the script to stop.
    kill: AtomicBool,
    /// The script called a write command: it cannot be killed.
    wrote: AtomicBool,
    /// The running script is a function (`FCALL`), killed with `FUNCTION
    /// KILL` rather than `SCRIPT KILL`.
    function: AtomicBool,
}

/// What a command may do while a script runs.
pub enum Check {
    /// No script runs long: as usual.
    Free,
    /// Refused with this error (`-BUSY ...`).
    Refuse(CmdError),
    /// Runs at once, without the keyspace gate (`SCRIPT KILL`).
    RunNow,
}

fn now_ms() -> u64 {
    amber_storage::clock::now_ms()
}

impl Busy {
    /// A script starts (`function`: an `FCALL`).
    pub fn begin(&self, function: bool) {
        self.kill.store(false, Ordering::Relaxed);
        self.function.store(function, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.started_ms.store(now_ms() + 1, Ordering::Release);
    }

    /// The script ended.
    pub fn end(&self) {
        self.started_ms.store(0, Ordering::Release);
        self.kill.store(false, Ordering::Relaxed);
    }

    /// The script called a write command.
    pub fn note_write(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// How long the running script has run, if one runs.
    pub fn running_ms(&self) -> Option<u64> {
        self.running_for_ms()
    }

    /// How long the running script has run, if one runs.
    fn running_for_ms(&self) -> Option<u64> {
        match self.started_ms.load(Ordering::Acquire) {
            0 => None,
            started => Some(now_ms().saturating_sub(started - 1)),
        }
    }

    /// `SCRIPT KILL` (`function` false) or `FUNCTION KILL` (`scriptKill`).
    pub fn kill(&self, function: bool) -> Result<(), CmdError> {
        if self.running_for_ms().is_none() {
            return Err(CmdError::msg("NOTBUSY No scripts in execution right now."));
        }
        if self.wrote.load(Ordering::Relaxed) {
            return Err(CmdError::msg(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            ));
        }
        let running_function = self.function.load(Ordering::Relaxed);
        if running_function != function {
            return Err(CmdError::msg(busy_error(running_function)));
        }
        self.kill.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Stops the running script at its next check even if it wrote: the
    /// server is shutting down without saving (`SHUTDOWN NOSAVE`), which
    /// Redis does by exiting under the script.
    pub fn abort(&self) {
        if self.running_for_ms().is_some() {
            self.kill.store(true, Ordering::Relaxed);
        }
    }

    /// Installs the instruction-count hook on `state` for this script.
    ///
    /// # Safety
    /// `state` is the interpreter's main state; `self` outlives the script.
    pub unsafe fn watch(&self, state: *mut lua_State) {
        ffi::lua_pushlightuserdata(state, self as *const Busy as *mut std::ffi::c_void);
        ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, BUSY_KEY.as_ptr());
        ffi::lua_sethook(state, Some(count_hook), ffi::LUA_MASKCOUNT, CHECK_EVERY);
    }

    /// Removes the hook.
    ///
    /// # Safety
    /// `state` is the interpreter's main state.
    pub unsafe fn unwatch(state: *mut lua_State) {
        ffi::lua_sethook(state, None, 0, 0);
        ffi::lua_pushnil(state);
        ffi::lua_setfield(state, ffi::LUA_REGISTRYINDEX, BUSY_KEY.as_ptr());
    }
}

/// `luaMaskCountHook`: stops a killed script. Once killed, the hook runs on
/// every line so that `pcall` cannot keep the script alive.
unsafe extern "C-unwind" fn count_hook(l: *mut lua_State, _ar: *mut lua_Debug) {
    ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, BUSY_KEY.as_ptr());
    let busy = ffi::lua_touserdata(l, -1) as *const Busy;
    ffi::lua_pop(l, 1);
    // SAFETY: set by `Busy::watch` for the running script.
    let Some(busy) = busy.as_ref() else { return };
    if !busy.kill.load(Ordering::Relaxed) {
        return;
    }
    tracing::warn!("Lua script killed by user with SCRIPT KILL.");
    ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushstring(l, c"ERR Script killed by user with SCRIPT KILL...".as_ptr());
    ffi::lua_setfield(l, -2, c"err".as_ptr());
    ffi::lua_error(l);
}

/// Redis's `-BUSY` while a script (`slowevalerr`) or a function
/// (`slowscripterr`) runs.
fn busy_error(function: bool) -> &'static str {
    if function {
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    } else {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    }
}

/// `busy-reply-threshold` in milliseconds (Redis's default 5000).
pub fn threshold_ms(srv: &ServerState) -> u64 {
    srv.config
        .get("busy-reply-threshold")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000)
}

/// The `-BUSY` error of the script running past `busy-reply-threshold`,
/// if one does (Redis's `isInsideYieldingLongCommand`).
pub fn long_running(srv: &ServerState) -> Option<CmdError> {
    let ran = srv.scripting.busy.running_for_ms()?;
    let threshold = threshold_ms(srv);
    if threshold == 0 || ran < threshold {
        return None;
    }
    let function = srv.scripting.busy.function.load(Ordering::Relaxed);
    Some(CmdError::msg(busy_error(function)))
}

/// What `def` may do now (one atomic load when no script runs).
pub fn check(srv: &ServerState, def: &CommandDef) -> Check {
    let Some(busy) = long_running(srv) else {
        return Check::Free;
    };
    // The kills, `FUNCTION STATS` (which reports the running function) and
    // `SHUTDOWN` (which refuses itself unless `NOSAVE`) must not wait for
    // the gate the script holds.
    if matches!(
        def.name.as_str(),
        "script|kill" | "function|kill" | "function|stats" | "shutdown"
    ) {
        return Check::RunNow;
    }
    if def.flags.has(Flags::ALLOW_BUSY) {
        return Check::Free;
    }
    Check::Refuse(busy)
}
