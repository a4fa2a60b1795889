//! Streams in the RDB codec: `RDB_TYPE_STREAM_LISTPACKS_2` as Redis 7.0's
//! `rdbSaveObject` writes it, and `RDB_TYPE_STREAM_LISTPACKS` / `_2` as
//! `rdbLoadObject` reads them (7.2's `_3`, with consumer active times, is
//! refused as `Bad data format`, as 7.0 refuses it).
//!
//! # Layout
//!
//! ```text
//! node count (len), then per node:
//!     master ID (string of 16 bytes: ms, seq, big-endian)
//!     the node's listpack (string)
//! length (len), last ID (len ms, len seq)
//! _2 only: first ID, max deleted entry ID (len ms, len seq each),
//!          entries added (len)
//! group count (len), then per group:
//!     name (string), last ID (len ms, len seq)
//!     _2 only: entries read (len; -1 as 2^64 - 1)
//!     PEL count (len), then per entry: ID (16 raw bytes, big-endian),
//!         delivery time (8 bytes, little-endian ms), delivery count (len)
//!     consumer count (len), then per consumer: name (string),
//!         seen time (8 bytes, little-endian ms),
//!         PEL count (len), then per entry its ID (16 raw bytes)
//! ```
//!
//! A node's listpack (`streamAppendItem`) is its master entry (valid
//! count, deleted count, master field count, the master fields, a 0), then
//! per entry: flags (1 deleted, 2 same fields as the master), the ms and
//! seq differences from the master ID, the field count and the fields
//! unless flagged same-fields, the values, and the entry's element count
//! (its `lp-count`, for walking backwards).
//!
//! # Where bytes differ from Redis
//!
//! Amber frees a deleted entry at once (see `amber_storage`'s stream
//! module), where Redis keeps it in its node flagged deleted until the
//! whole node goes. A node with deleted entries is therefore written
//! without them: its master entry counts its valid entries and 0 deleted,
//! as if Redis had compacted it. Redis loads that node as written (and so
//! does Amber, which rebuilds the node's shape from the listpack), so its
//! contents, IDs and boundaries are kept; only that node's bytes differ,
//! and the tail node, if it had deleted entries, has room for more
//! appends than it had. Everything else is byte for byte Redis 7.0.15's,
//! delivery and seen times included (they are the stored values).

use std::collections::{BTreeMap, BTreeSet};

use amber_storage::types::stream::listpack::{body_int, Node};
use amber_storage::types::stream::{Consumer, Fields, Group, Pending, StreamId};
use amber_storage::types::StreamValue;

use super::kind;
use super::listpack::{self, Listpack};
use super::read::{LoadError, Reader};
use super::write::{len, string};

/// `STREAM_ITEM_FLAG_DELETED`.
const FLAG_DELETED: i64 = 1;
/// `STREAM_ITEM_FLAG_SAMEFIELDS`.
const FLAG_SAMEFIELDS: i64 = 2;
/// Listpack header (total bytes, element count) plus the end byte.
const LISTPACK_OVERHEAD: usize = 7;

/// An ID as Redis's radix trees key it (`streamEncodeID`).
fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn key_id(k: [u8; 16]) -> StreamId {
    let (ms, seq) = k.split_at(8);
    let ms = u64::from_be_bytes(ms.try_into().unwrap_or_default());
    let seq = u64::from_be_bytes(seq.try_into().unwrap_or_default());
    StreamId::new(ms, seq)
}

/// `lpAppendInteger`.
fn push_int(lp: &mut Listpack, v: i64) {
    lp.push(itoa::Buffer::new().format(v).as_bytes());
}

/// `rdbSaveMillisecondTime`.
fn ms_time(out: &mut Vec<u8>, t: u64) {
    out.extend_from_slice(&t.to_le_bytes());
}

