//! The collection types: each in its own module with the same small
//! interface (`mem_usage`, `encoding`, `is_empty`, `encode`, `decode`).

pub mod hash;
pub mod journal;
pub mod list;
pub mod set;
pub mod stream;
pub mod zset;

pub use hash::HashValue;
pub use list::ListValue;
pub use set::SetValue;
pub use stream::StreamValue;
pub use zset::ZSetValue;
