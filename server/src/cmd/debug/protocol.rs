//! `DEBUG PROTOCOL <type>`: one sample reply of each RESP type, as Redis
//! 7.0's `debug.c`, in the client's protocol (RESP2 gets each type's RESP2
//! form). Client libraries' RESP3 test suites decode these.

use crate::cmd::args::is;
use crate::cmd::error::{CmdError, CmdResult};
use crate::cmd::Ctx;
use crate::resp::Protocol;

/// Redis's error for an unknown type name.
const WRONG_TYPE_NAME: &str = "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false";

/// Writes the sample reply of type `name`.
pub fn reply(ctx: &mut Ctx<'_>, name: &[u8]) -> CmdResult {
    let resp3 = ctx.out.proto == Protocol::Resp3;
    let out = &mut *ctx.out;
    if is(name, "string") {
        out.bulk(b"Hello World");
    } else if is(name, "integer") {
        out.int(12345);
    } else if is(name, "double") {
        // Redis's sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        out.double(3.141);
    } else if is(name, "bignum") {
        const BIGNUM: &[u8] = b"1234567999999999999999999999999999999";
        if resp3 {
            out.raw(b"(");
            out.raw(BIGNUM);
            out.raw(b"\r\n");
        } else {
            out.bulk(BIGNUM);
        }
    } else if is(name, "null") {
        out.null();
    } else if is(name, "array") {
        out.array(3);
        (0..3).for_each(|j| out.int(j));
    } else if is(name, "set") {
        out.set(3);
        (0..3).for_each(|j| out.int(j));
    } else if is(name, "map") {
        out.map(3);
        for j in 0..3 {
            out.int(j);
            out.boolean(j == 1);
        }
    } else if is(name, "attrib") {
        // RESP2 has no attributes: only the reply that follows one.
        if resp3 {
            out.raw(b"|1\r\n");
            out.bulk(b"key-popularity");
            out.array(2);
            out.bulk(b"key:123");
            out.int(90);
        }
        out.bulk(b"Some real reply following the attribute");
    } else if is(name, "push") {
        if !resp3 {
            return Err(CmdError::err("RESP2 is not supported by this command"));
        }
        // A push, not a reply: `CLIENT REPLY OFF` keeps it (Redis's
        // `CLIENT_PUSHING`). A real reply follows so that a client waiting
        // for one goes on.
        out.message(|w| {
            w.push(2);
            w.bulk(b"server-cpu-usage");
            w.int(42);
        });
        out.bulk(b"Some real reply following the push reply");
    } else if is(name, "true") {
        out.boolean(true);
    } else if is(name, "false") {
        out.boolean(false);
    } else if is(name, "verbatim") {
        out.verbatim("txt", b"This is a verbatim\nstring");
    } else {
        return Err(CmdError::err(WRONG_TYPE_NAME));
    }
    Ok(())
}