/// The listpack Redis builds for a node of these entries (without deleted
/// entries: see the module documentation).
fn node_listpack<'a>(
    master: StreamId,
    node: &Node,
    entries: impl Iterator<Item = (&'a StreamId, &'a Fields)>,
) -> Vec<u8> {
    let mut lp = Listpack::new();
    push_int(&mut lp, node.valid as i64);
    push_int(&mut lp, 0);
    push_int(&mut lp, node.master_fields.len() as i64);
    for f in node.master_fields.iter() {
        lp.push(f);
    }
    push_int(&mut lp, 0);
    for (id, fv) in entries {
        let n = fv.len() / 2;
        let same = n == node.master_fields.len()
            && fv
                .iter()
                .step_by(2)
                .zip(node.master_fields.iter())
                .all(|(a, b)| a == b);
        push_int(&mut lp, if same { FLAG_SAMEFIELDS } else { 0 });
        push_int(&mut lp, id.ms.wrapping_sub(master.ms) as i64);
        push_int(&mut lp, id.seq.wrapping_sub(master.seq) as i64);
        if !same {
            push_int(&mut lp, n as i64);
        }
        for pair in fv.chunks(2) {
            if let [f, v] = pair {
                if !same {
                    lp.push(f);
                }
                lp.push(v);
            }
        }
        let lp_count = if same { n + 3 } else { 2 * n + 4 };
        push_int(&mut lp, lp_count as i64);
    }
    lp.finish()
}

/// `rdbSaveStreamPEL` without the NACK details (a consumer's PEL).
fn id_list<'a>(out: &mut Vec<u8>, ids: impl ExactSizeIterator<Item = &'a StreamId>) {
    len(out, ids.len() as u64);
    for id in ids {
        out.extend_from_slice(&id_key(*id));
    }
}

/// The type byte and the object, as `rdbSaveObject` writes a stream.
pub fn write(out: &mut Vec<u8>, s: &StreamValue, compress: bool) {
    out.push(kind::STREAM_LISTPACKS_2);
    len(out, s.node_count() as u64);
    for (master, node, entries) in s.nodes() {
        string(out, &id_key(master), compress);
        string(out, &node_listpack(master, node, entries), compress);
    }
    len(out, s.len());
    for id in [s.last_id(), s.first_id(), s.max_deleted()] {
        len(out, id.ms);
        len(out, id.seq);
    }
    len(out, s.entries_added());
    len(out, s.groups().len() as u64);
    for (name, g) in s.groups() {
        string(out, name, compress);
        len(out, g.last_id.ms);
        len(out, g.last_id.seq);
        len(out, g.entries_read as u64);
        len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            out.extend_from_slice(&id_key(*id));
            ms_time(out, p.delivery_time);
            len(out, p.delivery_count);
        }
        len(out, g.consumers.len() as u64);
        for (name, c) in &g.consumers {
            string(out, name, compress);
            ms_time(out, c.seen_time);
            id_list(out, c.pel.iter());
        }
    }
}

trait OrBad<T> {
    fn bad(self) -> Result<T, LoadError>;
}

impl<T> OrBad<T> for Option<T> {
    fn bad(self) -> Result<T, LoadError> {
        self.ok_or(LoadError::BadFormat)
    }
}

/// `rdbLoadLen` as a 64-bit number.
fn len_u64(r: &mut Reader<'_>) -> Result<u64, LoadError> {
    match r.len().bad()? {
        super::read::Len::Plain(n) => Ok(n),
        super::read::Len::Encoded(_) => Err(LoadError::BadFormat),
    }
}

fn len_id(r: &mut Reader<'_>) -> Result<StreamId, LoadError> {
    Ok(StreamId::new(len_u64(r)?, len_u64(r)?))
}

fn raw_id(r: &mut Reader<'_>) -> Result<StreamId, LoadError> {
    Ok(key_id(r.array().bad()?))
}

/// An integer element of a stream listpack (`lpGetInteger`: integers may
/// also be stored as canonical decimal strings).
fn int(e: Option<&Vec<u8>>) -> Result<i64, LoadError> {
    std::str::from_utf8(e.bad()?)
        .ok()
        .and_then(|s| s.parse().ok())
        .bad()
}

