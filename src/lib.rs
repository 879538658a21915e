//! octopush: build container images without a daemon and publish them to GitHub Packages or any OCI registry.
//!
//! The library knows nothing of GitHub Actions' environment: the binary's edge (`actions`, `cli`) turns raw inputs
//! into validated configuration and calls in here.

pub mod builder;
pub mod docker_archive;
pub mod dockerfile;
pub mod handoff;
pub mod image;
pub mod install;
pub mod layout;
pub mod merge;
pub mod meta;
pub mod packages;
pub mod progress;
pub mod publish;
pub mod registry;
pub mod secret;
pub mod unpack;
