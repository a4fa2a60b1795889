//! The output limit of replies whose size the client's count decides rather
//! than the data: `HRANDFIELD`, `SRANDMEMBER` and `ZRANDMEMBER` with a
//! negative count (that many random picks, repetition allowed).
//!
//! Redis 7.0 builds such a reply whole in the client's output buffer and
//! stops only when the buffer passes the hard limit of
//! `client-output-buffer-limit normal`: the client is then closed
//! (`CLIENT_CLOSE_ASAP`, checked between picks) and receives neither this
//! reply nor any other still pending. With no limit (the default) Redis grows
//! the buffer until memory runs out: `SRANDMEMBER s -1000000000000` asks for
//! terabytes. Amber closes the client the same way at the configured hard
//! limit, or at [`DEFAULT_LIMIT`] when none is set, and when even the
//! smallest possible reply cannot fit it closes the client before building
//! anything, so no count ever allocates a huge reply.

use super::Ctx;
use crate::resp::ReplyWriter;

/// The limit when `client-output-buffer-limit normal` sets no hard limit:
/// Redis's largest bulk string (`proto-max-bulk-len`'s default).
pub const DEFAULT_LIMIT: usize = 512 << 20;

/// The fewest bytes one pick can take: an empty bulk string (`$0\r\n\r\n`).
pub const MIN_PICK: u64 = 6;

/// The fewest bytes one pick with its value or score can take: two empty
/// bulk strings in RESP2; in RESP3 a pair header (`*2\r\n`), an empty bulk
/// and the shortest double (`,0\r\n`) or bulk.
pub const MIN_PICK_WITH_VALUE: u64 = 12;

/// The limit a count-sized reply must stay under.
#[derive(Debug, Clone, Copy)]
pub struct ReplyLimit {
    limit: usize,
}

impl ReplyLimit {
    /// The hard limit of the client class `normal`, or [`DEFAULT_LIMIT`].
    pub fn of(ctx: &Ctx<'_>) -> ReplyLimit {
        let value = ctx
            .srv
            .config
            .get("client-output-buffer-limit")
            .unwrap_or_default();
        let (hard, _, _) = crate::pubsub::class_limits(&value, "normal");
        let limit = match usize::try_from(hard) {
            Ok(0) | Err(_) => DEFAULT_LIMIT,
            Ok(n) => n,
        };
        ReplyLimit { limit }
    }

    /// Whether `picks` picks of at least `min_pick` bytes each may fit
    /// after what `out` already holds.
    pub fn may_fit(&self, out: &ReplyWriter, picks: u64, min_pick: u64) -> bool {
        let room = self.limit.saturating_sub(out.len()) as u64;
        picks.saturating_mul(min_pick) <= room
    }

    /// Whether `out` has passed the limit.
    pub fn exceeded(&self, out: &ReplyWriter) -> bool {
        out.len() > self.limit
    }
}

/// Closes the client as Redis does when its output passes the limit: every
/// pending reply is dropped, no further command of its pipeline runs, and
/// the connection closes once the batch ends.
pub fn close_client(ctx: &mut Ctx<'_>) {
    tracing::warn!(
        client = ctx.client.handle.id,
        "client scheduled to be closed ASAP for overcoming of output buffer limits"
    );
    ctx.out.clear();
    ctx.client.output_overflow = true;
}
