//! Pub/sub commands: `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`,
//! `PUNSUBSCRIBE`, `SSUBSCRIBE`, `SUNSUBSCRIBE`, `PUBLISH`, `SPUBLISH` and
//! `PUBSUB ...`, as Redis 7.0's `pubsub.c` without cluster mode. The
//! subscription registry and delivery are [`crate::pubsub`].
//!
//! In RESP2 a client with subscriptions may only run the (un)subscribe
//! commands, `PING`, `QUIT` and `RESET` ([`allowed_when_subscribed`], checked
//! by the dispatcher); in RESP3 anything goes and messages arrive as pushes.

use super::admin::reply_help;
use super::{CmdError, CmdResult, Ctx, Handler};
use crate::pubsub::{pubsub_limits, Kind};

/// Commands of this family.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("psubscribe", psubscribe),
    ("punsubscribe", punsubscribe),
    ("ssubscribe", ssubscribe),
    ("sunsubscribe", sunsubscribe),
    ("publish", publish),
    ("spublish", spublish),
    ("pubsub|channels", pubsub_channels),
    ("pubsub|numsub", pubsub_numsub),
    ("pubsub|numpat", pubsub_numpat),
    ("pubsub|shardchannels", pubsub_shardchannels),
    ("pubsub|shardnumsub", pubsub_shardnumsub),
    ("pubsub|help", pubsub_help),
];

/// Whether a RESP2 client in subscriber mode may run `name` (full name).
pub fn allowed_when_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// Redis's error for a command refused in RESP2 subscriber mode.
pub fn subscriber_mode_error(name: &str) -> CmdError {
    CmdError::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Mirrors the client's subscription counts into its visible handle
/// (`CLIENT LIST` `sub=`, `psub=`, `ssub=`, flag `P`).
pub fn publish_counts(ctx: &mut Ctx<'_>) {
    let s = &ctx.client.subs;
    let counts = [
        s.len(Kind::Channel),
        s.len(Kind::Pattern),
        s.len(Kind::Shard),
    ];
    let active = s.active;
    let mut info = ctx.client.handle.info.lock();
    info.subs = counts;
    info.pubsub = active;
}

fn reply_kind(kind: Kind, subscribe: bool) -> &'static [u8] {
    match (kind, subscribe) {
        (Kind::Channel, true) => b"subscribe",
        (Kind::Channel, false) => b"unsubscribe",
        (Kind::Pattern, true) => b"psubscribe",
        (Kind::Pattern, false) => b"punsubscribe",
        (Kind::Shard, true) => b"ssubscribe",
        (Kind::Shard, false) => b"sunsubscribe",
    }
}

fn do_subscribe(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) -> CmdResult {
    for name in args.iter().skip(1) {
        ctx.srv.pubsub.subscribe(&mut ctx.client.subs, kind, name);
        let count = ctx.client.subs.reply_count(kind) as i64;
        // A confirmation is pushed, not replied: `CLIENT REPLY OFF|SKIP`
        // does not drop it (Redis 7.0's `CLIENT_PUSHING`).
        ctx.out.message(|w| {
            w.push(3);
            w.bulk(reply_kind(kind, true));
            w.bulk(name);
            w.int(count);
        });
    }
    ctx.client.subs.active = true;
    publish_counts(ctx);
    Ok(())
}

/// Pushes an unsubscribe confirmation (kept under `CLIENT REPLY OFF|SKIP`,
/// like a subscribe confirmation).
fn unsubscribed_reply(ctx: &mut Ctx<'_>, kind: Kind, name: Option<&[u8]>) {
    let count = ctx.client.subs.reply_count(kind) as i64;
    ctx.out.message(|w| {
        w.push(3);
        w.bulk(reply_kind(kind, false));
        match name {
            Some(n) => w.bulk(n),
            None => w.null(),
        }
        w.int(count);
    });
}

fn do_unsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) -> CmdResult {
    if args.len() == 1 {
        let names = ctx.client.subs.names(kind);
        for name in &names {
            ctx.srv.pubsub.unsubscribe(&mut ctx.client.subs, kind, name);
            unsubscribed_reply(ctx, kind, Some(name));
        }
        if names.is_empty() {
            unsubscribed_reply(ctx, kind, None);
        }
    } else {
        for name in args.iter().skip(1) {
            ctx.srv.pubsub.unsubscribe(&mut ctx.client.subs, kind, name);
            unsubscribed_reply(ctx, kind, Some(name));
        }
    }
    let s = &ctx.client.subs;
    if s.count() + s.shard_count() == 0 {
        ctx.client.subs.active = false;
    }
    publish_counts(ctx);
    Ok(())
}

fn subscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    do_subscribe(ctx, args, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    do_subscribe(ctx, args, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    // Inside EXEC a client may not block, and Redis refuses SSUBSCRIBE there.
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    do_subscribe(ctx, args, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Channel)
}

fn punsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Pattern)
}

fn sunsubscribe(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    do_unsubscribe(ctx, args, Kind::Shard)
}

/// Publishes a message, delivering to the calling client itself through its
/// reply buffer; returns the number of receivers.
pub fn deliver(ctx: &mut Ctx<'_>, channel: &[u8], msg: &[u8], shard: bool) -> usize {
    let srv = ctx.srv;
    let limits = || {
        pubsub_limits(
            &srv.config
                .get("client-output-buffer-limit")
                .unwrap_or_default(),
        )
    };
    let me = Some((ctx.client.handle.id, &mut *ctx.out));
    srv.pubsub.publish(channel, msg, shard, &limits, me)
}

fn publish(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (channel, msg) = (arg(args, 1), arg(args, 2));
    let n = deliver(ctx, channel, msg, false);
    ctx.out.int(n as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (channel, msg) = (arg(args, 1), arg(args, 2));
    let n = deliver(ctx, channel, msg, true);
    ctx.out.int(n as i64);
    Ok(())
}

fn arg<'a>(args: &[&'a [u8]], i: usize) -> &'a [u8] {
    args.get(i).copied().unwrap_or_default()
}

fn channel_list(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) -> CmdResult {
    let list = ctx.srv.pubsub.channels(kind, args.get(2).copied());
    ctx.out.array(list.len());
    for c in &list {
        ctx.out.bulk(c);
    }
    Ok(())
}

fn numsub(ctx: &mut Ctx<'_>, args: &[&[u8]], kind: Kind) -> CmdResult {
    let channels = args.get(2..).unwrap_or_default();
    ctx.out.array(channels.len() * 2);
    for c in channels {
        ctx.out.bulk(c);
        ctx.out.int(ctx.srv.pubsub.numsub(kind, c) as i64);
    }
    Ok(())
}

fn pubsub_channels(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    channel_list(ctx, args, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    channel_list(ctx, args, Kind::Shard)
}

fn pubsub_numsub(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    numsub(ctx, args, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    numsub(ctx, args, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Ctx<'_>, _args: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.srv.pubsub.len(Kind::Pattern) as i64);
    Ok(())
}

fn pubsub_help(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    reply_help(
        ctx,
        args,
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}
