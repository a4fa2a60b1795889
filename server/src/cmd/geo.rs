//! GEO commands, transcribed from Redis 7.0's `geo.c`: same order of
//! checks, same error texts, same replies in RESP2 and RESP3.
//!
//! A GEO key is a sorted set whose scores are 52-bit geohashes (see
//! [`super::geohash`]): GEOADD hands its members to ZADD, and the other
//! commands read the set through the sorted-set helpers of
//! [`super::zsets`].

use amber_storage::types::zset::{ScoreRange, ZSetValue};

use super::args::{self, is, is_c, nth};
use super::error::{CmdError, CmdResult};
use super::geohash::{self, Figure, Shape, LAT_MAX, LAT_MIN, LONG_MAX, LONG_MIN, STEP_MAX};
use super::zsets;
use super::{Ctx, Handler};
use crate::blocking;
use crate::resp::{Protocol, ReplyWriter};

mod sort;
use sort::{merge_sort, pqsort};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[
    ("geoadd", geoadd),
    ("geodist", geodist),
    ("geohash", geohash_cmd),
    ("geopos", geopos),
    ("georadius", georadius),
    ("georadius_ro", georadius_ro),
    ("georadiusbymember", georadiusbymember),
    ("georadiusbymember_ro", georadiusbymember_ro),
    ("geosearch", geosearch),
    ("geosearchstore", geosearchstore),
];

const COULD_NOT_DECODE: &str = "could not decode requested zset member";

/// Redis's `getDoubleFromObjectOrReply`: `msg` (or the generic text) when
/// the argument is not a number.
fn double_arg(a: &[u8], msg: Option<&str>) -> Result<f64, CmdError> {
    args::parse_score(a).ok_or_else(|| msg.map_or(CmdError::NotFloat, CmdError::err))
}

