//! The function libraries (`functions.c` in Redis 7.0): a library's
//! `#!lua name=...` metadata line, the names Redis accepts, the flags a
//! function declares, and the registry of loaded libraries and their
//! functions. Nothing here runs Lua ([`super::function_lua`] does).

use std::collections::{BTreeMap, HashMap};

use mlua::Function;

/// Redis's text for a bad library or function name (7.0 uses the same
/// text for both).
pub const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The flags a function may declare (`scripts_flags_def`), in Redis's
/// order, which is the order `FUNCTION LIST` shows them in.
pub const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// A set of [`FLAG_NAMES`], bit `i` for `FLAG_NAMES[i]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionFlags(u8);

impl FunctionFlags {
    /// The flag called `name` (any case), if Redis knows it.
    pub fn from_name(name: &[u8]) -> Option<FunctionFlags> {
        FLAG_NAMES
            .iter()
            .position(|f| f.as_bytes().eq_ignore_ascii_case(name))
            .map(|i| FunctionFlags(1 << i))
    }

    /// Both sets.
    pub fn union(self, other: FunctionFlags) -> FunctionFlags {
        FunctionFlags(self.0 | other.0)
    }

    /// `no-writes`: the function may not call write commands.
    pub fn no_writes(self) -> bool {
        self.0 & 1 != 0
    }

    /// `allow-oom`: the function may write when memory is full.
    pub fn allow_oom(self) -> bool {
        self.0 & (1 << 1) != 0
    }

    /// Whether an `FCALL` of the function is refused before it runs when
    /// memory is full (neither `allow-oom` nor `no-writes`, as Redis's
    /// `scriptFlagsToCmdFlags`).
    pub fn denies_oom(self) -> bool {
        !self.allow_oom() && !self.no_writes()
    }

    /// `allow-stale`: runs on a replica cut from its master even with
    /// `replica-serve-stale-data no`.
    pub fn allow_stale(self) -> bool {
        self.0 & (1 << 2) != 0
    }

    /// The names of the flags in the set, in Redis's order.
    pub fn names(self) -> Vec<&'static str> {
        FLAG_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// A function a library registered.
#[derive(Clone)]
pub struct FunctionDef {
    /// Its name, as registered.
    pub name: String,
    /// Its description, if it has one.
    pub description: Option<Vec<u8>>,
    /// Its flags.
    pub flags: FunctionFlags,
    /// The Lua function that runs it.
    pub callback: Function,
}

/// A loaded library.
#[derive(Clone)]
pub struct Library {
    /// Its name (from the metadata line).
    pub name: String,
    /// Its whole code, metadata line included.
    pub code: Vec<u8>,
    /// Its functions, in the order they were registered.
    pub functions: Vec<FunctionDef>,
}

/// What a library's first line says (`functionExtractLibMetaData`).
#[derive(Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The engine named after `#!`.
    pub engine: String,
    /// The library's name.
    pub name: String,
    /// Where the code after the metadata line starts (at its newline, so
    /// that line numbers are those of the whole text).
    pub body_start: usize,
}

/// Reads the metadata line of `code`; the error is Redis's text (without
/// the `ERR ` code).
pub fn parse_metadata(code: &[u8]) -> Result<Metadata, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    // Split as Redis's `sdssplitargs`: `name="my lib"` is `name=my lib`.
    let mut words = Vec::new();
    let line = code.get(..end).unwrap_or_default();
    if crate::resp::parser::split_args(line, &mut words).is_none() || words.is_empty() {
        return Err("Invalid library metadata".into());
    }
    let mut parts = words.iter().map(|w| String::from_utf8_lossy(w));
    let Some(engine) = parts.next() else {
        return Err("Invalid library metadata".into());
    };
    let engine = engine.get(2..).unwrap_or_default().to_string();
    let mut name = None;
    for part in parts {
        let is_name = part
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("name="));
        if !is_name {
            return Err(format!("Invalid metadata value given: {part}"));
        }
        if name.is_some() {
            return Err("Invalid metadata value, name argument was given multiple times".into());
        }
        name = Some(part.get(5..).unwrap_or_default().to_string());
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    Ok(Metadata {
        engine,
        name,
        body_start: end,
    })
}

/// Whether Redis accepts `name` as a library or function name
/// (`functionsVerifyName`): letters, digits and `_`, at least one.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The loaded libraries and their functions (`functionsLibCtx`).
#[derive(Clone, Default)]
pub struct Registry {
    /// Libraries by name (names are case-sensitive).
    libraries: BTreeMap<String, Library>,
    /// The library of each function, by lowercase function name (function
    /// names are not case-sensitive).
    functions: HashMap<String, String>,
}

