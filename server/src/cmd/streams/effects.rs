//! The form in which Redis 7.0 propagates a consumer group's changes
//! (`streamPropagateXCLAIM`, `streamPropagateGroupID`,
//! `streamPropagateConsumerCreation` in `t_stream.c`): a delivery or a
//! claim as an idempotent `XCLAIM ... FORCE JUSTID LASTID`, a moved group
//! cursor as `XGROUP SETID ... ENTRIESREAD`, so a replica's PEL,
//! consumers, last-delivered ID and read counter are the master's.

use amber_storage::types::stream::StreamId;
use amber_storage::types::StreamValue;

/// One command for the stream.
pub type Op = Vec<Vec<u8>>;

/// `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID
/// LASTID last` for the pending entry `id` (its owner, delivery time and
/// count as they are now, the group's last ID). `id_text` is the ID as
/// the command named it (Redis propagates its argument). `None` when the
/// entry is not pending.
pub fn xclaim(
    s: &StreamValue,
    key: &[u8],
    group: &[u8],
    id: StreamId,
    id_text: &[u8],
) -> Option<Op> {
    let grp = s.group(group)?;
    let p = grp.pel.get(&id)?;
    Some(vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group.to_vec(),
        p.consumer.to_vec(),
        b"0".to_vec(),
        id_text.to_vec(),
        b"TIME".to_vec(),
        p.delivery_time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        p.delivery_count.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        grp.last_id.to_string().into_bytes(),
    ])
}

/// `XGROUP SETID key group last ENTRIESREAD n`: the group's cursor as it
/// is now.
pub fn set_id(s: &StreamValue, key: &[u8], group: &[u8]) -> Option<Op> {
    let grp = s.group(group)?;
    Some(vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group.to_vec(),
        grp.last_id.to_string().into_bytes(),
        b"ENTRIESREAD".to_vec(),
        grp.entries_read.to_string().into_bytes(),
    ])
}

/// `XGROUP CREATECONSUMER key group consumer`.
pub fn create_consumer(key: &[u8], group: &[u8], consumer: &[u8]) -> Op {
    vec![
        b"XGROUP".to_vec(),
        b"CREATECONSUMER".to_vec(),
        key.to_vec(),
        group.to_vec(),
        consumer.to_vec(),
    ]
}

/// Who read, and how: a consumer group's read of one key.
pub struct GroupReadOf<'a> {
    /// The stream's key.
    pub key: &'a [u8],
    /// The group.
    pub group: &'a [u8],
    /// The reading consumer.
    pub consumer: &'a [u8],
    /// `NOACK`: no pending entries.
    pub noack: bool,
    /// The read created the consumer.
    pub created: bool,
}

/// The effects of a group's read of new entries `ids` (Redis's
/// `streamReplyWithRange` with a group): with `NOACK`, the consumer's
/// creation and the group's new cursor; otherwise one `XCLAIM` per
/// delivered entry, each with the group's last ID as it stood after that
/// entry (the cursor moves with them). `last_before` is the group's last
/// ID before the read.
pub fn group_read(
    s: &StreamValue,
    read: &GroupReadOf<'_>,
    last_before: StreamId,
    ids: &[StreamId],
) -> Vec<Op> {
    let (key, group) = (read.key, read.group);
    let mut ops = Vec::new();
    if read.noack {
        if read.created {
            ops.push(create_consumer(key, group, read.consumer));
        }
        if ids.iter().any(|id| *id > last_before) {
            ops.extend(set_id(s, key, group));
        }
        return ops;
    }
    let mut last = last_before;
    for id in ids {
        last = last.max(*id);
        if let Some(mut op) = xclaim(s, key, group, *id, id.to_string().as_bytes()) {
            if let Some(l) = op.last_mut() {
                *l = last.to_string().into_bytes();
            }
            ops.push(op);
        }
    }
    ops
}
