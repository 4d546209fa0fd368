//! Log output: human-readable by default, JSON for log pipelines (`PLUGBOARD_LOG_FORMAT=json`),
//! filtered by `RUST_LOG` (default `info`). Secrets never reach a log line: they are typed so
//! they cannot print, and spans record ids, not values.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests building several apps) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
