//! The script cache (`lctx.lua_scripts` in Redis's `eval.c`): every body
//! `EVAL` or `SCRIPT LOAD` compiled, by the lowercase hex SHA1 of the body.
//! One per server, shared by all clients, emptied by `SCRIPT FLUSH`, not
//! persistent.

use std::collections::HashMap;

use mlua::Function;

use super::shebang::ScriptFlags;

/// A compiled script and the flags of its shebang.
#[derive(Clone)]
pub struct CachedScript {
    /// The compiled body.
    pub func: Function,
    /// Its `#!lua flags=...`.
    pub flags: ScriptFlags,
    /// The length of its body.
    pub body_len: usize,
}

/// The hex SHA1 of `data`, lowercase (`sha1hex`).
pub fn sha1_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // By hand: `Digest`'s `Display` goes through the formatting machinery,
    // a sixth of a short `EVAL`'s script lookup.
    let digest = sha1_smol::Sha1::from(data).digest().bytes();
    let mut hex = String::with_capacity(40);
    for b in digest {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 15)]));
    }
    hex
}

/// Compiled scripts by SHA1.
#[derive(Default)]
pub struct ScriptCache {
    scripts: HashMap<String, CachedScript>,
}

impl ScriptCache {
    /// The compiled script of `sha` (any case, as Redis's dictionary
    /// compares SHA1s without case).
    pub fn get(&self, sha: &[u8]) -> Option<&CachedScript> {
        let key = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        self.scripts.get(&key)
    }

    /// Remembers a compiled script.
    pub fn insert(&mut self, sha: String, script: CachedScript) {
        self.scripts.insert(sha, script);
    }

    /// Whether `sha` is cached.
    pub fn contains(&self, sha: &[u8]) -> bool {
        self.get(sha).is_some()
    }

    /// Number of cached scripts (`INFO memory`'s `number_of_cached_scripts`).
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Bytes of the cached bodies.
    pub fn body_bytes(&self) -> usize {
        self.scripts.values().map(|s| s.body_len).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_of_empty_and_scripts() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        // The digest redis-server 7.0 reports for `EVAL "return x" 0`.
        assert_eq!(
            sha1_hex(b"return x"),
            "03c387736bb5cc009ff35151572cee04677aa374"
        );
    }
}