/// A node's listpack, read back into its shape and its valid entries
/// (every element and count checked against the others, as Redis's deep
/// `streamValidateListpackIntegrity` checks them).
fn read_node(master: StreamId, lp: &[u8]) -> Result<(Node, Vec<(StreamId, Fields)>), LoadError> {
    let els = listpack::elements(lp).bad()?;
    let mut it = els.iter();
    let count = int(it.next())?;
    let deleted = int(it.next())?;
    let nfields = int(it.next())?;
    let mut master_fields = Vec::new();
    for _ in 0..nfields {
        master_fields.push(Box::<[u8]>::from(it.next().bad()?.as_slice()));
    }
    if int(it.next())? != 0 || count < 0 || deleted < 0 || nfields < 0 {
        return Err(LoadError::BadFormat);
    }
    let mut entries = Vec::new();
    let (mut valid_seen, mut deleted_seen) = (0i64, 0i64);
    let mut last = None::<StreamId>;
    while let Some(flags) = it.next() {
        let flags = int(Some(flags))?;
        let ms = master.ms.wrapping_add(int(it.next())? as u64);
        let seq = master.seq.wrapping_add(int(it.next())? as u64);
        let id = StreamId::new(ms, seq);
        if id < master || last.is_some_and(|l| l >= id) {
            return Err(LoadError::BadFormat);
        }
        last = Some(id);
        let same = flags & FLAG_SAMEFIELDS != 0;
        let n = if same {
            master_fields.len()
        } else {
            usize::try_from(int(it.next())?).ok().bad()?
        };
        let mut fv: Vec<Box<[u8]>> = Vec::new();
        for i in 0..n {
            let f = if same {
                master_fields.get(i).bad()?.clone()
            } else {
                Box::from(it.next().bad()?.as_slice())
            };
            fv.push(f);
            fv.push(Box::from(it.next().bad()?.as_slice()));
        }
        let lp_count = if same { n + 3 } else { 2 * n + 4 };
        if usize::try_from(int(it.next())?).ok() != Some(lp_count) || n == 0 {
            return Err(LoadError::BadFormat);
        }
        if flags & FLAG_DELETED != 0 {
            deleted_seen += 1;
        } else {
            valid_seen += 1;
            entries.push((id, fv.into_boxed_slice()));
        }
    }
    if valid_seen != count || deleted_seen != deleted {
        return Err(LoadError::BadFormat);
    }
    // Redis's own size of the node decides when it is full: keep it.
    let body = lp
        .len()
        .saturating_sub(LISTPACK_OVERHEAD + body_int(count) + body_int(deleted));
    let node = Node {
        master_fields: master_fields.into_boxed_slice(),
        last: last.bad()?,
        valid: count as u64,
        deleted: deleted as u64,
        body,
    };
    Ok((node, entries))
}

/// `rdbLoadObject` for a stream of type `t` (`RDB_TYPE_STREAM_LISTPACKS`
/// or `_2`; the type byte already read).
pub fn read(r: &mut Reader<'_>, t: u8) -> Result<StreamValue, LoadError> {
    let v2 = match t {
        kind::STREAM_LISTPACKS => false,
        kind::STREAM_LISTPACKS_2 => true,
        _ => return Err(LoadError::BadFormat),
    };
    let mut nodes = Vec::new();
    let mut total = 0u64;
    for _ in 0..len_u64(r)? {
        let key: [u8; 16] = r.string().bad()?.try_into().ok().bad()?;
        let master = key_id(key);
        let (node, entries) = read_node(master, &r.string().bad()?)?;
        total = total.checked_add(node.valid).bad()?;
        nodes.push((master, node, entries));
    }
    let length = len_u64(r)?;
    let last_id = len_id(r)?;
    let (max_deleted, entries_added) = if v2 {
        // The first ID is derived from the entries in Amber.
        let _first = len_id(r)?;
        (len_id(r)?, len_u64(r)?)
    } else {
        (StreamId::default(), length)
    };
    if length != total {
        return Err(LoadError::BadFormat);
    }
    let s = StreamValue::from_parts(nodes, last_id, max_deleted, entries_added).bad()?;
    let mut groups = BTreeMap::new();
    for _ in 0..len_u64(r)? {
        let name: Box<[u8]> = r.string().bad()?.into();
        let last = len_id(r)?;
        let entries_read = if v2 {
            len_u64(r)? as i64
        } else {
            s.estimate_distance(last)
        };
        let mut g = Group::new(last, entries_read);
        for _ in 0..len_u64(r)? {
            let id = raw_id(r)?;
            let delivery_time = u64::from_le_bytes(r.array().bad()?);
            let delivery_count = len_u64(r)?;
            let p = Pending {
                consumer: Box::default(),
                delivery_time,
                delivery_count,
            };
            if g.pel.insert(id, p).is_some() {
                return Err(LoadError::BadFormat);
            }
        }
        let mut owned = BTreeSet::new();
        for _ in 0..len_u64(r)? {
            let cname: Box<[u8]> = r.string().bad()?.into();
            let seen_time = u64::from_le_bytes(r.array().bad()?);
            let mut pel = BTreeSet::new();
            for _ in 0..len_u64(r)? {
                let id = raw_id(r)?;
                let p = g.pel.get_mut(&id).bad()?;
                if !owned.insert(id) {
                    return Err(LoadError::BadFormat);
                }
                p.consumer = cname.clone();
                pel.insert(id);
            }
            let c = Consumer { seen_time, pel };
            if g.consumers.insert(cname, c).is_some() {
                return Err(LoadError::BadFormat);
            }
        }
        // Amber keeps no pending entry without an owner (Redis refuses
        // them only when sanitizing payloads).
        if owned.len() != g.pel.len() || groups.insert(name, g).is_some() {
            return Err(LoadError::BadFormat);
        }
    }
    s.with_groups(groups).bad()
}