/// Redis's `extractLongLatOrReply`: a longitude and a latitude within
/// Redis's limits.
fn long_lat_arg(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let lon = double_arg(lon, None)?;
    let lat = double_arg(lat, None)?;
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CmdError::err(format!(
            "invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Redis's `extractUnitOrReply`: meters per unit.
fn unit_arg(u: &[u8]) -> Result<f64, CmdError> {
    if is_c(u, "m") {
        Ok(1.0)
    } else if is_c(u, "km") {
        Ok(1000.0)
    } else if is_c(u, "ft") {
        Ok(0.3048)
    } else if is_c(u, "mi") {
        Ok(1609.34)
    } else {
        Err(CmdError::err(
            "unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// Redis's `extractDistanceOrReply`: a radius and its unit's meters.
fn distance_arg(radius: &[u8], unit: &[u8]) -> Result<(f64, f64), CmdError> {
    let r = double_arg(radius, Some("need numeric radius"))?;
    if r < 0.0 {
        return Err(CmdError::err("radius cannot be negative"));
    }
    Ok((r, unit_arg(unit)?))
}

/// Redis's `extractBoxOrReply`: width, height and their unit's meters.
fn box_arg(width: &[u8], height: &[u8], unit: &[u8]) -> Result<(f64, f64, f64), CmdError> {
    let w = double_arg(width, Some("need numeric width"))?;
    let h = double_arg(height, Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::err("height or width cannot be negative"));
    }
    Ok((w, h, unit_arg(unit)?))
}

/// The position of `member` (Redis's `longLatFromMember`).
fn member_position(z: &ZSetValue, member: &[u8]) -> Option<(f64, f64)> {
    geohash::decode_score(z.score(member)?)
}

/// `%.17Lf` of a coordinate with trailing zeros removed, as Redis's
/// `ld2string(LD_STR_HUMAN)` prints it. A `double` widens to a `long
/// double` exactly, so this is the exact decimal expansion of `v` rounded
/// to 17 places, which is what Rust's fixed-precision formatting gives.
fn human_coordinate(v: f64) -> String {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// Redis's `addReplyHumanLongDouble`: a bulk string in RESP2, a double in
/// RESP3.
fn reply_coordinate(out: &mut ReplyWriter, v: f64) {
    let text = human_coordinate(v);
    match out.proto {
        Protocol::Resp2 => out.bulk(text.as_bytes()),
        Protocol::Resp3 => {
            out.raw(b",");
            out.raw(text.as_bytes());
            out.raw(b"\r\n");
        }
    }
}

/// A distance with four decimals as Redis 7.0.15 prints it
/// (`fixedpoint_d2string(d, 4)`, not `%.4f`): `d * 10^4` rounded to an
/// integer by `llrint` (ties to even, on the already rounded product, so
/// 0.50855 may print as 0.5086 where `%.4f` prints 0.5085), then placed
/// around the point. A value `llrint` cannot convert gives `LLONG_MIN`.
fn fixed4(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let scaled = (d * 10000.0).round_ties_even();
    const TWO_63: f64 = 9223372036854775808.0;
    let v = if scaled.is_nan() || !(-TWO_63..TWO_63).contains(&scaled) {
        i64::MIN
    } else {
        scaled as i64
    };
    let sign = if v < 0 { "-" } else { "" };
    let m = v.unsigned_abs();
    format!("{sign}{}.{:04}", m / 10000, m % 10000)
}

/// Redis's `addReplyDoubleDistance`: [`fixed4`] as a bulk string.
fn reply_distance(out: &mut ReplyWriter, d: f64) {
    out.bulk(fixed4(d).as_bytes());
}

// ---------------------------------------------------------------- GEOADD

/// `GEOADD key [NX|XX] [CH] lon lat member ...`: checks the options and
/// coordinates, then runs ZADD with each position's 52-bit geohash as the
/// score, as Redis does (so the reply and the `zadd` event are ZADD's).
fn geoadd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (mut nx, mut xx) = (false, false);
    let mut longidx = 2;
    while longidx < args.len() {
        let opt = nth(args, longidx);
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if !is(opt, "ch") {
            break;
        }
        longidx += 1;
    }
    let options = args.get(1..longidx).unwrap_or_default();
    let triples = args.get(longidx..).unwrap_or_default();
    if triples.len() % 3 != 0 || (xx && nx) {
        return Err(CmdError::Syntax);
    }
    let mut scores = Vec::with_capacity(triples.len() / 3);
    for t in triples.chunks_exact(3) {
        let (lon, lat) = long_lat_arg(nth(t, 0), nth(t, 1))?;
        let hash = geohash::encode_wgs84(lon, lat, STEP_MAX).unwrap_or_default();
        scores.push(geohash::align_52bits(hash).to_string());
    }
    let mut zadd_args: Vec<&[u8]> = Vec::with_capacity(1 + options.len() + scores.len() * 2);
    zadd_args.push(b"zadd");
    zadd_args.extend_from_slice(options);
    for (score, t) in scores.iter().zip(triples.chunks_exact(3)) {
        zadd_args.push(score.as_bytes());
        zadd_args.push(nth(t, 2));
    }
    zsets::zadd(ctx, &zadd_args)
}

// ---------------------------------------------------------------- GEOPOS, GEOHASH, GEODIST

fn geopos(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let mut g = ctx.lock_one(key)?;
    let z = zsets::read(ctx, &mut g, key)?;
    let positions: Vec<Option<(f64, f64)>> = members
        .iter()
        .map(|m| z.and_then(|z| member_position(z, m)))
        .collect();
    drop(g);
    ctx.out.array(positions.len());
    for p in positions {
        match p {
            Some((lon, lat)) => {
                ctx.out.array(2);
                reply_coordinate(ctx.out, lon);
                reply_coordinate(ctx.out, lat);
            }
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

fn geohash_cmd(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let key = nth(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let mut g = ctx.lock_one(key)?;
    let z = zsets::read(ctx, &mut g, key)?;
    let hashes: Vec<Option<[u8; 11]>> = members
        .iter()
        .map(|m| geohash::standard_geohash(z?.score(m)?))
        .collect();
    drop(g);
    ctx.out.array(hashes.len());
    for h in hashes {
        match h {
            Some(h) => ctx.out.bulk(&h),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn geodist(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let to_meter = match args.len() {
        5 => unit_arg(nth(args, 4))?,
        n if n > 5 => return Err(CmdError::Syntax),
        _ => 1.0,
    };
    let key = nth(args, 1);
    let mut g = ctx.lock_one(key)?;
    let dist = zsets::read(ctx, &mut g, key)?.and_then(|z| {
        let (lon1, lat1) = member_position(z, nth(args, 2))?;
        let (lon2, lat2) = member_position(z, nth(args, 3))?;
        Some(geohash::distance(lon1, lat1, lon2, lat2) / to_meter)
    });
    drop(g);
    match dist {
        Some(d) => reply_distance(ctx.out, d),
        None => ctx.out.null(),
    }
    Ok(())
}

// ---------------------------------------------------------------- searches

/// Where a search command takes its centre from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// GEORADIUS: longitude, latitude, radius and unit after the key.
    Coords,
    /// GEORADIUSBYMEMBER: member, radius and unit after the key.
    Member,
    /// GEOSEARCH(STORE): FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX options.
    Options,
}

/// Which store options a search command takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    /// None (the `_RO` variants and GEOSEARCH).
    Forbidden,
    /// `STORE key` and `STOREDIST key` (GEORADIUS, GEORADIUSBYMEMBER).
    Keyed,
    /// The destination is the first argument; `STOREDIST` is a flag
    /// (GEOSEARCHSTORE).
    Destination,
}

/// One search command (Redis's `georadiusGeneric` flags).
#[derive(Debug, Clone, Copy)]
struct Variant {
    origin: Origin,
    store: Store,
}

impl Variant {
    /// Index of the source key.
    fn src_index(self) -> usize {
        if self.store == Store::Destination {
            2
        } else {
            1
        }
    }

    /// The keyspace event of a stored result.
    fn store_event(self) -> &'static str {
        if self.origin == Origin::Options {
            "geosearchstore"
        } else {
            "georadiusstore"
        }
    }
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sort {
    /// The order the boxes were read in.
    Unsorted,
    /// Nearest first.
    Asc,
    /// Farthest first.
    Desc,
}

/// A parsed search.
#[derive(Debug, Clone)]
struct Query<'a> {
    shape: Shape,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    sort: Sort,
    any: bool,
    /// Most results to return; 0 for all.
    count: i64,
    /// Where to store the result instead of replying.
    store: Option<&'a [u8]>,
    /// Store distances rather than geohashes as scores.
    storedist: bool,
}

/// A position found by a search (Redis's `geoPoint`).
#[derive(Debug, Clone, PartialEq)]
struct GeoPoint {
    member: Vec<u8>,
    lon: f64,
    lat: f64,
    /// Meters from the centre.
    dist: f64,
    score: f64,
}

/// The STORE/STOREDIST key a GEORADIUS call names, found by walking its
/// options the way the parser does (COUNT, STORE and STOREDIST take a
/// value, the last store option wins), so the destination can be locked
/// together with the source before anything is parsed.
fn planned_store_key<'a>(args: &[&'a [u8]], variant: Variant) -> Option<&'a [u8]> {
    match variant.store {
        Store::Forbidden => None,
        Store::Destination => Some(nth(args, 1)),
        Store::Keyed => {
            let base = if variant.origin == Origin::Coords {
                6
            } else {
                5
            };
            let mut key = None;
            let mut i = base;
            while i < args.len() {
                let a = nth(args, i);
                let has_value = i + 1 < args.len();
                if has_value && (is_c(a, "store") || is_c(a, "storedist")) {
                    key = args.get(i + 1).copied();
                    i += 1;
                } else if has_value && is_c(a, "count") {
                    i += 1;
                }
                i += 1;
            }
            key
        }
    }
}

/// Redis's argument handling of `georadiusGeneric`, in its order: the
/// fixed arguments of GEORADIUS(BYMEMBER), then the options left to right,
/// then the checks of their combination. `z` is the source (absent: a
/// FROMMEMBER or GEORADIUSBYMEMBER member is not looked up).
fn parse_search<'a>(
    args: &[&'a [u8]],
    variant: Variant,
    z: Option<&ZSetValue>,
) -> Result<Query<'a>, CmdError> {
    let mut q = Query {
        shape: Shape {
            lon: 0.0,
            lat: 0.0,
            conversion: 0.0,
            figure: Figure::Circle(0.0),
        },
        withdist: false,
        withhash: false,
        withcoord: false,
        sort: Sort::Unsorted,
        any: false,
        count: 0,
        store: None,
        storedist: false,
    };
    let base = match variant.origin {
        Origin::Coords => {
            (q.shape.lon, q.shape.lat) = long_lat_arg(nth(args, 2), nth(args, 3))?;
            let (radius, conversion) = distance_arg(nth(args, 4), nth(args, 5))?;
            q.shape.figure = Figure::Circle(radius);
            q.shape.conversion = conversion;
            6
        }
        Origin::Member => {
            if let Some(z) = z {
                (q.shape.lon, q.shape.lat) =
                    member_position(z, nth(args, 2)).ok_or(CmdError::err(COULD_NOT_DECODE))?;
                let (radius, conversion) = distance_arg(nth(args, 3), nth(args, 4))?;
                q.shape.figure = Figure::Circle(radius);
                q.shape.conversion = conversion;
            }
            5
        }
        Origin::Options if variant.store == Store::Destination => {
            q.store = Some(nth(args, 1));
            3
        }
        Origin::Options => 2,
    };
    let by_options = variant.origin == Origin::Options;
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let at = |k: usize| nth(args, base + i + k);
        let a = at(0);
        if is_c(a, "withdist") {
            q.withdist = true;
        } else if is_c(a, "withhash") {
            q.withhash = true;
        } else if is_c(a, "withcoord") {
            q.withcoord = true;
        } else if is_c(a, "any") {
            q.any = true;
        } else if is_c(a, "asc") {
            q.sort = Sort::Asc;
        } else if is_c(a, "desc") {
            q.sort = Sort::Desc;
        } else if is_c(a, "count") && i + 1 < remaining {
            q.count = args::int(at(1))?;
            if q.count <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            i += 1;
        } else if (is_c(a, "store") || is_c(a, "storedist"))
            && i + 1 < remaining
            && variant.store == Store::Keyed
        {
            q.store = Some(at(1));
            q.storedist = is_c(a, "storedist");
            i += 1;
        } else if is_c(a, "storedist") && variant.store == Store::Destination {
            q.storedist = true;
        } else if is_c(a, "frommember") && i + 1 < remaining && by_options && !fromloc {
            if let Some(z) = z {
                (q.shape.lon, q.shape.lat) =
                    member_position(z, at(1)).ok_or(CmdError::err(COULD_NOT_DECODE))?;
            }
            frommember = true;
            i += 1;
        } else if is_c(a, "fromlonlat") && i + 2 < remaining && by_options && !frommember {
            (q.shape.lon, q.shape.lat) = long_lat_arg(at(1), at(2))?;
            fromloc = true;
            i += 2;
        } else if is_c(a, "byradius") && i + 2 < remaining && by_options && !bybox {
            let (radius, conversion) = distance_arg(at(1), at(2))?;
            q.shape.figure = Figure::Circle(radius);
            q.shape.conversion = conversion;
            byradius = true;
            i += 2;
        } else if is_c(a, "bybox") && i + 3 < remaining && by_options && !byradius {
            let (width, height, conversion) = box_arg(at(1), at(2), at(3))?;
            q.shape.figure = Figure::Rectangle { width, height };
            q.shape.conversion = conversion;
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store.is_some() && (q.withdist || q.withhash || q.withcoord) {
        let who = if variant.store == Store::Destination {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CmdError::err(format!(
            "{who} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(args::c_str(nth(args, 0)));
    if by_options && !(frommember || fromloc) {
        return Err(CmdError::err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if by_options && !(byradius || bybox) {
        return Err(CmdError::err(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    Ok(q)
}

/// Redis's `geoGetPointsInRange`: appends the members scored in
/// `[min, max)` that lie inside the shape, stopping at `limit` results
/// (0: no limit).
fn points_in_range(
    z: &ZSetValue,
    (min, max): (u64, u64),
    shape: &Shape,
    found: &mut Vec<GeoPoint>,
    limit: usize,
) {
    let range = ScoreRange {
        min: min as f64,
        max: max as f64,
        minex: false,
        maxex: true,
    };
    let Some(first) = z.first_in_score_range(&range) else {
        return;
    };
    for (member, score) in z.iter_from(first, false) {
        if !range.lte_max(score) {
            break;
        }
        if let Some((lon, lat, dist)) = geohash::within_shape(shape, score) {
            found.push(GeoPoint {
                member: member.to_vec(),
                lon,
                lat,
                dist,
                score,
            });
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
    }
}

/// Redis's `membersOfAllNeighbors`: the members inside the shape from the
/// centre box and its neighbours, skipping zeroed boxes and a box equal to
/// the one read just before it.
fn members_in_shape(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<GeoPoint> {
    let boxes = geohash::areas_by_shape(shape).in_search_order();
    let mut found = Vec::new();
    // Redis compares with the previous box only once one other than the
    // centre (index 0) has been read.
    let mut last_read = 0;
    for (i, &hash) in boxes.iter().enumerate() {
        if hash.is_zero() {
            continue;
        }
        if last_read != 0 && boxes.get(last_read) == Some(&hash) {
            continue;
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
        points_in_range(
            z,
            geohash::score_range_of_box(hash),
            shape,
            &mut found,
            limit,
        );
        last_read = i;
    }
    found
}

/// Redis's `sort_gp_asc`: C's three-way comparison of the distances
/// (NaN compares as smaller either way, as there).
fn cmp_asc(a: &GeoPoint, b: &GeoPoint) -> i32 {
    if a.dist > b.dist {
        1
    } else if a.dist == b.dist {
        0
    } else {
        -1
    }
}

/// Orders the points by distance as Redis does: all of them with glibc's
/// `qsort` ([`merge_sort`]) when every point is returned, else only the
/// first `returned` with Redis's partial quicksort [`pqsort`], whose order
/// of equal distances is its own.
fn sort_points(points: &mut Vec<GeoPoint>, sort: Sort, returned: usize) {
    let cmp: fn(&GeoPoint, &GeoPoint) -> i32 = match sort {
        Sort::Unsorted => return,
        Sort::Asc => cmp_asc,
        Sort::Desc => |a, b| -cmp_asc(a, b),
    };
    if returned >= points.len() {
        merge_sort(points, cmp);
    } else if let Some(last) = returned.checked_sub(1) {
        let n = points.len();
        pqsort(points, 0, n, cmp, 0, last);
    }
}

/// Writes the found points as Redis replies with them.
fn reply_points(out: &mut ReplyWriter, q: &Query<'_>, points: &[GeoPoint]) {
    let options = usize::from(q.withdist) + usize::from(q.withhash) + usize::from(q.withcoord);
    out.array(points.len());
    for p in points {
        if options > 0 {
            out.array(options + 1);
        }
        out.bulk(&p.member);
        if q.withdist {
            reply_distance(out, p.dist / q.shape.conversion);
        }
        if q.withhash {
            out.int(p.score as i64);
        }
        if q.withcoord {
            out.array(2);
            reply_coordinate(out, p.lon);
            reply_coordinate(out, p.lat);
        }
    }
}

/// The sorted set a STORE option writes: members scored by geohash, or by
/// distance in the query's unit with STOREDIST.
fn stored_result(ctx: &Ctx<'_>, q: &Query<'_>, points: &[GeoPoint]) -> ZSetValue {
    let mut z = ZSetValue::new_skiplist();
    for p in points {
        let score = if q.storedist {
            p.dist / q.shape.conversion
        } else {
            p.score
        };
        z.insert(&p.member, score);
    }
    z.fit_encoding(zsets::limits(ctx));
    z
}

/// Redis's `georadiusGeneric`: every search command.
fn search_generic(ctx: &mut Ctx<'_>, args: &[&[u8]], variant: Variant) -> CmdResult {
    let src = nth(args, variant.src_index());
    let mut keys = vec![src];
    keys.extend(planned_store_key(args, variant));
    let mut g = blocking::lock_for_push(ctx, &keys)?;
    let z = zsets::read(ctx, &mut g, src)?;
    let q = parse_search(args, variant, z)?;
    let found = z.map(|z| {
        let limit = if q.any {
            usize::try_from(q.count).unwrap_or(usize::MAX)
        } else {
            0
        };
        let mut points = members_in_shape(z, &q.shape, limit);
        let sort = match q.sort {
            Sort::Unsorted if q.count != 0 && !q.any => Sort::Asc,
            s => s,
        };
        let returned = match usize::try_from(q.count) {
            Ok(count) if count > 0 => count.min(points.len()),
            _ => points.len(),
        };
        sort_points(&mut points, sort, returned);
        points.truncate(returned);
        points
    });
    match q.store {
        Some(dst) => {
            let result = match &found {
                Some(points) => stored_result(ctx, &q, points),
                None => ZSetValue::new(),
            };
            let n = zsets::store_result(ctx, &mut g, dst, result, variant.store_event())?;
            g.finish(ctx);
            ctx.out.int(n as i64);
        }
        None => {
            g.finish(ctx);
            reply_points(ctx.out, &q, found.as_deref().unwrap_or_default());
        }
    }
    Ok(())
}

fn georadius(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let variant = Variant {
        origin: Origin::Coords,
        store: Store::Keyed,
    };
    search_generic(ctx, args, variant)
}

fn georadius_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let variant = Variant {
        origin: Origin::Coords,
        store: Store::Forbidden,
    };
    search_generic(ctx, args, variant)
}

fn georadiusbymember(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let variant = Variant {
        origin: Origin::Member,
        store: Store::Keyed,
    };
    search_generic(ctx, args, variant)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let variant = Variant {
        origin: Origin::Member,
        store: Store::Forbidden,
    };
    search_generic(ctx, args, variant)
}

fn geosearch(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let variant = Variant {
        origin: Origin::Options,
        store: Store::Forbidden,
    };
    search_generic(ctx, args, variant)
}

fn geosearchstore(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let variant = Variant {
        origin: Origin::Options,
        store: Store::Destination,
    };
    search_generic(ctx, args, variant)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn coordinates_print_like_ld2string() {
        // GEOPOS on redis-server 7.0.15.
        assert_eq!(human_coordinate(13.361389338970184), "13.36138933897018433");
        assert_eq!(human_coordinate(180.0), "180");
        assert_eq!(human_coordinate(-0.0), "0");
        assert_eq!(human_coordinate(0.5), "0.5");
        assert_eq!(human_coordinate(LAT_MAX), "85.0511287799999991");
    }

    #[test]
    fn distances_print_like_fixedpoint_d2string() {
        // GEOSEARCH ... WITHDIST on redis-server 7.0.15 (`%.4f` gives .5085).
        assert_eq!(fixed4(31_564_574.508_55), "31564574.5086");
        assert_eq!(fixed4(0.0), "0.0000");
        assert_eq!(fixed4(-0.0), "0.0000");
        assert_eq!(fixed4(0.00049), "0.0005");
        assert_eq!(fixed4(0.00004), "0.0000");
        assert_eq!(fixed4(1.5), "1.5000");
        assert_eq!(fixed4(166274.15156960033), "166274.1516");
        assert_eq!(fixed4(-2.25), "-2.2500");
        assert_eq!(fixed4(f64::NAN), "-922337203685477.5808");
    }

    #[test]
    fn coordinate_errors_use_redis_texts() {
        let e = long_lat_arg(b"200", b"10").expect_err("an error");
        assert_eq!(
            e.text(),
            "ERR invalid longitude,latitude pair 200.000000,10.000000"
        );
        assert!(matches!(long_lat_arg(b"x", b"1"), Err(CmdError::NotFloat)));
        assert!(long_lat_arg(b"-180", b"-85.05112878").is_ok());
        assert_eq!(unit_arg(b"KM").expect("a value"), 1000.0);
        assert!(unit_arg(b"yd").is_err());
    }

    #[test]
    fn store_key_is_found_like_the_parser_walks() {
        let v = Variant {
            origin: Origin::Coords,
            store: Store::Keyed,
        };
        let args = a("georadius k 1 2 3 km count 5 store a storedist b");
        assert_eq!(planned_store_key(&args, v), Some(&b"b"[..]));
        // `count store` reads "store" as COUNT's value.
        let args = a("georadius k 1 2 3 km count store x");
        assert_eq!(planned_store_key(&args, v), None);
        let args = a("georadius k 1 2 3 km store");
        assert_eq!(planned_store_key(&args, v), None);
        let ro = Variant {
            origin: Origin::Coords,
            store: Store::Forbidden,
        };
        let args = a("georadius_ro k 1 2 3 km store a");
        assert_eq!(planned_store_key(&args, ro), None);
    }

    #[test]
    fn search_options_are_checked_in_redis_order() {
        let v = Variant {
            origin: Origin::Options,
            store: Store::Forbidden,
        };
        let err = |s: &str| {
            parse_search(&a(s), v, None)
                .expect_err("an error")
                .text()
                .into_owned()
        };
        assert_eq!(
            err("geosearch k byradius 1 km"),
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch"
        );
        assert_eq!(
            err("GeoSearch k fromlonlat 1 2"),
            "ERR exactly one of BYRADIUS and BYBOX can be specified for GeoSearch"
        );
        assert_eq!(
            err("geosearch k fromlonlat 1 2 byradius 1 km any"),
            "ERR the ANY argument requires COUNT argument"
        );
        assert_eq!(
            err("geosearch k frommember a fromlonlat 1 2 byradius 1 km"),
            "ERR syntax error"
        );
        assert_eq!(
            err("geosearch k fromlonlat 1 2 byradius 1 km count 0"),
            "ERR COUNT must be > 0"
        );
        let q = parse_search(&a("geosearch k fromlonlat 1 2 bybox 4 6 ft desc"), v, None)
            .expect("a value");
        assert_eq!(q.sort, Sort::Desc);
        assert_eq!(
            q.shape.figure,
            Figure::Rectangle {
                width: 4.0,
                height: 6.0
            }
        );
        assert_eq!(q.shape.conversion, 0.3048);
    }

    #[test]
    fn searches_find_what_is_inside() {
        let mut z = ZSetValue::new_skiplist();
        for (m, lon, lat) in [
            ("palermo", 13.361389, 38.115556),
            ("catania", 15.087269, 37.502669),
            ("far", -70.0, -30.0),
        ] {
            let h = geohash::encode_wgs84(lon, lat, STEP_MAX).expect("a value");
            z.insert(m.as_bytes(), geohash::align_52bits(h) as f64);
        }
        let shape = Shape {
            lon: 15.0,
            lat: 37.0,
            conversion: 1000.0,
            figure: Figure::Circle(200.0),
        };
        let mut points = members_in_shape(&z, &shape, 0);
        let n = points.len();
        sort_points(&mut points, Sort::Asc, n);
        let names: Vec<&[u8]> = points.iter().map(|p| p.member.as_slice()).collect();
        assert_eq!(names, [&b"catania"[..], b"palermo"]);
        // GEOSEARCH ... WITHDIST on redis-server 7.0.15: 56.4413, 190.4424 km.
        assert_eq!(format!("{:.4}", points[0].dist / 1000.0), "56.4413");
        assert_eq!(format!("{:.4}", points[1].dist / 1000.0), "190.4424");
        assert_eq!(members_in_shape(&z, &shape, 1).len(), 1);
        let small = Shape {
            figure: Figure::Circle(10.0),
            ..shape
        };
        assert!(members_in_shape(&z, &small, 0).is_empty());
    }
}
