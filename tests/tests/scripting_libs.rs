//! The Lua libraries Redis bundles (`cmsgpack`, `cjson`, `bit`, `struct`)
//! and the `redis` API at the sizes real scripts reach, compared side by
//! side with redis-server: tables of 100,000 elements and calls with
//! thousands of arguments (`unpack` of a whole table), where an embedding
//! that holds a handle per Lua value runs out of them; `loadstring` of
//! precompiled code and `redis.acl_check_cmd`.

use amber_tests::{connect, differential};

/// Sends `EVAL script 0` and returns the raw reply.
fn eval(port: u16, script: &str) -> Vec<u8> {
    connect(port).cmd(&["EVAL", script, "0"])
}

/// A 100,000-element array and map packed and unpacked (as in Redis's
/// "cmsgpack pack/unpack smoke test"): the packed size, and every element
/// found again after the round trip.
#[test]
fn cmsgpack_packs_and_unpacks_tables_of_100000_elements() {
    differential("cmsgpack big tables", &[], |port| {
        let array = "local t = {} for i = 1, 100000 do t[i] = i end \
            local s = cmsgpack.pack(t) local u = cmsgpack.unpack(s) \
            for i = 1, 100000 do assert(u[i] == i) end \
            return {#s, #u}";
        let map = "local t = {} for i = 1, 100000 do t[tostring(i)] = i end \
            local s = cmsgpack.pack(t) local u = cmsgpack.unpack(s) \
            local n = 0 for k, v in pairs(u) do assert(t[k] == v) n = n + 1 end \
            return {#s, n}";
        let nested = "local t = {a = {}, m = {}} \
            for i = 1, 100000 do t.a[i] = 'x' .. i t.m['k' .. i] = i end \
            local s = cmsgpack.pack(t) local u = cmsgpack.unpack(s) \
            return {#s, #u.a, u.a[99999], u.m.k100000}";
        vec![eval(port, array), eval(port, map), eval(port, nested)]
    });
}

/// `redis.call`, `redis.pcall` and library functions given the most
/// arguments `unpack` can pass (7999), and `cmsgpack.pack`'s own limit
/// (`lua_checkstack(L, nargs)`: 4000 arguments pack, 4001 are refused).
#[test]
fn calls_take_thousands_of_arguments() {
    differential("thousands of arguments", &[], |port| {
        let many = |n: usize, value: &str, call: &str| {
            format!("local a = {{}} for i = 1, {n} do a[i] = {value} end return {call}")
        };
        vec![
            eval(
                port,
                &many(7999, "i", "redis.call('rpush', 'l', unpack(a))"),
            ),
            eval(
                port,
                &many(7999, "'m' .. i", "redis.pcall('sadd', 's', unpack(a))"),
            ),
            eval(
                port,
                &many(7998, "'k' .. i", "redis.call('del', 'l', 's', unpack(a))"),
            ),
            // A bad argument among many is still found.
            eval(
                port,
                &many(
                    5000,
                    "i",
                    "(function() a[4000] = {} return redis.pcall('rpush', 'l', unpack(a)) end)()",
                ),
            ),
            eval(
                port,
                &many(
                    5000,
                    "i",
                    "(function() a[4000] = {} return redis.call('rpush', 'l', unpack(a)) end)()",
                ),
            ),
            eval(port, &many(7999, "3", "bit.band(unpack(a))")),
            eval(port, &many(7999, "i", "bit.bor(unpack(a))")),
            eval(
                port,
                &many(7999, "1", "#struct.pack(string.rep('b', 7999), unpack(a))"),
            ),
            eval(port, &many(4000, "i", "#cmsgpack.pack(unpack(a))")),
            eval(port, &many(3000, "'s' .. i", "#cmsgpack.pack(unpack(a))")),
            eval(port, &many(4001, "i", "#cmsgpack.pack(unpack(a))")),
            eval(port, &many(100, "i", "#cjson.encode(unpack(a))")),
        ]
    });
}

/// `loadstring` of precompiled code (`string.dump`) fails as Redis's Lua,
/// which has no binary loader, fails it: as text starting with `\27`.
#[test]
fn loadstring_refuses_binary_chunks() {
    differential("loadstring binary", &[], |port| {
        let dump = "string.dump(function() return 1 end)";
        vec![
            eval(port, &format!("return loadstring({dump})()")),
            eval(
                port,
                &format!("local f, e = loadstring({dump}) return {{tostring(f), e}}"),
            ),
            eval(
                port,
                &format!("local f, e = loadstring({dump}, '=chunk') return {{tostring(f), e}}"),
            ),
            eval(port, "return loadstring('return 7')()"),
            eval(port, "return {loadstring('return +')}"),
            eval(port, "return {pcall(loadstring)}"),
        ]
    });
}

/// `redis.acl_check_cmd` answers for the user running the script: a
/// command or key the user may not use is `false` (nil in the reply).
#[test]
fn acl_check_cmd_checks_the_callers_permissions() {
    differential("acl_check_cmd", &[], |port| {
        let mut admin = connect(port);
        admin.cmd(&[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            ">123",
            "+@scripting",
            "+set",
            "~x*",
        ]);
        let mut bob = connect(port);
        let mut replies = vec![bob.cmd(&["AUTH", "bob", "123"])];
        for check in [
            "'set', 'xx', 1",
            "'hset', 'xx', 'f', 1",
            "'set', 'yy', 1",
            "'nope'",
        ] {
            let script = format!("return {{redis.acl_check_cmd({check})}}");
            replies.push(bob.cmd(&["EVAL", &script, "0"]));
            replies.push(admin.cmd(&["EVAL", &script, "0"]));
        }
        replies
    });
}
