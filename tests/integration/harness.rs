//! The shared harness (see `tests/src`): `use crate::harness::{Cluster, Auth, djinit, run, ...}`.
pub use djinit_tests::harness::*;
