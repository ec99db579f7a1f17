//! `ensureadmin`'s parts that need no database: Django password hashing and hash formats
//! ([`hash`]), Django's default password validators ([`validate`]), username and email normalisation
//! ([`normalize`]), the command line ([`options`]) and the SQL it runs ([`sql`]).
//! The I/O (connection, statements, retries) is in `main.rs` and [`ensure`].

pub mod ensure;
pub mod hash;
pub mod normalize;
pub mod options;
pub mod sql;
pub mod validate;
