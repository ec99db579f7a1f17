//! `ensureadmin`'s parts that need no database: Django password hashing and hash formats
//! ([`hash`]), Django's default password validators ([`validate`]), email normalisation
//! ([`email`]), the command line ([`options`]) and the SQL it runs ([`sql`]).
//! The I/O (connection, statements, retries) is in `main.rs` and [`ensure`].

pub mod email;
pub mod ensure;
pub mod hash;
pub mod options;
pub mod sql;
pub mod validate;
