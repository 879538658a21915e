//! The parsers under fuzzing, compiled from octopush's own source files.
//!
//! These modules depend on nothing else in the crate (regex, serde_json, thiserror and oci-client's reference
//! grammar only), so the fuzz targets build them alone instead of the whole library with its HTTP, TLS, gRPC and
//! compression stacks: the instrumented build takes minutes instead of half an hour on two cores, which keeps the
//! fuzz run in CI short. The code fuzzed is the code shipped: the same files, nothing copied.

#![allow(dead_code, unused_imports)]

/// `src/dockerfile`: the Dockerfile parser and BuildKit's word expansion.
#[path = "../../src/dockerfile/mod.rs"]
pub mod dockerfile;

/// `src/image/name.rs`: image names, references, registry hosts and tags.
#[path = "../../src/image/name.rs"]
pub mod image;

/// `src/builder/ignore.rs`: `.dockerignore` files and the pattern matcher.
#[path = "../../src/builder/ignore.rs"]
pub mod ignore;