#[cfg(test)]
mod tests {
    use super::*;
    use amber_storage::types::stream::NodeLimits;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn written(s: &StreamValue) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, s, true);
        out
    }

    fn loaded(object: &[u8]) -> Result<StreamValue, LoadError> {
        let mut r = Reader::new(object);
        let t = r.byte().ok_or(LoadError::BadFormat)?;
        read(&mut r, t)
    }

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    // redis-server 7.0.15: `XADD s 1-1 a 1 b 2`, `XADD s 2-0 a 3 b 4`,
    // `XADD s 3-0 c x`, `DUMP s` (without the version and CRC footer).
    const SMALL: &str = "130110000000000000000100000000000000013f3f0000001900030100010201816102816202000102010001000101010201050102010101dfff0203010401050100010201dfff0201018163028178020601ff0303000101000003000a00";

    // `CONFIG SET stream-node-max-entries 2`, `XADD t <i>-0 f v<i> n -70000`
    // for i in 1..=5, `XGROUP CREATE t g 0`, `XREADGROUP GROUP g alice
    // COUNT 2 STREAMS t >`, the same for bob with COUNT 1, `XGROUP CREATE t
    // h $`, `XGROUP CREATECONSUMER t h carol`, `DUMP t`.
    const GROUPS: &str = "13031000000000000000010000000000000000c3313711370000001200020100010201816602816e024009000020010982763103f290eefe0405201a000160100032a0100101ff1000000000000000030000000000000000c3313711370000001200020100010201816602816e024009000020010982763303f290eefe0405201a000160100034a0100101ff100000000000000005000000000000000026260000000c00010100010201816602816e02000102010001000182763503f290eefe040501ff050500010000000502016703000303000000000000000100000000000000001534771da201000001000000000000000200000000000000001534771da201000001000000000000000300000000000000001534771da2010000010205616c6963651534771da201000002000000000000000100000000000000000000000000000002000000000000000003626f621534771da201000001000000000000000300000000000000000168050081ffffffffffffffff0001056361726f6c1534771da2010000000a00";

    // `CONFIG SET stream-node-max-entries 2`, `XADD u <i>-<i> f <i>` for i
    // in 1..=7, `XDEL u 2-2 3-3 6-6`, `DUMP u`: Redis keeps the three
    // deleted entries in their nodes, flagged.
    const DELETED: &str = "1304100000000000000001000000000000000126260000000f0001010101010181660200010201000100010101040103010101010102010401ff100000000000000003000000000000000326260000000f0001010101010181660200010301000100010301040102010101010104010401ff100000000000000005000000000000000526260000000f0001010101010181660200010201000100010501040103010101010106010401ff10000000000000000700000000000000071c1c0000000a00010100010101816602000102010001000107010401ff0407070101060607000a00";

    fn body(hex: &str) -> Vec<u8> {
        let b = unhex(hex);
        b[..b.len() - 2].to_vec()
    }

    #[test]
    fn appended_stream_as_redis() {
        let mut s = StreamValue::new();
        let limits = NodeLimits::default();
        assert!(s.append(id(1, 1), &[b"a", b"1", b"b", b"2"], limits));
        assert!(s.append(id(2, 0), &[b"a", b"3", b"b", b"4"], limits));
        assert!(s.append(id(3, 0), &[b"c", b"x"], limits));
        assert_eq!(written(&s), body(SMALL));
        assert_eq!(loaded(&body(SMALL)), Ok(s));
    }

    #[test]
    fn groups_and_times_read_and_written_as_redis() {
        let s = loaded(&body(GROUPS)).expect("loads");
        assert_eq!((s.len(), s.node_count(), s.entries_added()), (5, 3, 5));
        let g = s.group(b"g").expect("g");
        assert_eq!((g.last_id, g.entries_read, g.pel.len()), (id(3, 0), 3, 3));
        assert_eq!(&*g.pel[&id(3, 0)].consumer, b"bob");
        assert_eq!(g.consumers[&b"alice"[..]].pel.len(), 2);
        let h = s.group(b"h").expect("h");
        assert_eq!((h.entries_read, h.consumers.len()), (-1, 1));
        assert_eq!(written(&s), body(GROUPS));
        // The same nodes as Amber's own appends under the same limit.
        let mut built = StreamValue::new();
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 2,
        };
        for i in 1..=5u64 {
            let v = format!("v{i}");
            built.append(id(i, 0), &[b"f", v.as_bytes(), b"n", b"-70000"], limits);
        }
        let nodes = |s: &StreamValue| {
            s.nodes()
                .map(|(m, n, _)| (m, n.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(nodes(&built), nodes(&s));
    }

    #[test]
    fn deleted_entries_load_and_are_written_compacted() {
        let s = loaded(&body(DELETED)).expect("loads");
        let mut built = StreamValue::new();
        let limits = NodeLimits {
            max_bytes: 4096,
            max_entries: 2,
        };
        for i in 1..=7u64 {
            let v = i.to_string();
            built.append(id(i, i), &[b"f", v.as_bytes()], limits);
        }
        for i in [2, 3, 6] {
            assert!(built.delete(id(i, i)));
        }
        // Amber's model of Redis's nodes, deleted counts and bytes included.
        assert_eq!(s, built);
        let out = written(&s);
        assert!(out.len() < body(DELETED).len());
        let back = loaded(&out).expect("loads");
        assert_eq!(back.range(StreamId::MIN, StreamId::MAX).count(), 4);
        assert_eq!((back.node_count(), back.max_deleted()), (4, id(6, 6)));
        assert_eq!(back.first_id(), id(1, 1));
        assert!(back.nodes().all(|(_, n, _)| n.deleted == 0));
    }

    #[test]
    fn legacy_type_without_counters() {
        // `RDB_TYPE_STREAM_LISTPACKS`: no first ID, max deleted ID or
        // entries added, and no entries-read per group.
        let mut old = body(SMALL);
        old[0] = kind::STREAM_LISTPACKS;
        let n = old.len();
        // Drop `01 01 00 00 03` (first 1-1, max deleted 0-0, added 3).
        old.drain(n - 6..n - 1);
        let s = loaded(&old).expect("loads");
        assert_eq!((s.len(), s.entries_added(), s.last_id()), (3, 3, id(3, 0)));
        let mut v3 = body(SMALL);
        v3[0] = kind::STREAM_LISTPACKS_3;
        assert_eq!(loaded(&v3), Err(LoadError::BadFormat));
    }

    #[test]
    fn inconsistent_streams_are_refused() {
        let good = body(SMALL);
        // The length is not the node's valid count.
        let mut b = good.clone();
        let n = b.len();
        b[n - 9] = 4;
        assert_eq!(loaded(&b), Err(LoadError::BadFormat));
        // A consumer listing an entry its group does not have pending.
        let groups = body(GROUPS);
        let bob = groups
            .windows(4)
            .position(|w| w == b"\x03bob")
            .expect("bob");
        // Name, seen time, PEL count, then the ID 3-0: make it 4-0.
        let ms_low = bob + 4 + 8 + 1 + 7;
        assert_eq!(groups[ms_low], 3);
        let mut b = groups.clone();
        b[ms_low] = 4;
        assert_eq!(loaded(&b), Err(LoadError::BadFormat));
        // A node listpack whose valid count is wrong.
        // (Type, node count, key, listpack length, listpack header.)
        let mut b = good;
        let valid_at = 1 + 1 + 17 + 1 + 6;
        assert_eq!(b[valid_at], 3);
        b[valid_at] = 2;
        assert_eq!(loaded(&b), Err(LoadError::BadFormat));
        // Every truncation fails cleanly.
        for cut in 0..groups.len() {
            assert!(loaded(&groups[..cut]).is_err());
        }
    }
}