impl Registry {
    /// The libraries, by name.
    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// The library called `name`.
    pub fn library(&self, name: &str) -> Option<&Library> {
        self.libraries.get(name)
    }

    /// Number of functions of all libraries.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Number of libraries.
    pub fn library_count(&self) -> usize {
        self.libraries.len()
    }

    /// The function called `name` (any case; of functions of one library
    /// whose names differ only in case, the last registered, as in Redis).
    pub fn function(&self, name: &[u8]) -> Option<&FunctionDef> {
        let key = String::from_utf8_lossy(name).to_lowercase();
        let library = self.libraries.get(self.functions.get(&key)?)?;
        library
            .functions
            .iter()
            .rev()
            .find(|f| f.name.eq_ignore_ascii_case(&key))
    }

    /// Adds `library`, first removing the library of the same name when
    /// `replace` (`libraryLink` after the checks of
    /// `functionsCreateWithLibraryCtx`). Nothing changes on error; the
    /// error is Redis's text.
    pub fn add(&mut self, library: Library, replace: bool) -> Result<(), String> {
        let old = self.libraries.get(&library.name);
        if old.is_some() && !replace {
            return Err(format!("Library '{}' already exists", library.name));
        }
        self.check_collisions(&library, &library.name)?;
        self.remove(&library.name);
        self.link(library);
        Ok(())
    }

    /// Removes the library called `name`; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(library) = self.libraries.remove(name) else {
            return false;
        };
        for f in &library.functions {
            self.functions.remove(&f.name.to_lowercase());
        }
        true
    }

    /// Adds every library of `other` (`libraryJoin`): a library of the same
    /// name is an error unless `replace`; a function of the same name in
    /// another library always is. Nothing changes on error.
    pub fn join(&mut self, other: Registry, replace: bool) -> Result<(), String> {
        let mut joined = self.clone();
        for library in other.libraries.values() {
            if joined.libraries.contains_key(&library.name) {
                if !replace {
                    return Err(format!("Library {} already exists", library.name));
                }
                joined.remove(&library.name);
            }
        }
        for library in other.libraries.into_values() {
            joined.check_collisions(&library, &library.name)?;
            joined.link(library);
        }
        *self = joined;
        Ok(())
    }

    /// An error if a function of `library` is already registered by a
    /// library other than `replaced`.
    fn check_collisions(&self, library: &Library, replaced: &str) -> Result<(), String> {
        for f in &library.functions {
            if let Some(owner) = self.functions.get(&f.name.to_lowercase()) {
                if owner != replaced {
                    return Err(format!("Function {} already exists", f.name));
                }
            }
        }
        Ok(())
    }

    fn link(&mut self, library: Library) {
        for f in &library.functions {
            self.functions
                .insert(f.name.to_lowercase(), library.name.clone());
        }
        self.libraries.insert(library.name.clone(), library);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metadata_as_redis_does() {
        assert_eq!(
            parse_metadata(b"#!lua name=mylib\nreturn"),
            Ok(Metadata {
                engine: "lua".into(),
                name: "mylib".into(),
                body_start: 16
            })
        );
        assert_eq!(
            parse_metadata(b"return"),
            Err("Missing library metadata".into())
        );
        assert_eq!(
            parse_metadata(b"#!lua name=x"),
            Err("Invalid library metadata".into())
        );
        assert_eq!(
            parse_metadata(b"#!lua\n"),
            Err("Library name was not given".into())
        );
        assert_eq!(
            parse_metadata(b"#!lua NAME=a name=b\n"),
            Err("Invalid metadata value, name argument was given multiple times".into())
        );
        assert_eq!(
            parse_metadata(b"#!lua foo=bar\n"),
            Err("Invalid metadata value given: foo=bar".into())
        );
    }

    #[test]
    fn names_and_flags() {
        assert!(is_valid_name(b"my_lib9"));
        assert!(!is_valid_name(b""));
        assert!(!is_valid_name(b"a-b"));
        let flags = FunctionFlags::from_name(b"ALLOW-OOM")
            .unwrap_or_default()
            .union(FunctionFlags::from_name(b"no-writes").unwrap_or_default());
        assert_eq!(flags.names(), vec!["no-writes", "allow-oom"]);
        assert!(flags.no_writes());
        assert_eq!(FunctionFlags::from_name(b"bad"), None);
    }
}
