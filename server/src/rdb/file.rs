//! The RDB file around the objects: Redis 7.0's `rdbSaveRio` and
//! `rdbLoadRioWithLoadingCtx` (`rdb.c`), as `dump.rdb` holds them.
//!
//! # Layout (RDB version 10, as Redis 7.0 writes it)
//!
//! ```text
//! "REDIS0010"                              magic and version (4 digits)
//! AUX (0xFA) name value                    redis-ver, redis-bits, ctime, used-mem, aof-base
//! FUNCTION2 (0xF5) code                    one per function library
//! SELECTDB (0xFE) db                       for each non-empty database:
//!   RESIZEDB (0xFB) keys expires             its sizes (a hint)
//!   [EXPIRETIME_MS (0xFC) ms:u64 LE]         for each key: its deadline,
//!   [IDLE (0xF8) secs | FREQ (0xF9) u8]      its LRU / LFU hint,
//!   type key object                          the object (`rdb::write`)
//! EOF (0xFF)
//! CRC64 of every byte before, u64 LE       0 when `rdbchecksum no`
//! ```
//!
//! Strings (names, values, keys, library codes) are RDB strings
//! (`rdbSaveRawString`: integer-encoded or LZF-compressed when shorter).
//! Reading also takes what older Redis versions wrote (versions 1 to 10,
//! `EXPIRETIME` in seconds, no checksum before version 5), and refuses
//! what Amber cannot represent: module data (`MODULE_AUX`, module
//! objects) and the release candidates' function format.

use std::fmt;
use std::io::{self, Write};

use amber_storage::Value;

use super::read::{self, LoadError, Reader};
use super::write::{self, Options};
use super::{crc64, kind, RDB_VERSION};

/// RDB opcodes (`rdb.h`), the bytes that are not object types.
pub mod opcode {
    /// `RDB_OPCODE_FUNCTION2`: a function library's code.
    pub const FUNCTION2: u8 = 245;
    /// `RDB_OPCODE_FUNCTION_PRE_GA`: the 7.0 release candidates' format.
    pub const FUNCTION_PRE_GA: u8 = 246;
    /// `RDB_OPCODE_MODULE_AUX`: data of a module.
    pub const MODULE_AUX: u8 = 247;
    /// `RDB_OPCODE_IDLE`: the next key's idle time (LRU), seconds.
    pub const IDLE: u8 = 248;
    /// `RDB_OPCODE_FREQ`: the next key's LFU counter.
    pub const FREQ: u8 = 249;
    /// `RDB_OPCODE_AUX`: a name and a value.
    pub const AUX: u8 = 250;
    /// `RDB_OPCODE_RESIZEDB`: the database's key and expire counts.
    pub const RESIZEDB: u8 = 251;
    /// `RDB_OPCODE_EXPIRETIME_MS`: the next key's deadline, Unix ms.
    pub const EXPIRETIME_MS: u8 = 252;
    /// `RDB_OPCODE_EXPIRETIME`: the next key's deadline, Unix seconds.
    pub const EXPIRETIME: u8 = 253;
    /// `RDB_OPCODE_SELECTDB`: the database of the keys that follow.
    pub const SELECTDB: u8 = 254;
    /// `RDB_OPCODE_EOF`.
    pub const EOF: u8 = 255;
}

/// The file's first bytes, before the version's 4 digits.
pub const MAGIC: &[u8] = b"REDIS";

/// Writes an RDB file, computing its checksum on the way.
pub struct FileWriter<W: Write> {
    out: W,
    /// The running checksum (`None` with `rdbchecksum no`).
    crc: Option<crc::Digest<'static, u64, crc::Table<16>>>,
    opts: Options,
    scratch: Vec<u8>,
}

impl<W: Write> FileWriter<W> {
    /// Starts a file on `out`: the magic and version. `checksum` is
    /// `rdbchecksum` (without it the trailer is 0), `opts` shapes objects.
    pub fn new(out: W, checksum: bool, opts: Options) -> io::Result<Self> {
        let mut w = FileWriter {
            out,
            crc: checksum.then(crc64::running),
            opts,
            scratch: Vec::new(),
        };
        let header = format!("REDIS{RDB_VERSION:04}");
        w.put(header.as_bytes())?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some(crc) = &mut self.crc {
            crc.update(bytes);
        }
        self.out.write_all(bytes)
    }

