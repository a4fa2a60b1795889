//! LOLWUT: Redis 7.0's computer art (`lolwut.c`). `LOLWUT [VERSION v]
//! [...]` draws Redis 5's *Schotter* ([`schotter`]) for version 5, Redis
//! 6's skyline ([`skyline`]) for version 6, and otherwise (Redis 7.0 has no
//! drawing of its own, so also plain `LOLWUT`) only `Redis ver. 7.0.15`.
//! The drawings are random as Redis's are (`rand()`, seeded at start-up):
//! only their shape and texts can be compared with Redis.

pub mod canvas;
pub mod schotter;
pub mod skyline;

use rand::Rng;

use super::args::{self, is, nth};
use super::connection::REDIS_VERSION;
use super::error::CmdResult;
use super::{Ctx, Handler};

/// This family's commands.
pub const COMMANDS: &[(&str, Handler)] = &[("lolwut", lolwut)];

/// C's `rand()` as glibc's: a number in `0..=RAND_MAX` (2^31 - 1).
pub(crate) fn c_rand() -> i32 {
    (rand::thread_rng().gen::<u32>() >> 1) as i32
}

/// `LOLWUT [VERSION v] [version's own arguments]` (`lolwutCommand`).
fn lolwut(ctx: &mut Ctx<'_>, args: &[&[u8]]) -> CmdResult {
    let (version, own) = if args.len() >= 3 && is(nth(args, 1), "VERSION") {
        let v = args::int(nth(args, 2))?;
        // `%u.0.0` of the version as an unsigned int.
        (
            format!("{}.0.0", v as u32),
            args.get(3..).unwrap_or_default(),
        )
    } else {
        (REDIS_VERSION.to_string(), args.get(1..).unwrap_or_default())
    };
    let v = version.as_bytes();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    let text = if (at(0) == b'5' && at(1) == b'.' && at(2) != b'9')
        || (at(0) == b'4' && at(1) == b'.' && at(2) == b'9')
    {
        schotter::command(own)?
    } else if (at(0) == b'6' && at(1) == b'.' && at(2) != b'9')
        || (at(0) == b'5' && at(1) == b'.' && at(2) == b'9')
    {
        skyline::command(own)?
    } else {
        format!("Redis ver. {REDIS_VERSION}\n").into_bytes()
    };
    ctx.out.verbatim("txt", &text);
    Ok(())
}

/// The version-specific argument `i` as a C `long` (`default` when
/// absent), clamped to `min..=max`.
pub(crate) fn long_arg(
    own: &[&[u8]],
    i: usize,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, super::CmdError> {
    let v = match own.get(i) {
        Some(a) => args::int(a)?,
        None => default,
    };
    Ok(v.clamp(min, max))
}
