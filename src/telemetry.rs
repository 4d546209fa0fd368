//! Log output: human-readable by default, JSON for log pipelines (`PLUGBOARD_LOG_FORMAT=json`),
//! filtered by `RUST_LOG` (default `info`). Secrets never reach a log line: they are typed so
//! they cannot print, and spans record ids, not values.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter without `RUST_LOG`, or with one that cannot be read.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn";

pub fn init(format: LogFormat) {
    let (filter, unreadable) = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => match EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(err) => (EnvFilter::new(DEFAULT_FILTER), Some(err.to_string())),
        },
        _ => (EnvFilter::new(DEFAULT_FILTER), None),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests building several apps) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Some(err) = unreadable {
        tracing::warn!(error = %err, default = DEFAULT_FILTER, "RUST_LOG cannot be read; logging with the default filter instead");
    }
}
