//! Flows: one storage-generic function per endpoint or tick step. Each reads
//! what it needs through [`crate::storage::Storage`], asks the rules for a
//! decision and applies it, in an order that makes every store failure safe
//! to retry. Components parse HTTP, call one flow and render what it returns;
//! the flows are tested natively on [`crate::storage::MemoryStorage`] in every
//! store mode, with a failure injected at each step
//! ([`crate::storage::Faulty`]) and with runs interleaved.

pub mod answer;
