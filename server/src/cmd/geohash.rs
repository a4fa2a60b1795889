//! The geohash math of Redis (`geohash.c`, `geohash_helper.c`) as Debian's
//! redis-server 7.0.15 runs it, transcribed step for step so that scores,
//! decoded positions, distances and search areas come out bit for bit as
//! Redis computes them.
//!
//! A position is a 52-bit integer: 26 bits of latitude (over the Web
//! Mercator limits ±85.05112878) interleaved with 26 bits of longitude
//! (over ±180), longitude in the odd bits. Searches cover the area of a
//! shape with the geohash box of the centre and its eight neighbours, at a
//! precision (`step`, bits per coordinate) estimated from the radius.

/// Smallest longitude Redis accepts.
pub const LONG_MIN: f64 = -180.0;
/// Largest longitude Redis accepts.
pub const LONG_MAX: f64 = 180.0;
/// Smallest latitude Redis accepts (the Web Mercator limit).
pub const LAT_MIN: f64 = -85.05112878;
/// Largest latitude Redis accepts (the Web Mercator limit).
pub const LAT_MAX: f64 = 85.05112878;
/// Bits per coordinate of a stored position (52-bit scores).
pub const STEP_MAX: u8 = 26;
/// Redis's Earth radius in meters (quadratic mean radius of WGS-84).
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;

/// Half the circumference of the Web Mercator projection, in meters.
const MERCATOR_MAX: f64 = 20037726.37;
/// Degrees to radians, as Redis's `D_R` (`M_PI / 180.0`).
const D_R: f64 = std::f64::consts::PI / 180.0;

/// A geohash: `step` bits per coordinate, interleaved in `bits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashBits {
    /// The interleaved bits, latitude in the even positions.
    pub bits: u64,
    /// Bits per coordinate.
    pub step: u8,
}

impl HashBits {
    /// Redis's `HASHISZERO`: the marker of a neighbour left out of a search.
    pub fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A closed interval of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower end.
    pub min: f64,
    /// Upper end.
    pub max: f64,
}

impl Range {
    /// Redis's `RANGEISZERO`.
    fn is_zero(self) -> bool {
        self.max == 0.0 && self.min == 0.0
    }
}

/// The longitudes positions are encoded over.
pub const WGS84_LONG: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
/// The latitudes positions are encoded over.
pub const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The rectangle a geohash stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    /// Its longitudes.
    pub longitude: Range,
    /// Its latitudes.
    pub latitude: Range,
}

/// The eight geohashes around one, at the same step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Neighbors {
    /// Above.
    pub north: HashBits,
    /// Below.
    pub south: HashBits,
    /// To the right (wrapping at +180).
    pub east: HashBits,
    /// To the left (wrapping at -180).
    pub west: HashBits,
    /// Above right.
    pub north_east: HashBits,
    /// Above left.
    pub north_west: HashBits,
    /// Below right.
    pub south_east: HashBits,
    /// Below left.
    pub south_west: HashBits,
}

/// Interleaves the low 32 bits of `x` (even positions) and `y` (odd ones).
fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    let mut x = u64::from(xlo);
    let mut y = u64::from(ylo);
    for (shift, mask) in [16u32, 8, 4, 2, 1].into_iter().zip(B.into_iter().rev()) {
        x = (x | (x << shift)) & mask;
        y = (y | (y << shift)) & mask;
    }
    x | (y << 1)
}

/// Undoes [`interleave64`]: the even bits in the low half, the odd ones in
/// the high half.
fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for (shift, mask) in [0u32, 1, 2, 4, 8, 16].into_iter().zip(B) {
        x = (x | (x >> shift)) & mask;
        y = (y | (y >> shift)) & mask;
    }
    x | (y << 32)
}

/// Redis's `geohashEncode`: the geohash of a position at `step` bits per
/// coordinate over the given ranges; `None` for a bad step, empty ranges or
/// a position outside Redis's limits or the ranges.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step > 32 || step == 0 || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let long_offset = (longitude - long_range.min) / (long_range.max - long_range.min) * scale;
    // C converts the non-negative offsets to `uint32_t` by truncation.
    Some(HashBits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// [`encode`] over Redis's limits.
pub fn encode_wgs84(longitude: f64, latitude: f64, step: u8) -> Option<HashBits> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, step)
}

