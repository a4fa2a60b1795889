//! XREAD XREADGROUP, and serving them when they blocked.

use amber_storage::types::stream::{StreamId, ENTRIES_READ_UNKNOWN};
use amber_storage::types::StreamValue;
use amber_storage::{Guard, Value};

use super::effects;
use super::id;
use super::reply_entry;
use crate::blocking::{self, BlockedOp, Events, Outcome};
use crate::cmd::args::{self, is_c, nth};
use crate::cmd::error::{CmdError, CmdResult};
use crate::cmd::Ctx;
use crate::notify;
use crate::resp::{Protocol, ReplyWriter};

/// `COUNT` of a blocked read that gave none (`XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]
pub(super) fn xread(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    read(ctx, args, false)
}

/// XREADGROUP GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id [id ...]
pub(super) fn xreadgroup(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    read(ctx, args, true)
}

/// A consumer group read: the group, the consumer, `NOACK`.
#[derive(Debug, Clone)]
struct GroupRead {
    group: Vec<u8>,
    consumer: Vec<u8>,
    noack: bool,
}

/// What a read asks for a key: entries after an ID, new entries for a
/// group (`>`), or a consumer's history after an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    After(StreamId),
    New,
}

fn read(ctx: &mut Ctx<'_>, args: &[&[u8]], xreadgroup: bool) -> CmdResult {
    let mut block: Option<Option<std::time::Instant>> = None;
    let mut count: usize = 0;
    let mut streams_at = 0;
    let mut group: Option<GroupRead> = None;
    let mut noack = false;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = nth(args, i);
        if is_c(o, "BLOCK") && more > 0 {
            if ctx.client.in_script {
                return Err(CmdError::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    args::text(nth(args, 0))
                )));
            }
            i += 1;
            block = Some(blocking::parse_deadline_ms(nth(args, i))?);
        } else if is_c(o, "COUNT") && more > 0 {
            i += 1;
            count = usize::try_from(args::int(nth(args, i))?.max(0)).unwrap_or(usize::MAX);
        } else if is_c(o, "STREAMS") && more > 0 {
            streams_at = i + 1;
            if !(args.len() - streams_at).is_multiple_of(2) {
                // Redis 7.0.15 words it so for XREADGROUP too.
                return Err(CmdError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if is_c(o, "GROUP") && more >= 2 {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some(GroupRead {
                group: nth(args, i + 1).to_vec(),
                consumer: nth(args, i + 2).to_vec(),
                noack: false,
            });
            i += 2;
        } else if is_c(o, "NOACK") {
            if !xreadgroup {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    if xreadgroup && group.is_none() {
        return Err(CmdError::err("Missing GROUP option for XREADGROUP"));
    }
    if let Some(gr) = group.as_mut() {
        gr.noack = noack;
    }
    let rest = args.get(streams_at..).unwrap_or_default();
    let (keys, ids) = rest.split_at(rest.len() / 2);
    let mut g = ctx.lock(keys.iter().copied())?;
    // Resolve every key's ID (and group) before serving any.
    let mut wants = Vec::with_capacity(keys.len());
    for (key, raw) in keys.iter().zip(ids) {
        let found = g.get(key);
        ctx.srv.stats.hit(found.is_some());
        let s = match found {
            None => None,
            Some(Value::Stream(s)) => Some(s),
            Some(_) => return Err(CmdError::WrongType),
        };
        if let Some(gr) = &group {
            if s.and_then(|s| s.group(&gr.group)).is_none() {
                return Err(CmdError::msg(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    args::text(args::c_str(key)),
                    args::text(args::c_str(&gr.group))
                )));
            }
        }
        let want = match *raw {
            b"$" if xreadgroup => {
                return Err(CmdError::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ))
            }
            b"$" => Want::After(s.map(|s| s.last_id()).unwrap_or_default()),
            b">" if !xreadgroup => {
                return Err(CmdError::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ))
            }
            b">" => Want::New,
            other => match id::parse_strict(other, 0)? {
                // The largest ID is how Redis marks `>`.
                StreamId::MAX if xreadgroup => Want::New,
                id => Want::After(id),
            },
        };
        wants.push(want);
    }
    // Serve what can be served now.
    let now = g.now_ms();
    let proto = ctx.out.proto;
    let mut body = ReplyWriter::default();
    body.proto = proto;
    let mut served = 0;
    let mut events: Vec<&[u8]> = Vec::new();
    let collecting = crate::replication::propagate::collecting();
    let mut effects = Vec::new();
    for (key, want) in keys.iter().zip(&wants) {
        let Some(Value::Stream(s)) = g.peek(key) else {
            continue;
        };
        let mut start = None;
        let mut history = false;
        if let Some(gr) = &group {
            let last = s.group(&gr.group).map(|x| x.last_id).unwrap_or_default();
            match want {
                Want::After(id) => {
                    start = Some(*id);
                    history = true;
                }
                Want::New => {
                    if s.last().is_some_and(|(max, _)| max > last) {
                        start = Some(last);
                    }
                }
            }
        } else if let Want::After(id) = want {
            if s.last().is_some_and(|(max, _)| max > *id) {
                start = Some(*id);
            }
        }
        let Some(gr) = &group else {
            // A plain XREAD only reads.
            let Some(start) = start else {
                continue;
            };
            served += 1;
            if proto == Protocol::Resp2 {
                body.array(2);
            }
            body.bulk(key);
            reply_entries(&mut body, s, start, count);
            continue;
        };
        // Redis creates (and marks seen) the consumer only when it serves.
        let Some(start) = start else {
            continue;
        };
        let s = match g.get_mut(key) {
            Some(Value::Stream(s)) => s,
            _ => continue,
        };
        let last_before = s.group(&gr.group).map(|x| x.last_id).unwrap_or_default();
        let created = touch_consumer(s, gr, now);
        if created {
            events.push(key);
        }
        served += 1;
        if proto == Protocol::Resp2 {
            body.array(2);
        }
        body.bulk(key);
        let from = start.next().unwrap_or(StreamId::MAX);
        if history {
            reply_history(&mut body, s, gr, from, count, now);
        } else {
            let ids = reply_entries(&mut body, s, start, count);
            deliver(s, gr, &ids, now);
            if collecting {
                effects.extend(read_effects(s, key, gr, created, last_before, &ids));
            }
        }
        // Redis does not signal a group read to WATCH.
        g.unsignaled(key);
    }
    if group.is_some() {
        // A group read goes to replicas as its effects, never as itself
        // (a consumer's history read changes nothing they see).
        crate::replication::propagate::instead(ctx.db(), std::mem::take(&mut effects));
    }
    if group.is_some() && served == 0 {
        for key in keys {
            // A read that served nothing changed nothing.
            g.unchanged(key);
        }
    }
    if served > 0 {
        match proto {
            Protocol::Resp2 => ctx.out.array(served),
            Protocol::Resp3 => ctx.out.map(served),
        }
        ctx.out.raw(body.as_bytes());
        drop(g);
        for key in events {
            ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
        }
        return Ok(());
    }
    match block {
        Some(deadline) if !ctx.client.block.blocking_denied() => {
            let op = ReadOp {
                keys: keys
                    .iter()
                    .zip(&wants)
                    .map(|(k, w)| {
                        let after = match w {
                            Want::After(id) => *id,
                            Want::New => StreamId::MAX,
                        };
                        (k.to_vec(), after)
                    })
                    .collect(),
                group: group.clone(),
                count: if count == 0 {
                    BLOCKED_DEFAULT_COUNT
                } else {
                    count
                },
            };
            blocking::block(ctx, &g, keys, deadline, Box::new(op));
        }
        _ => ctx.out.null_array(),
    }
    drop(g);
    for key in events {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// What replicas receive for a group's read of the new entries `ids`
/// (see [`effects::group_read`]).
fn read_effects(
    s: &StreamValue,
    key: &[u8],
    gr: &GroupRead,
    created: bool,
    last_before: StreamId,
    ids: &[StreamId],
) -> Vec<effects::Op> {
    let read = effects::GroupReadOf {
        key,
        group: &gr.group,
        consumer: &gr.consumer,
        noack: gr.noack,
        created,
    };
    effects::group_read(s, &read, last_before, ids)
}

/// Creates the reading consumer if needed and marks it seen; whether it
/// was created.
fn touch_consumer(s: &mut StreamValue, gr: &GroupRead, now: u64) -> bool {
    s.touch_consumer(&gr.group, &gr.consumer, now) == Some(true)
}

/// Writes the entries after `after` (at most `count`, 0: all) and
/// returns their IDs.
fn reply_entries(
    out: &mut ReplyWriter,
    s: &StreamValue,
    after: StreamId,
    count: usize,
) -> Vec<StreamId> {
    let take = if count == 0 { usize::MAX } else { count };
    let Some(from) = after.next() else {
        out.array(0);
        return Vec::new();
    };
    let items: Vec<_> = s.range(from, StreamId::MAX).take(take).collect();
    out.array(items.len());
    for (id, f) in &items {
        reply_entry(out, *id, f);
    }
    items.into_iter().map(|(id, _)| id).collect()
}

/// Records a group's read of `ids`: moves its last ID and read counter
/// and (unless `NOACK`) the deliveries, as `streamReplyWithRange` does: an
/// entry already pending (the group's ID was set back) moves to this
/// consumer with its delivery count reset to 1.
fn deliver(s: &mut StreamValue, gr: &GroupRead, ids: &[StreamId], now: u64) {
    let Some(group) = s.group(&gr.group) else {
        return;
    };
    let (mut last, mut read) = (group.last_id, group.entries_read);
    let moved = ids.iter().any(|id| *id > last);
    for id in ids {
        if *id > last {
            if read != ENTRIES_READ_UNKNOWN && !s.range_has_tombstones(*id, StreamId::MAX) {
                read += 1;
            } else if s.entries_added() > 0 {
                read = s.estimate_distance(*id);
            }
            last = *id;
        }
    }
    if moved {
        s.set_group_cursor(&gr.group, last, read);
    }
    if !gr.noack {
        for id in ids {
            s.set_pending(&gr.group, *id, &gr.consumer, now, 1);
        }
    }
}

/// The consumer's pending entries from `from` on (`XREADGROUP` with an
/// ID): a deleted entry comes as `[id, nil]`; the others count a delivery.
fn reply_history(
    out: &mut ReplyWriter,
    s: &mut StreamValue,
    gr: &GroupRead,
    from: StreamId,
    count: usize,
    now: u64,
) {
    let take = if count == 0 { usize::MAX } else { count };
    let ids: Vec<StreamId> = s
        .group(&gr.group)
        .and_then(|g| g.consumers.get(gr.consumer.as_slice()))
        .map(|c| c.pel.range(from..).take(take).copied().collect())
        .unwrap_or_default();
    out.array(ids.len());
    let mut delivered = Vec::new();
    for id in &ids {
        match s.get(*id) {
            Some(f) => {
                reply_entry(out, *id, f);
                delivered.push(*id);
            }
            None => {
                out.array(2);
                out.bulk(id.to_string().as_bytes());
                out.null_array();
            }
        }
    }
    for id in delivered {
        let count = s
            .group(&gr.group)
            .and_then(|g| g.pel.get(&id))
            .map(|p| p.delivery_count.saturating_add(1));
        if let Some(count) = count {
            s.set_pending(&gr.group, id, &gr.consumer, now, count);
        }
    }
}

/// A blocked `XREAD`/`XREADGROUP`: per key, the ID it waits to pass
/// (`StreamId::MAX` for a group's `>`, resolved when served).
struct ReadOp {
    keys: Vec<(Vec<u8>, StreamId)>,
    group: Option<GroupRead>,
    count: usize,
}

impl BlockedOp for ReadOp {
    fn waits_on_group(&self) -> bool {
        self.group.is_some()
    }

    fn serve(
        &self,
        g: &mut Guard<'_>,
        key: &[u8],
        out: &mut ReplyWriter,
        events: &mut dyn Events,
    ) -> Outcome {
        let Some(&(_, after)) = self.keys.iter().find(|(k, _)| k.as_slice() == key) else {
            return Outcome::Skip;
        };
        let now = g.now_ms();
        let gt = match g.peek(key) {
            Some(Value::Stream(s)) => match &self.group {
                Some(gr) => match s.group(&gr.group) {
                    Some(grp) => grp.last_id,
                    None => {
                        out.error("NOGROUP the consumer group this client was blocked on no longer exists");
                        return Outcome::Served {
                            pushed: None,
                            popped: 0,
                        };
                    }
                },
                None => after,
            },
            Some(_) => return Outcome::Skip,
            None => return Outcome::Stop,
        };
        let header = |out: &mut ReplyWriter| {
            match out.proto {
                Protocol::Resp2 => {
                    out.array(1);
                    out.array(2);
                }
                Protocol::Resp3 => out.map(1),
            }
            out.bulk(key);
        };
        let Some(gr) = &self.group else {
            let Some(Value::Stream(s)) = g.peek(key) else {
                return Outcome::Stop;
            };
            if s.last_id() <= gt {
                return Outcome::Skip;
            }
            header(out);
            reply_entries(out, s, gt, self.count);
            return Outcome::Served {
                pushed: None,
                popped: 0,
            };
        };
        let Some(Value::Stream(s)) = g.get_mut(key) else {
            return Outcome::Stop;
        };
        if s.last_id() <= gt {
            g.unchanged(key);
            return Outcome::Skip;
        }
        let created = touch_consumer(s, gr, now);
        if created {
            events.notify(notify::STREAM, "xgroup-createconsumer", key);
        }
        header(out);
        let ids = reply_entries(out, s, gt, self.count);
        deliver(s, gr, &ids, now);
        if crate::replication::propagate::collecting() {
            let ops = read_effects(s, key, gr, created, gt, &ids);
            crate::replication::propagate::served(g.db(), ops);
        }
        g.unsignaled(key);
        Outcome::Served {
            pushed: None,
            popped: 0,
        }
    }
}
