//! Commands of the `command` family (being written).

use super::Handler;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[];