/// Redis's `geohashDecode`: the rectangle of a geohash over the ranges.
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_zero() || lat_range.is_zero() || long_range.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    // Redis keeps each half in a `uint32_t` and adds 1 in that type.
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let cells = 1u64.checked_shl(u32::from(hash.step)).unwrap_or(0) as f64;
    let at = |i: u32| f64::from(i) * 1.0 / cells;
    Some(Area {
        latitude: Range {
            min: lat_range.min + at(ilato) * lat_scale,
            max: lat_range.min + at(ilato.wrapping_add(1)) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + at(ilono) * long_scale,
            max: long_range.min + at(ilono.wrapping_add(1)) * long_scale,
        },
    })
}

/// Redis's `geohashDecodeToLongLatWGS84`: the centre of a geohash's
/// rectangle, clamped to Redis's limits, as `(longitude, latitude)`.
pub fn decode_to_long_lat(hash: HashBits) -> Option<(f64, f64)> {
    let area = decode(WGS84_LONG, WGS84_LAT, hash)?;
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// C's `(uint64_t)score` as gcc compiles it on x86-64: truncation below
/// 2^63 through a signed conversion (so -1.0 gives all ones), the value
/// less 2^63 with the top bit flipped above, and the "integer indefinite"
/// value for what does not fit. Redis casts any sorted-set score this way
/// before decoding it, so scores not written by GEOADD decode as there.
pub fn score_to_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9223372036854775808.0;
    const INDEFINITE: u64 = 1 << 63;
    let cvttsd2si = |d: f64| -> u64 {
        if d.is_nan() || !(-TWO_63..TWO_63).contains(&d) {
            INDEFINITE
        } else {
            d as i64 as u64
        }
    };
    if score >= TWO_63 {
        cvttsd2si(score - TWO_63) ^ INDEFINITE
    } else {
        cvttsd2si(score)
    }
}

/// Redis's `decodeGeohash`: the position a sorted-set score stands for.
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    decode_to_long_lat(HashBits {
        bits: score_to_bits(score),
        step: STEP_MAX,
    })
}

/// Redis's `geohashAlign52Bits`: the hash as a 52-bit score prefix.
pub fn align_52bits(hash: HashBits) -> u64 {
    let shift = 52u32.saturating_sub(u32::from(hash.step) * 2);
    hash.bits.checked_shl(shift).unwrap_or(0)
}

/// Redis's `geohash_move_x`: one cell east (`d > 0`) or west, wrapping.
fn move_x(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaaaaaaaaaaaaaau64.checked_shr(shift).unwrap_or(0);
    hash.bits = x | y;
}

/// Redis's `geohash_move_y`: one cell north (`d > 0`) or south, wrapping.
fn move_y(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let shift = 64 - u32::from(hash.step) * 2;
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64.checked_shr(shift).unwrap_or(0);
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555555555555555u64.checked_shr(shift).unwrap_or(0);
    hash.bits = x | y;
}

/// Redis's `geohashNeighbors`.
pub fn neighbors(hash: HashBits) -> Neighbors {
    let moved = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: moved(1, 0),
        west: moved(-1, 0),
        south: moved(0, -1),
        north: moved(0, 1),
        north_west: moved(-1, 1),
        north_east: moved(1, 1),
        south_east: moved(1, -1),
        south_west: moved(-1, -1),
    }
}

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// Redis's `geohashGetLatDistance`: the distance in meters along a
/// meridian between two latitudes in degrees.
pub fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Redis's `geohashGetDistance`: the haversine great-circle distance in
/// meters between two positions given in degrees. On one meridian (the
/// longitude term is 0) it is [`lat_distance`], as in the redis-server
/// 7.0.15 this must match (the full formula differs there in the last bit).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// Redis's `geohashEstimateStepsByRadius`: the step whose cells are about
/// as large as the search radius, coarser towards the poles.
pub fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range_meters = range_meters;
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The figure a search covers (Redis's `GeoShape` without its centre).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    /// `BYRADIUS`: a circle of this radius, in the unit.
    Circle(f64),
    /// `BYBOX`: a rectangle of this width and height, in the unit.
    Rectangle {
        /// East-west size.
        width: f64,
        /// North-south size.
        height: f64,
    },
}