    /// Writes the scratch buffer and empties it.
    fn put_scratch(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.scratch);
        let r = self.put(&buf);
        self.scratch = buf;
        self.scratch.clear();
        r
    }

    /// An `AUX` field (`rdbSaveAuxField`).
    pub fn aux(&mut self, name: &[u8], value: &[u8]) -> io::Result<()> {
        self.scratch.push(opcode::AUX);
        write::string(&mut self.scratch, name, self.opts.compress);
        write::string(&mut self.scratch, value, self.opts.compress);
        self.put_scratch()
    }

    /// A function library (`rdbSaveFunctions`).
    pub fn function(&mut self, code: &[u8]) -> io::Result<()> {
        self.scratch.push(opcode::FUNCTION2);
        write::string(&mut self.scratch, code, self.opts.compress);
        self.put_scratch()
    }

    /// `SELECTDB` then `RESIZEDB`: the keys that follow are in `db`,
    /// which holds about `keys` keys, `expires` of them with a deadline.
    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) -> io::Result<()> {
        self.scratch.push(opcode::SELECTDB);
        write::len(&mut self.scratch, db);
        self.scratch.push(opcode::RESIZEDB);
        write::len(&mut self.scratch, keys);
        write::len(&mut self.scratch, expires);
        self.put_scratch()
    }

    /// A key (`rdbSaveKeyValuePair`): its deadline (Unix ms), then the
    /// type, the name and the object. A value type the codec does not know
    /// (none today: see `write::Unsupported`) fails the save rather than
    /// being left out.
    pub fn key(&mut self, key: &[u8], value: &Value, expire_ms: Option<u64>) -> io::Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = key_entry(&mut scratch, key, value, expire_ms, self.opts);
        self.scratch = scratch;
        match r {
            Ok(()) => self.put_scratch(),
            Err(e) => {
                self.scratch.clear();
                Err(e)
            }
        }
    }

    /// Key entries already encoded with [`key_entry`] (with this writer's
    /// options), written as they are.
    pub fn key_entries(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(bytes)
    }

    /// `EOF` and the checksum; returns the output (not yet synced).
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[opcode::EOF])?;
        let crc = self.crc.take().map_or(0, |c| c.finalize());
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends the bytes of one key entry (`rdbSaveKeyValuePair`) to `out`:
/// its deadline (Unix ms), then the type, the name and the object, as
/// [`FileWriter::key`] writes them; for entries encoded away from the
/// writer (a live snapshot's shards) and written later with
/// [`FileWriter::key_entries`]. A value type the codec does not know fails.
pub fn key_entry(
    out: &mut Vec<u8>,
    key: &[u8],
    value: &Value,
    expire_ms: Option<u64>,
    opts: Options,
) -> io::Result<()> {
    let unsupported = || {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "a value type the RDB codec cannot write",
        )
    };
    let mut object = Vec::new();
    write::object(&mut object, value, opts).map_err(|_| unsupported())?;
    let (&type_byte, body) = object.split_first().ok_or_else(unsupported)?;
    if let Some(ms) = expire_ms {
        out.push(opcode::EXPIRETIME_MS);
        out.extend_from_slice(&ms.to_le_bytes());
    }
    out.push(type_byte);
    write::string(out, key, opts.compress);
    out.extend_from_slice(body);
    Ok(())
}

/// What an RDB file holds, item by item.
#[derive(Debug, PartialEq)]
pub enum Entry {
    /// An `AUX` field.
    Aux {
        /// Its name (`redis-ver`, `ctime`...).
        name: Vec<u8>,
        /// Its value.
        value: Vec<u8>,
    },
    /// A function library's code.
    Function(Vec<u8>),
    /// The keys that follow are in this database.
    SelectDb(u64),
    /// The sizes of the current database (a hint).
    ResizeDb {
        /// Keys.
        keys: u64,
        /// Keys with a deadline.
        expires: u64,
    },
    /// A key of the current database.
    Key(KeyEntry),
}

