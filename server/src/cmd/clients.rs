//! Commands of the `clients` family (being written).

use super::Handler;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[];
