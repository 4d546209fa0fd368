//! Teams, users and memberships.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, sea_query::OnConflict,
};

use super::entities::{membership, team, user};
use crate::domain::{Email, Member, Team, TeamId, TeamName, TeamRole, User, UserId};

fn to_team(model: team::Model) -> Result<Team, DbErr> {
    Ok(Team {
        id: model.id,
        name: TeamName::parse(&model.name).map_err(DbErr::Custom)?,
        created_at: model.created_at,
    })
}

fn to_user(model: user::Model) -> Result<User, DbErr> {
    Ok(User {
        id: model.id,
        email: Email::parse(&model.email).map_err(DbErr::Custom)?,
        created_at: model.created_at,
    })
}

pub async fn count(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    team::Entity::find().count(db).await
}

pub async fn find(db: &impl ConnectionTrait, id: TeamId) -> Result<Option<Team>, DbErr> {
    team::Entity::find_by_id(id).one(db).await?.map(to_team).transpose()
}

pub async fn find_by_name(db: &impl ConnectionTrait, name: &TeamName) -> Result<Option<Team>, DbErr> {
    team::Entity::find().filter(team::Column::Name.eq(name.as_str())).one(db).await?.map(to_team).transpose()
}

pub async fn insert(db: &impl ConnectionTrait, name: &TeamName) -> Result<Team, DbErr> {
    let model = team::ActiveModel {
        id: Set(TeamId::new()),
        name: Set(name.as_str().to_owned()),
        created_at: Set(Utc::now()),
    };
    to_team(team::Entity::insert(model).exec_with_returning(db).await?)
}

pub async fn find_user_by_email(db: &impl ConnectionTrait, email: &Email) -> Result<Option<User>, DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
        .map(to_user)
        .transpose()
}

pub async fn find_user(db: &impl ConnectionTrait, id: UserId) -> Result<Option<User>, DbErr> {
    user::Entity::find_by_id(id).one(db).await?.map(to_user).transpose()
}

pub async fn insert_user(db: &impl ConnectionTrait, email: &Email) -> Result<User, DbErr> {
    let model = user::ActiveModel {
        id: Set(UserId::new()),
        email: Set(email.as_str().to_owned()),
        created_at: Set(Utc::now()),
        oidc_subject: Set(None),
    };
    to_user(user::Entity::insert(model).exec_with_returning(db).await?)
}

/// Makes `user` a member of `team` with `role`, replacing any earlier role.
pub async fn set_membership(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    user_id: UserId,
    role: TeamRole,
) -> Result<(), DbErr> {
    let model = membership::ActiveModel {
        team_id: Set(team_id),
        user_id: Set(user_id),
        role: Set(role),
        created_at: Set(Utc::now()),
    };
    membership::Entity::insert(model)
        .on_conflict(
            OnConflict::columns([membership::Column::TeamId, membership::Column::UserId])
                .update_column(membership::Column::Role)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

pub async fn role_of(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    user_id: UserId,
) -> Result<Option<TeamRole>, DbErr> {
    Ok(membership::Entity::find_by_id((team_id, user_id)).one(db).await?.map(|m| m.role))
}

/// The teams a user belongs to, by name, with the user's role in each.
pub async fn teams_of_user(
    db: &impl ConnectionTrait,
    user_id: UserId,
) -> Result<Vec<(Team, TeamRole)>, DbErr> {
    let memberships =
        membership::Entity::find().filter(membership::Column::UserId.eq(user_id)).all(db).await?;
    let ids: Vec<TeamId> = memberships.iter().map(|m| m.team_id).collect();
    let teams = team::Entity::find()
        .filter(team::Column::Id.is_in(ids))
        .order_by_asc(team::Column::Name)
        .all(db)
        .await?;
    teams
        .into_iter()
        .map(|model| {
            let role = memberships
                .iter()
                .find(|m| m.team_id == model.id)
                .map(|m| m.role)
                .ok_or_else(|| DbErr::Custom("membership vanished while reading".into()))?;
            Ok((to_team(model)?, role))
        })
        .collect()
}

/// The team's members, by e-mail.
pub async fn members(db: &impl ConnectionTrait, team_id: TeamId) -> Result<Vec<Member>, DbErr> {
    let memberships =
        membership::Entity::find().filter(membership::Column::TeamId.eq(team_id)).all(db).await?;
    let ids: Vec<UserId> = memberships.iter().map(|m| m.user_id).collect();
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::Email)
        .all(db)
        .await?;
    users
        .into_iter()
        .map(|model| {
            let membership = memberships
                .iter()
                .find(|m| m.user_id == model.id)
                .ok_or_else(|| DbErr::Custom("membership vanished while reading".into()))?;
            Ok(Member { role: membership.role, since: membership.created_at, user: to_user(model)? })
        })
        .collect()
}

/// Ends a membership; answers whether there was one.
pub async fn remove_membership(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    user_id: UserId,
) -> Result<bool, DbErr> {
    let done = membership::Entity::delete_by_id((team_id, user_id)).exec(db).await?;
    Ok(done.rows_affected > 0)
}

pub async fn count_admins(db: &impl ConnectionTrait, team_id: TeamId) -> Result<u64, DbErr> {
    membership::Entity::find()
        .filter(membership::Column::TeamId.eq(team_id))
        .filter(membership::Column::Role.eq(TeamRole::Admin))
        .count(db)
        .await
}

/// Takes the team's write lock for the rest of the transaction, so that two concurrent changes
/// to its members are checked one after the other (the last `ADMIN` cannot be removed twice).
/// Answers false when the team does not exist.
pub async fn lock(db: &impl ConnectionTrait, team_id: TeamId) -> Result<bool, DbErr> {
    let done = team::Entity::update_many()
        .col_expr(team::Column::Name, sea_orm::sea_query::Expr::col(team::Column::Name))
        .filter(team::Column::Id.eq(team_id))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// The user who signs in through the identity provider as `subject`.
pub async fn find_user_by_subject(db: &impl ConnectionTrait, subject: &str) -> Result<Option<User>, DbErr> {
    user::Entity::find().filter(user::Column::OidcSubject.eq(subject)).one(db).await?.map(to_user).transpose()
}

/// Links an existing user to the identity provider's `subject`.
pub async fn set_subject(db: &impl ConnectionTrait, user_id: UserId, subject: &str) -> Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(user::Column::OidcSubject, sea_orm::sea_query::Expr::value(subject.to_owned()))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The user with `email`, created when missing; safe when two requests create them at once.
pub async fn find_or_insert_user(db: &impl ConnectionTrait, email: &Email) -> Result<User, DbErr> {
    if let Some(user) = find_user_by_email(db, email).await? {
        return Ok(user);
    }
    let model = user::ActiveModel {
        id: Set(UserId::new()),
        email: Set(email.as_str().to_owned()),
        created_at: Set(Utc::now()),
        oidc_subject: Set(None),
    };
    user::Entity::insert(model)
        .on_conflict(OnConflict::column(user::Column::Email).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    find_user_by_email(db, email)
        .await?
        .ok_or_else(|| DbErr::Custom("a user vanished as it was created".into()))
}
