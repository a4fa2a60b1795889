//! What a standalone Redis 7.0 answers for the features Amber, like it,
//! does not run: cluster mode (`CLUSTER`, `READONLY`, `READWRITE`,
//! `ASKING`: "cluster support disabled") and modules (`MODULE LIST` is
//! empty; `LOAD`/`LOADEX`/`UNLOAD` are refused while
//! `enable-module-command` is off, Redis's default, and fail to load
//! otherwise: Amber cannot load Redis modules). Clients that probe for a
//! cluster or for modules see what they see on a standalone Redis.

use super::admin::reply_help;
use super::debug::{allowed, not_allowed};
use super::error::{CmdError, CmdResult};
use super::{Ctx, Handler};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("readonly", cluster_disabled),
    ("readwrite", cluster_disabled),
    ("asking", cluster_disabled),
    ("cluster|addslots", cluster_disabled),
    ("cluster|addslotsrange", cluster_disabled),
    ("cluster|bumpepoch", cluster_disabled),
    ("cluster|count-failure-reports", cluster_disabled),
    ("cluster|countkeysinslot", cluster_disabled),
    ("cluster|delslots", cluster_disabled),
    ("cluster|delslotsrange", cluster_disabled),
    ("cluster|failover", cluster_disabled),
    ("cluster|flushslots", cluster_disabled),
    ("cluster|forget", cluster_disabled),
    ("cluster|getkeysinslot", cluster_disabled),
    ("cluster|help", cluster_disabled),
    ("cluster|info", cluster_disabled),
    ("cluster|keyslot", cluster_disabled),
    ("cluster|links", cluster_disabled),
    ("cluster|meet", cluster_disabled),
    ("cluster|myid", cluster_disabled),
    ("cluster|nodes", cluster_disabled),
    ("cluster|replicas", cluster_disabled),
    ("cluster|replicate", cluster_disabled),
    ("cluster|reset", cluster_disabled),
    ("cluster|saveconfig", cluster_disabled),
    ("cluster|set-config-epoch", cluster_disabled),
    ("cluster|setslot", cluster_disabled),
    ("cluster|shards", cluster_disabled),
    ("cluster|slaves", cluster_disabled),
    ("cluster|slots", cluster_disabled),
    ("module|list", module_list),
    ("module|help", module_help),
    ("module|load", module_load),
    ("module|loadex", module_load),
    ("module|unload", module_unload),
];

/// Every cluster command of a server not in cluster mode.
fn cluster_disabled(_ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    Err(CmdError::err("This instance has cluster support disabled"))
}

/// `MODULE LIST`: no module is loaded.
fn module_list(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.array(0);
    Ok(())
}

fn module_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
    Ok(())
}

/// `MODULE LOAD`/`LOADEX`: refused as Redis refuses it, or, where Redis
/// would try, failed as a library that does not load fails.
fn module_load(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if !allowed(ctx, "enable-module-command") {
        return Err(not_allowed("MODULE", "enable-module-command"));
    }
    tracing::warn!("MODULE LOAD: Amber cannot load Redis modules");
    Err(CmdError::err(
        "Error loading the extension. Please check the server logs.",
    ))
}

/// `MODULE UNLOAD`: no module is loaded.
fn module_unload(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    if !allowed(ctx, "enable-module-command") {
        return Err(not_allowed("MODULE", "enable-module-command"));
    }
    Err(CmdError::err(
        "Error unloading module: no such module with that name",
    ))
}