/// A search area: a figure around a centre, its sizes in a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Centre longitude.
    pub lon: f64,
    /// Centre latitude.
    pub lat: f64,
    /// Meters per unit of the figure's sizes.
    pub conversion: f64,
    /// Circle or rectangle.
    pub figure: Figure,
}

/// The boxes a search reads (Redis's `GeoHashRadius`): the centre's
/// geohash and its neighbours, those the search does not need zeroed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchAreas {
    /// The box holding the centre.
    pub hash: HashBits,
    /// The boxes around it.
    pub neighbors: Neighbors,
}

impl SearchAreas {
    /// The nine boxes in the order Redis reads them.
    pub fn in_search_order(&self) -> [HashBits; 9] {
        let n = &self.neighbors;
        [
            self.hash,
            n.north,
            n.south,
            n.east,
            n.west,
            n.north_east,
            n.north_west,
            n.south_east,
            n.south_west,
        ]
    }
}

/// Redis's `geohashBoundingBox`: `[min lon, min lat, max lon, max lat]`
/// of the shape.
pub fn bounding_box(shape: &Shape) -> [f64; 4] {
    let (half_height, half_width) = match shape.figure {
        Figure::Circle(r) => (r, r),
        Figure::Rectangle { width, height } => (height / 2.0, width / 2.0),
    };
    let height = shape.conversion * half_height;
    let width = shape.conversion * half_width;
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(shape.lat + lat_delta).cos());
    let long_delta_bottom =
        rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(shape.lat - lat_delta).cos());
    let long_delta = if shape.lat < 0.0 {
        long_delta_bottom
    } else {
        long_delta_top
    };
    [
        shape.lon - long_delta,
        shape.lat - lat_delta,
        shape.lon + long_delta,
        shape.lat + lat_delta,
    ]
}

/// Redis's `geohashCalculateAreasByShapeWGS84`: the boxes to read for a
/// search, at a step fine enough for the shape and no finer than needed.
pub fn areas_by_shape(shape: &Shape) -> SearchAreas {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let radius_meters = match shape.figure {
        Figure::Circle(r) => r,
        Figure::Rectangle { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, shape.lat);
    let at_step = |steps: u8| {
        let hash = encode_wgs84(shape.lon, shape.lat, steps).unwrap_or_default();
        (hash, neighbors(hash), decode(WGS84_LONG, WGS84_LAT, hash))
    };
    let (mut hash, mut around, mut area) = at_step(steps);
    let area_of = |h: HashBits| decode(WGS84_LONG, WGS84_LAT, h);
    // Whether the neighbours reach past the shape on every side.
    let short = area_of(around.north).is_some_and(|a| a.latitude.max < max_lat)
        || area_of(around.south).is_some_and(|a| a.latitude.min > min_lat)
        || area_of(around.east).is_some_and(|a| a.longitude.max < max_lon)
        || area_of(around.west).is_some_and(|a| a.longitude.min > min_lon);
    if steps > 1 && short {
        steps -= 1;
        (hash, around, area) = at_step(steps);
    }
    if let (true, Some(area)) = (steps >= 2, area) {
        let zero = HashBits::default();
        if area.latitude.min < min_lat {
            around.south = zero;
            around.south_west = zero;
            around.south_east = zero;
        }
        if area.latitude.max > max_lat {
            around.north = zero;
            around.north_east = zero;
            around.north_west = zero;
        }
        if area.longitude.min < min_lon {
            around.west = zero;
            around.south_west = zero;
            around.north_west = zero;
        }
        if area.longitude.max > max_lon {
            around.east = zero;
            around.south_east = zero;
            around.north_east = zero;
        }
    }
    SearchAreas {
        hash,
        neighbors: around,
    }
}

/// Redis's `scoresOfGeoHashBox`: the scores `[min, max)` of the positions
/// inside a box.
pub fn score_range_of_box(hash: HashBits) -> (u64, u64) {
    let min = align_52bits(hash);
    let next = HashBits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    };
    (min, align_52bits(next))
}

