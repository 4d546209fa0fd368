//! Teams, their members and their API tokens: what an `ADMIN` manages. The GraphQL mutations
//! and the CLI (`bootstrap`, `service-token`) go through these functions, so both check and
//! audit alike. A team always keeps at least one `ADMIN`; a change that would leave none is
//! refused and changes nothing.

mod audit;
pub mod members;
pub mod tokens;
mod visible;

pub use members::{add_member, create_team, members, remove_member, update_member};
pub use tokens::{ApiToken, NewApiToken, create_api_token, revoke_api_token, service_tokens, viewer_tokens};
pub use visible::{audit_trail, row, scope_of, visible};
