//! Command errors and Redis's exact error texts.

use amber_storage::Error as StorageError;

/// `WRONGTYPE` text, shared by every type-checking command.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// Redis's integer parse error.
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
/// Redis's float parse error.
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
/// Redis's generic syntax error.
pub const SYNTAX: &str = "ERR syntax error";
/// The out-of-memory refusal.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// `SELECT` / `MOVE` with a bad index.
pub const DB_RANGE: &str = "ERR DB index is out of range";
/// Commands needing authentication.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// Why a command failed; rendered as one error reply by the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// `WRONGTYPE ...`
    WrongType,
    /// `ERR value is not an integer or out of range`
    NotInteger,
    /// `ERR value is not a valid float`
    NotFloat,
    /// `ERR syntax error`
    Syntax,
    /// `OOM ...`
    OutOfMemory,
    /// `ERR wrong number of arguments for '<name>' command`
    Arity(String),
    /// Any other message, complete with its code (`ERR ...`, `NOAUTH ...`).
    Msg(String),
    /// An error already counted in the error statistics, passed on (a
    /// script replying its command's error): the call fails, the error is
    /// not counted twice (Redis's `ERR_REPLY_FLAG_NO_STATS_UPDATE`).
    Counted(String),
}

impl CmdError {
    /// An error with a full message (code included).
    pub fn msg(text: impl Into<String>) -> Self {
        CmdError::Msg(text.into())
    }

    /// An `ERR`-prefixed error.
    pub fn err(text: impl AsRef<str>) -> Self {
        CmdError::Msg(format!("ERR {}", text.as_ref()))
    }

    /// The text of the error reply (without the leading `-`).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            CmdError::WrongType => WRONGTYPE.into(),
            CmdError::NotInteger => NOT_INTEGER.into(),
            CmdError::NotFloat => NOT_FLOAT.into(),
            CmdError::Syntax => SYNTAX.into(),
            CmdError::OutOfMemory => OOM.into(),
            CmdError::Arity(name) => {
                format!("ERR wrong number of arguments for '{name}' command").into()
            }
            CmdError::Msg(m) | CmdError::Counted(m) => m.as_str().into(),
        }
    }
}

impl From<StorageError> for CmdError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::OutOfMemory => CmdError::OutOfMemory,
            StorageError::DbIndexOutOfRange => CmdError::msg(DB_RANGE),
            other => CmdError::err(other.to_string()),
        }
    }
}

/// What every command handler returns: the reply is already written on `Ok`.
pub type CmdResult = Result<(), CmdError>;
