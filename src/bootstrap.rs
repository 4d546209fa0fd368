//! Creating teams, users and tokens from the command line, and the demo team of a fresh
//! install. Idempotent: what exists is reused.

use sea_orm::DatabaseConnection;

use crate::access::{self, IssuedToken};
use crate::domain::{Actor, Email, Team, TeamName, TeamRole, User};
use crate::{store, teams};

/// The team, user and token a fresh install greets its first user with.
pub const DEMO_TEAM: &str = "Demo";
pub const DEMO_EMAIL: &str = "demo@plugboard.local";

pub struct Bootstrapped {
    pub team: Team,
    pub user: User,
    pub token: IssuedToken,
}

/// Makes sure `team` exists with `email` as a member in `role`, then issues a new user token.
pub async fn team_member(
    db: &DatabaseConnection,
    team: &TeamName,
    email: &Email,
    role: TeamRole,
) -> anyhow::Result<Bootstrapped> {
    let txn = crate::store::begin(db).await?;
    let team = match store::teams::find_by_name(&txn, team).await? {
        Some(existing) => existing,
        None => store::teams::insert(&txn, team).await?,
    };
    let user = match store::teams::find_user_by_email(&txn, email).await? {
        Some(existing) => existing,
        None => store::teams::insert_user(&txn, email).await?,
    };
    store::teams::lock(&txn, team.id).await?;
    let previous = store::teams::role_of(&txn, team.id, user.id).await?;
    teams::members::set_member(&txn, &cli_actor(), team.id, &user, role, previous)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    // A team keeps the ADMIN it has, as through the API (a new team may start with a member of
    // any role: the operator makes its ADMIN with this same command).
    if previous == Some(TeamRole::Admin) && store::teams::count_admins(&txn, team.id).await? == 0 {
        anyhow::bail!(
            "{} is the only ADMIN of team {:?}, and a team keeps at least one: make another member ADMIN first \
             (`plugboard bootstrap --team {:?} --email OTHER --role admin`); nothing was changed",
            email.as_str(),
            team.name.as_str(),
            team.name.as_str()
        );
    }
    let token = access::issue_user_token(&txn, user.id, "bootstrap", None).await?;
    txn.commit().await?;
    Ok(Bootstrapped { team, user, token })
}

/// A new service token for an existing team.
pub async fn service_token(db: &DatabaseConnection, team: &TeamName) -> anyhow::Result<IssuedToken> {
    let Some(team) = store::teams::find_by_name(db, team).await? else {
        anyhow::bail!(
            "there is no team named {:?}; create it with `plugboard bootstrap --team NAME --email EMAIL`",
            team.as_str()
        );
    };
    teams::tokens::issue_service_token(db, &cli_actor(), team.id, "service", None)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))
}

/// Who the audit trail names for changes made from the command line.
fn cli_actor() -> Actor {
    Actor::system("command line")
}

/// On an empty database, creates the `Demo` team with an admin and a token. Answers `None`
/// when the database already has teams.
pub async fn demo_if_empty(db: &DatabaseConnection) -> anyhow::Result<Option<Bootstrapped>> {
    if store::teams::count(db).await? > 0 {
        return Ok(None);
    }
    let team = TeamName::parse(DEMO_TEAM).map_err(anyhow::Error::msg)?;
    let email = Email::parse(DEMO_EMAIL).map_err(anyhow::Error::msg)?;
    team_member(db, &team, &email, TeamRole::Admin).await.map(Some)
}
