//! Commands of the `hashes` family (being written with the data-types work).

use super::Handler;

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[];
