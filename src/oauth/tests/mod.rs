//! Tests that need more than one file of the module: test apps built from inline provider files,
//! and the token endpoint against a provider played by wiremock.

pub(super) mod apps;
mod token_endpoint;