/// A key read from the file.
#[derive(Debug, PartialEq)]
pub struct KeyEntry {
    /// Its name.
    pub key: Vec<u8>,
    /// Its value; `None` for an empty collection, which Redis skips with a
    /// warning (`RDB_LOAD_ERR_EMPTY_KEY`).
    pub value: Option<Value>,
    /// Its deadline, Unix ms (may be in the past).
    pub expire_ms: Option<i64>,
    /// `IDLE`: seconds since its last access.
    pub idle_secs: Option<u64>,
    /// `FREQ`: its LFU counter.
    pub freq: Option<u8>,
}

/// Why a file does not load (the text follows `rdb.c`'s log lines where
/// there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileErrorKind {
    /// Not `REDIS` followed by 4 digits.
    BadMagic,
    /// A version Redis 7.0 cannot read (above 10, or 0).
    Version(u32),
    /// The file ends before its `EOF` and checksum.
    Truncated,
    /// The CRC64 trailer does not match.
    Checksum {
        /// The trailer.
        expected: u64,
        /// The bytes' checksum.
        got: u64,
    },
    /// A byte that is neither an opcode nor an object type.
    UnknownType(u8),
    /// Module data: Amber has no modules.
    Module,
    /// The 7.0 release candidates' function format.
    FunctionPreGa,
    /// The object of this key does not load.
    BadObject(Vec<u8>),
    /// Some other malformed item.
    Corrupt(&'static str),
}

/// A file that does not load, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The byte offset where reading stopped.
    pub offset: usize,
    /// What is wrong.
    pub kind: FileErrorKind,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use FileErrorKind as K;
        match &self.kind {
            K::BadMagic => write!(f, "Wrong signature trying to load DB from file")?,
            K::Version(v) => write!(f, "Can't handle RDB format version {v}")?,
            K::Truncated => write!(
                f,
                "Short read loading DB (the file is truncated). Unrecoverable error, aborting now."
            )?,
            K::Checksum { expected, got } => write!(
                f,
                "Wrong RDB checksum expected: ({expected:016x}) got ({got:016x}). Aborting now."
            )?,
            K::UnknownType(t) => write!(f, "Unknown RDB encoding type {t}")?,
            K::Module => write!(
                f,
                "The RDB file contains module data I can't load: Amber has no modules"
            )?,
            K::FunctionPreGa => write!(f, "Pre-release function format not supported")?,
            K::BadObject(key) => write!(
                f,
                "Bad data format in the value of key '{}' (the file is truncated or corrupt)",
                String::from_utf8_lossy(key)
            )?,
            K::Corrupt(what) => write!(f, "Corrupt RDB file: {what}")?,
        }
        write!(f, " (at byte {})", self.offset)
    }
}

impl std::error::Error for FileError {}

/// Reads an RDB file held in memory, entry by entry.
pub struct FileReader<'a> {
    data: &'a [u8],
    r: Reader<'a>,
    version: u32,
    limits: read::Limits,
    done: bool,
}

