//! `amber-storage`: the keyspace of an Amber server.
//!
//! This crate owns everything about data: typed values, the sharded keyspace,
//! expiry, and (with the tiered engine) the DRAM hot tier and the
//! persistent-memory arena. It knows nothing of sockets or RESP: its API speaks
//! in keys, values and Rust errors, and the server maps those to Redis replies.
//!
//! Concurrency model, in one paragraph: each of the 16 databases is split into
//! a power-of-two number of shards by key hash; a shard is a plain mutex around
//! its table. A command locks the shards of the keys it touches in ascending
//! order through a [`Guard`], so multi-key commands never deadlock. A
//! keyspace-wide gate ([`Keyspace::shared`] / [`Keyspace::exclusive`]) lets
//! `MULTI`/`EXEC` and the few cross-database commands run alone, while
//! ordinary commands only pay an uncontended read lock per pipelined batch.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(clippy::unwrap_used)]

pub mod arena;
pub mod changes;
mod checkpoint;
pub mod clock;
pub mod codec;
pub mod error;
mod expiry;
pub mod glob;
mod guard;
pub mod keyspace;
pub mod lazy_expiry;
pub mod observer;
pub mod persist;
mod prefetch;
mod shard;
pub mod snapshot;
pub mod striped;
pub mod tier;
pub mod types;
pub mod value;
mod writeback;

pub use arena::{
    Addr, Arena, ArenaConfig, ArenaStats, ArenaSync, DeltaIn, Persistence, RecordIn, RecordRef,
    RecoveredRecord, RecoveryStats, Ticket,
};
pub use error::{Error, Result};
pub use guard::{Detached, Guard, SetExpiry};
pub use keyspace::{Flushed, Keyspace, KeyspaceConfig, DB_COUNT};
pub use observer::KeyObserver;
pub use prefetch::PREFETCH_MAX_KEYS;
pub use snapshot::{DbCounts, ShardEntries, SnapshotSink, SnapshotTicket};
pub use tier::EvictionPolicy;
pub use value::{StrValue, Value, ValueType};
