//! The scenarios: a-e of issue 8 and f, the proxy (issue 17), one module each. Every scenario prints its figures as it goes
//! and answers the summary lines it ends with.

pub mod fanout;
pub mod fanout_clients;
mod fanout_crowd;
mod fanout_floor;
pub mod list;
mod list_load;
pub mod list_peers;
pub mod proxy;
pub mod refresh;
pub mod rotation;
pub mod sweep;