impl<'a> FileReader<'a> {
    /// Checks the magic, the version and (when the file ends in `EOF` and
    /// a non-zero checksum, as every complete file does) the checksum,
    /// before anything is loaded. `limits` shape the values.
    pub fn new(data: &'a [u8], limits: read::Limits) -> Result<Self, FileError> {
        let err = |offset, kind| Err(FileError { offset, kind });
        let Some(header) = data.get(..9) else {
            return if data.len() < MAGIC.len() || !data.starts_with(MAGIC) {
                err(0, FileErrorKind::BadMagic)
            } else {
                err(data.len(), FileErrorKind::Truncated)
            };
        };
        if !header.starts_with(MAGIC) {
            return err(0, FileErrorKind::BadMagic);
        }
        let digits = header.get(5..9).unwrap_or_default();
        if !digits.iter().all(u8::is_ascii_digit) {
            return err(5, FileErrorKind::BadMagic);
        }
        let version: u32 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        if version < 1 || version > u32::from(RDB_VERSION) {
            return err(5, FileErrorKind::Version(version));
        }
        if version >= 5 && data.len() >= 9 + 1 + 8 {
            let (body, trailer) = data.split_at(data.len() - 8);
            let expected = u64::from_le_bytes(trailer.try_into().unwrap_or_default());
            if body.last() == Some(&opcode::EOF) && expected != 0 {
                let got = crc64::crc64(body);
                if got != expected {
                    return err(data.len() - 8, FileErrorKind::Checksum { expected, got });
                }
            }
        }
        let mut r = Reader::new(data);
        r.bytes(9);
        Ok(FileReader {
            data,
            r,
            version,
            limits,
            done: false,
        })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    fn fail<T>(&self, kind: FileErrorKind) -> Result<T, FileError> {
        Err(FileError {
            offset: self.r.position(),
            kind,
        })
    }

    fn short<T>(&self, v: Option<T>) -> Result<T, FileError> {
        match v {
            Some(v) => Ok(v),
            None => self.fail(FileErrorKind::Truncated),
        }
    }

    fn len(&mut self) -> Result<u64, FileError> {
        let at_end = self.r.at_end();
        match self.r.len() {
            Some(read::Len::Plain(n)) => Ok(n),
            Some(read::Len::Encoded(_)) => self.fail(FileErrorKind::Corrupt("a length expected")),
            None if at_end || self.data.len() - self.r.position() < 9 => {
                self.fail(FileErrorKind::Truncated)
            }
            None => self.fail(FileErrorKind::Corrupt("a bad length")),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, FileError> {
        let s = self.r.string();
        self.short(s)
    }

    /// The next entry; `None` after `EOF` (and its checksum, checked).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, FileError> {
        if self.done {
            return Ok(None);
        }
        let (mut expire_ms, mut idle_secs, mut freq) = (None, None, None);
        loop {
            let b = self.r.byte();
            let t = self.short(b)?;
            match t {
                opcode::EXPIRETIME => {
                    let s = self.r.array::<4>();
                    let s = self.short(s)?;
                    expire_ms = Some(i64::from(i32::from_le_bytes(s)) * 1000);
                }
                opcode::EXPIRETIME_MS => {
                    let ms = self.r.array::<8>();
                    expire_ms = Some(i64::from_le_bytes(self.short(ms)?));
                }
                opcode::FREQ => {
                    let f = self.r.byte();
                    freq = Some(self.short(f)?);
                }
                opcode::IDLE => idle_secs = Some(self.len()?),
                opcode::EOF => {
                    self.done = true;
                    if self.version >= 5 {
                        let body_end = self.r.position();
                        let c = self.r.array::<8>();
                        let expected = u64::from_le_bytes(self.short(c)?);
                        let got = crc64::crc64(self.data.get(..body_end).unwrap_or_default());
                        if expected != 0 && expected != got {
                            return self.fail(FileErrorKind::Checksum { expected, got });
                        }
                    }
                    return Ok(None);
                }
                opcode::SELECTDB => return Ok(Some(Entry::SelectDb(self.len()?))),
                opcode::RESIZEDB => {
                    let keys = self.len()?;
                    let expires = self.len()?;
                    return Ok(Some(Entry::ResizeDb { keys, expires }));
                }
                opcode::AUX => {
                    let name = self.string()?;
                    let value = self.string()?;
                    return Ok(Some(Entry::Aux { name, value }));
                }
                opcode::MODULE_AUX => return self.fail(FileErrorKind::Module),
                opcode::FUNCTION_PRE_GA => return self.fail(FileErrorKind::FunctionPreGa),
                opcode::FUNCTION2 => return Ok(Some(Entry::Function(self.string()?))),
                kind::MODULE | kind::MODULE_2 => return self.fail(FileErrorKind::Module),
                t if is_object_type(t) => {
                    let key = self.string()?;
                    let value = match read::object_of_type(&mut self.r, t, self.limits) {
                        Ok(v) => Some(v),
                        Err(LoadError::EmptyKey) => None,
                        Err(LoadError::BadFormat) => {
                            return self.fail(FileErrorKind::BadObject(key))
                        }
                    };
                    return Ok(Some(Entry::Key(KeyEntry {
                        key,
                        value,
                        expire_ms,
                        idle_secs,
                        freq,
                    })));
                }
                t => {
                    // Report where the byte was.
                    return Err(FileError {
                        offset: self.r.position() - 1,
                        kind: FileErrorKind::UnknownType(t),
                    });
                }
            }
        }
    }
}

/// `rdbIsObjectType` for Redis 7.0 (types 0-7 and 9-19).
fn is_object_type(t: u8) -> bool {
    t <= 7 || (9..=19).contains(&t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use amber_storage::types::ListValue;

    fn sample(checksum: bool) -> Vec<u8> {
        let mut w = FileWriter::new(Vec::new(), checksum, Options::default()).expect("vec");
        w.aux(b"redis-ver", b"7.0.15").expect("vec");
        w.aux(b"redis-bits", b"64").expect("vec");
        w.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)")
            .expect("vec");
        w.select_db(0, 2, 1).expect("vec");
        w.key(b"s", &Value::string("hello"), None).expect("vec");
        let list: ListValue = [&b"a"[..], b"b"].into_iter().collect();
        w.key(b"l", &Value::from(list), Some(1_900_000_000_000))
            .expect("vec");
        w.select_db(9, 1, 0).expect("vec");
        w.key(b"n", &Value::string("12345"), None).expect("vec");
        w.finish().expect("vec")
    }

    fn entries(data: &[u8]) -> Result<Vec<Entry>, FileError> {
        let mut r = FileReader::new(data, read::Limits::default_redis())?;
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn round_trip() {
        for checksum in [true, false] {
            let data = sample(checksum);
            assert!(data.starts_with(b"REDIS0010\xfa"));
            assert_eq!(data[data.len() - 9], opcode::EOF);
            if !checksum {
                assert_eq!(&data[data.len() - 8..], &[0u8; 8]);
            }
            let got = entries(&data).expect("loads");
            assert_eq!(got.len(), 10, "{got:?}");
            assert_eq!(
                got[0],
                Entry::Aux {
                    name: b"redis-ver".to_vec(),
                    value: b"7.0.15".to_vec()
                }
            );
            assert!(matches!(&got[2], Entry::Function(c) if c.starts_with(b"#!lua")));
            assert_eq!(got[3], Entry::SelectDb(0));
            assert_eq!(
                got[4],
                Entry::ResizeDb {
                    keys: 2,
                    expires: 1
                }
            );
            match &got[6] {
                Entry::Key(k) => {
                    assert_eq!(k.key, b"l");
                    assert_eq!(k.expire_ms, Some(1_900_000_000_000));
                    assert!(matches!(&k.value, Some(Value::List(l)) if l.len() == 2));
                }
                e => panic!("{e:?}"),
            }
            assert_eq!(got[7], Entry::SelectDb(9));
            assert_eq!(
                got[8],
                Entry::ResizeDb {
                    keys: 1,
                    expires: 0
                }
            );
            match &got[9] {
                Entry::Key(k) => {
                    assert_eq!(k.key, b"n");
                    assert_eq!(k.expire_ms, None);
                    assert!(matches!(&k.value, Some(Value::Str(s)) if s.bytes[..] == b"12345"[..]));
                }
                e => panic!("{e:?}"),
            }
        }
    }

    /// The body of a file: header, then `body`, then EOF and checksum.
    fn file(body: &[u8]) -> Vec<u8> {
        let mut d = b"REDIS0010".to_vec();
        d.extend_from_slice(body);
        d.push(opcode::EOF);
        let crc = crc64::crc64(&d);
        d.extend_from_slice(&crc.to_le_bytes());
        d
    }

    #[test]
    fn every_opcode() {
        // EXPIRETIME (seconds), IDLE, FREQ, an old version's file.
        let mut body = vec![opcode::SELECTDB, 3, opcode::RESIZEDB, 2, 1];
        body.extend_from_slice(&[opcode::EXPIRETIME]);
        body.extend_from_slice(&2_000_000_000i32.to_le_bytes());
        body.extend_from_slice(&[opcode::IDLE, 10, kind::STRING, 1, b'a', 1, b'x']);
        body.extend_from_slice(&[opcode::FREQ, 7, kind::STRING, 1, b'b', 0xc0, 5]);
        let got = entries(&file(&body)).expect("loads");
        assert_eq!(got[0], Entry::SelectDb(3));
        assert_eq!(
            got[1],
            Entry::ResizeDb {
                keys: 2,
                expires: 1
            }
        );
        match (&got[2], &got[3]) {
            (Entry::Key(a), Entry::Key(b)) => {
                assert_eq!(a.expire_ms, Some(2_000_000_000_000));
                assert_eq!(a.idle_secs, Some(10));
                assert_eq!((b.freq, b.idle_secs, b.expire_ms), (Some(7), None, None));
            }
            e => panic!("{e:?}"),
        }
        // An empty collection is skipped, not refused.
        let got = entries(&file(&[kind::SET, 1, b'e', 0])).expect("loads");
        assert!(matches!(&got[0], Entry::Key(k) if k.value.is_none()));
        // Version 9 (Redis 6) loads; 11 does not.
        let mut v9 = file(&[kind::STRING, 1, b'a', 1, b'x']);
        v9[5..9].copy_from_slice(b"0009");
        let n = v9.len();
        let crc = crc64::crc64(&v9[..n - 8]);
        v9[n - 8..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(entries(&v9).expect("v9").len(), 1);
        let mut v11 = file(&[]);
        v11[7..9].copy_from_slice(b"11");
        assert_eq!(
            entries(&v11).map(|_| ()).expect_err("refused").kind,
            FileErrorKind::Version(11)
        );
    }

    #[test]
    fn refuses_what_does_not_load() {
        let kind_of = |d: &[u8]| entries(d).map(|_| ()).expect_err("refused").kind;
        assert_eq!(kind_of(b"RODIS0010\xff"), FileErrorKind::BadMagic);
        assert_eq!(kind_of(b""), FileErrorKind::BadMagic);
        let mut flipped = sample(true);
        flipped[30] ^= 0x20;
        assert!(matches!(kind_of(&flipped), FileErrorKind::Checksum { .. }));
        let whole = sample(true);
        for cut in [9, 12, 40, whole.len() - 12, whole.len() - 3] {
            let k = kind_of(&whole[..cut]);
            assert!(
                // (A cut that happens to end in 0xff and 8 bytes is seen
                // as a complete file whose checksum is wrong.)
                matches!(
                    k,
                    FileErrorKind::Truncated
                        | FileErrorKind::BadObject(_)
                        | FileErrorKind::Checksum { .. }
                ),
                "cut {cut}: {k:?}"
            );
        }
        assert_eq!(
            kind_of(&file(&[opcode::MODULE_AUX, 1, 2, 3])),
            FileErrorKind::Module
        );
        assert_eq!(
            kind_of(&file(&[kind::MODULE_2, 1, b'k'])),
            FileErrorKind::Module
        );
        assert!(matches!(
            kind_of(&file(&[kind::STREAM_LISTPACKS_2, 1, b'k'])),
            FileErrorKind::BadObject(_)
        ));
        assert_eq!(
            kind_of(&file(&[opcode::FUNCTION_PRE_GA])),
            FileErrorKind::FunctionPreGa
        );
        assert_eq!(kind_of(&file(&[8])), FileErrorKind::UnknownType(8));
        assert_eq!(kind_of(&file(&[244])), FileErrorKind::UnknownType(244));
        assert!(matches!(
            kind_of(&file(&[kind::ZSET_2, 1, b'k', 1])),
            FileErrorKind::BadObject(_)
        ));
        // Without the checksum (rdbchecksum no) nothing is checked.
        let mut zero = file(&[kind::STRING, 1, b'a', 1, b'x']);
        let n = zero.len();
        zero[n - 8..].copy_from_slice(&[0; 8]);
        assert_eq!(entries(&zero).expect("loads").len(), 1);
    }
}
