//! Fibers' memory: stacks with guard pages, and the stack-overflow reporter.

pub(crate) mod overflow;
mod provision;
pub mod stack;