/// Redis's `geoWithinShape`: for a position inside the shape, the position
/// and its distance in meters from the centre.
pub fn within_shape(shape: &Shape, score: f64) -> Option<(f64, f64, f64)> {
    let (lon, lat) = decode_score(score)?;
    let dist = match shape.figure {
        Figure::Circle(radius) => {
            let d = distance(shape.lon, shape.lat, lon, lat);
            (d <= radius * shape.conversion).then_some(d)?
        }
        Figure::Rectangle { width, height } => {
            // Redis's `geohashGetDistanceIfInRectangle`: the north-south
            // distance first, then the east-west one along the point's
            // latitude.
            let (width_m, height_m) = (width * shape.conversion, height * shape.conversion);
            if lat_distance(lat, shape.lat) > height_m / 2.0 {
                return None;
            }
            if distance(lon, lat, shape.lon, lat) > width_m / 2.0 {
                return None;
            }
            distance(shape.lon, shape.lat, lon, lat)
        }
    };
    Some((lon, lat, dist))
}

/// The 11-character standard geohash GEOHASH replies with for a stored
/// score: the position re-encoded over latitudes ±90, 5 bits a character,
/// the eleventh character `0` (52 bits fill only ten and a bit).
/// `None` where Redis would print an uninitialised hash (positions beyond
/// the Web Mercator latitudes, which GEOADD cannot store).
pub fn standard_geohash(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score)?;
    let standard_lat = Range {
        min: -90.0,
        max: 90.0,
    };
    let hash = encode(WGS84_LONG, standard_lat, lon, lat, 26)?;
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().take(10).enumerate() {
        let idx = (hash.bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET.get(idx as usize).copied().unwrap_or(b'0');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score_of(lon: f64, lat: f64) -> f64 {
        align_52bits(encode_wgs84(lon, lat, STEP_MAX).expect("a value")) as f64
    }

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            let sep = deinterleave64(interleave64(x, y));
            assert_eq!((sep as u32, (sep >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn scores_match_redis() {
        // GEOADD k 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
        // then ZSCORE on redis-server 7.0.15.
        assert_eq!(score_of(13.361389, 38.115556), 3479099956230698.0);
        assert_eq!(score_of(15.087269, 37.502669), 3479447370796909.0);
    }

    #[test]
    fn decode_is_within_a_cell_of_the_input() {
        let cell_lon = 360.0 / f64::from(1u32 << 26);
        let cell_lat = (LAT_MAX - LAT_MIN) / f64::from(1u32 << 26);
        for (lon, lat) in [
            (0.0, 0.0),
            (-180.0, LAT_MIN),
            (179.999999, LAT_MAX - 1e-9),
            (13.361389, 38.115556),
            (-122.27652, 37.805186),
        ] {
            let (dlon, dlat) = decode_score(score_of(lon, lat)).expect("a value");
            assert!((dlon - lon).abs() <= cell_lon, "{lon} -> {dlon}");
            assert!((dlat - lat).abs() <= cell_lat, "{lat} -> {dlat}");
            // Encoding the decoded centre gives the same cell back.
            assert_eq!(score_of(dlon, dlat), score_of(lon, lat));
        }
    }

    #[test]
    fn decoded_positions_match_redis() {
        // GEOPOS of Palermo on redis-server 7.0.15:
        // 13.36138933897018433 38.11555639549629859 (%.17Lf of these).
        let (lon, lat) = decode_score(3479099956230698.0).expect("a value");
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
    }

    #[test]
    fn out_of_range_is_refused() {
        assert_eq!(encode_wgs84(180.000001, 0.0, STEP_MAX), None);
        assert_eq!(encode_wgs84(0.0, 85.06, STEP_MAX), None);
        assert_eq!(encode_wgs84(0.0, 0.0, 0), None);
        assert!(encode_wgs84(180.0, LAT_MAX, STEP_MAX).is_some());
    }

    #[test]
    fn scores_cast_like_gcc() {
        assert_eq!(score_to_bits(-1.0), u64::MAX);
        assert_eq!(score_to_bits(2.5), 2);
        assert_eq!(score_to_bits(f64::INFINITY), 0);
        assert_eq!(score_to_bits(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(score_to_bits(1e300), 0);
        // ZADD w -1 neg; GEOPOS w neg on redis-server 7.0.15: 180 85.0511287799999991.
        assert_eq!(decode_score(-1.0), Some((LONG_MAX, LAT_MAX)));
    }

    #[test]
    fn distance_matches_redis() {
        // GEODIST Palermo Catania on redis-server 7.0.15: 166274.1516 (m).
        let (a, b) = (
            decode_score(3479099956230698.0).expect("a value"),
            decode_score(3479447370796909.0).expect("a value"),
        );
        assert_eq!(
            format!("{:.4}", distance(a.0, a.1, b.0, b.1)),
            "166274.1516"
        );
        assert_eq!(distance(10.0, 20.0, 10.0, 20.0), 0.0);
        // On one meridian: GEOSEARCHSTORE ... STOREDIST from (180, -3.968)
        // to a member at (180, -0.00419116143697096) on redis-server 7.0.15
        // stores 440879.7910206666 (the haversine formula: ...654).
        let d = distance(180.0, -3.968, 180.0, -0.00419116143697096);
        assert_eq!(crate::resp::writer::format_double(d), "440879.7910206666");
    }

    #[test]
    fn neighbours_wrap_at_the_antimeridian() {
        let west_edge = encode_wgs84(-180.0, 0.0, 10).expect("a value");
        let east_edge = encode_wgs84(179.99, 0.0, 10).expect("a value");
        assert_eq!(neighbors(west_edge).west, east_edge);
        assert_eq!(neighbors(east_edge).east, west_edge);
        let n = neighbors(west_edge);
        assert_eq!(neighbors(n.west).east, west_edge);
        assert_eq!(neighbors(n.north).south, west_edge);
    }

    #[test]
    fn neighbours_at_the_latitude_limits() {
        // North of the top row wraps to the bottom row, as in Redis.
        let top = encode_wgs84(0.0, LAT_MAX - 1e-9, 8).expect("a value");
        let bottom = encode_wgs84(0.0, LAT_MIN, 8).expect("a value");
        // The limit itself is cell 2^step, one past the top row: Redis's
        // offset of exactly 1.0 carries into the next bit pair.
        assert_eq!(
            encode_wgs84(0.0, LAT_MAX, 8).expect("a value").bits >> 16,
            1
        );
        assert_eq!(neighbors(top).north, bottom);
        assert_eq!(neighbors(bottom).south, top);
        let area = decode(WGS84_LONG, WGS84_LAT, neighbors(top).south).expect("a value");
        assert!(area.latitude.max < LAT_MAX);
    }

    #[test]
    fn steps_follow_the_radius() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(f64::INFINITY, 0.0), 1);
        assert!(estimate_steps_by_radius(1000.0, 0.0) > estimate_steps_by_radius(1e6, 0.0));
        assert_eq!(
            estimate_steps_by_radius(1000.0, 81.0) + 2,
            estimate_steps_by_radius(1000.0, 0.0)
        );
    }

    #[test]
    fn search_areas_cover_the_circle() {
        let shape = Shape {
            lon: 15.0,
            lat: 37.0,
            conversion: 1000.0,
            figure: Figure::Circle(200.0),
        };
        let areas = areas_by_shape(&shape);
        let boxes = areas.in_search_order();
        for (lon, lat) in [(13.361389, 38.115556), (15.087269, 37.502669)] {
            let s = score_of(lon, lat) as u64;
            assert!(boxes.iter().filter(|h| !h.is_zero()).any(|&h| {
                let (min, max) = score_range_of_box(h);
                (min..max).contains(&s)
            }));
        }
    }

    #[test]
    fn standard_geohash_matches_redis() {
        // GEOHASH Palermo on redis-server 7.0.15.
        assert_eq!(
            &standard_geohash(3479099956230698.0).expect("a value"),
            b"sqc8b49rny0"
        );
    }
}
