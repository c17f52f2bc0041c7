//! Member profiles: registration, reads masked by default, the unmasked read (its own route,
//! permission `member.pii` read, audited), lookup by phone, email or ID number, and erasure.

use crate::problem::{ApiError, JsonBody, Problem, QueryParams};
use crate::routes::{TenantPath, request_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use loyalty_common::ServiceError;
use loyalty_common::ids::{MemberId, TenantId};
use loyalty_common::personal::PersonalData;
use loyalty_identity::audit::Outcome;
use loyalty_identity::service::Principal;
use loyalty_member::profile::{Consents, IndexKind, Personal, Profile};
use loyalty_member::service::{ErasureState, ErasureStatus, ProfileInput, ProfilePatch, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register, profile, update))
        .routes(routes!(profile_unmasked))
        .routes(routes!(erase, erasure_status))
        .routes(routes!(tag))
        .routes(routes!(lookup))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    tenant: String,
    member: String,
}

impl MemberPath {
    pub(crate) fn ids(&self) -> Result<(TenantId, MemberId), ApiError> {
        Ok((
            TenantId::parse(&self.tenant)?,
            MemberId::parse(&self.member)?,
        ))
    }
}

/// Personal data: sealed at rest, masked unless read through the unmasked route.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct PersonalDto {
    #[schema(value_type = Option<String>)]
    name: Option<PersonalData>,
    #[schema(value_type = Option<String>)]
    gender: Option<PersonalData>,
    /// `YYYY-MM-DD`.
    #[schema(value_type = Option<String>)]
    birthday: Option<PersonalData>,
    #[schema(value_type = Option<String>)]
    phone: Option<PersonalData>,
    #[schema(value_type = Option<String>)]
    email: Option<PersonalData>,
    #[schema(value_type = Option<String>)]
    id_number: Option<PersonalData>,
    #[schema(value_type = Option<String>)]
    address: Option<PersonalData>,
}

#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct ConsentsDto {
    #[serde(default)]
    sms: bool,
    #[serde(default)]
    email: bool,
    #[serde(default)]
    app: bool,
}

impl From<ConsentsDto> for Consents {
    fn from(c: ConsentsDto) -> Self {
        Self {
            sms: c.sms,
            email: c.email,
            app: c.app,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ProfileBody {
    #[serde(default)]
    personal: PersonalDto,
    channel: Option<String>,
    store: Option<String>,
    #[serde(default)]
    consents: ConsentsDto,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    /// Tags to start with (1 to 64 of `a-z 0-9 - _ :`).
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileDto {
    member_id: String,
    personal: PersonalDto,
    channel: Option<String>,
    store: Option<String>,
    consents: ConsentsDto,
    attributes: BTreeMap<String, String>,
    tags: Vec<String>,
    /// The member's tier code, if it has one.
    tier: Option<String>,
    /// Unix milliseconds, UTC.
    created_at: i64,
    updated_at: i64,
}

impl From<Profile> for ProfileDto {
    fn from(p: Profile) -> Self {
        let q = p.personal;
        Self {
            member_id: p.member_id,
            personal: PersonalDto {
                name: q.name,
                gender: q.gender,
                birthday: q.birthday,
                phone: q.phone,
                email: q.email,
                id_number: q.id_number,
                address: q.address,
            },
            channel: p.channel,
            store: p.store,
            consents: ConsentsDto {
                sms: p.consents.sms,
                email: p.consents.email,
                app: p.consents.app,
            },
            attributes: p.attributes,
            tags: p.tags.into_iter().collect(),
            tier: p.tier,
            created_at: p.created_at.0,
            updated_at: p.updated_at.0,
        }
    }
}

impl From<ProfileBody> for ProfileInput {
    fn from(b: ProfileBody) -> Self {
        let q = b.personal;
        Self {
            personal: Personal {
                name: q.name,
                gender: q.gender,
                birthday: q.birthday,
                phone: q.phone,
                email: q.email,
                id_number: q.id_number,
                address: q.address,
            },
            channel: b.channel,
            store: b.store,
            consents: b.consents.into(),
            attributes: b.attributes,
            tags: b.tags.into_iter().collect(),
        }
    }
}

/// Registers a member; `409 DUPLICATE_MEMBER` if another member of the tenant has its phone,
/// email or ID number. The reply is masked.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/profile", tag = "members",
    params(MemberPath, ("Idempotency-Key" = String, Header)), request_body = ProfileBody,
    responses((status = 200, body = ProfileDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn register(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Reply<ProfileDto> {
    let (tenant, member) = p.ids()?;
    // Registration hands back the profile it wrote, in the clear: masked here, not read again.
    let mut profile = s.members().register(&tenant, &member, body.into()).await?;
    profile.personal = profile.personal.masked();
    Ok(Json(profile.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PatchBody {
    /// Personal fields to set; `null` clears one. Fields left out are kept.
    #[serde(default)]
    #[schema(value_type = Object)]
    personal: BTreeMap<String, Option<PersonalData>>,
    consents: Option<ConsentsDto>,
    /// Attributes to set; `null` removes one.
    #[serde(default)]
    #[schema(value_type = Object)]
    attributes: BTreeMap<String, Option<String>>,
}

/// Changes the given fields of a member's profile; `409 DUPLICATE_MEMBER` if a new phone,
/// email or ID number belongs to another member. The reply is masked.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/members/{member}/profile", tag = "members",
    params(MemberPath), request_body = PatchBody,
    responses((status = 200, body = ProfileDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Reply<ProfileDto> {
    let (tenant, member) = p.ids()?;
    let patch = ProfilePatch {
        personal: body.personal,
        consents: body.consents.map(Into::into),
        attributes: body.attributes,
    };
    Ok(Json(
        s.members().update(&tenant, &member, patch).await?.into(),
    ))
}

/// A member's profile with personal data masked (`138****5678`).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/profile", tag = "members",
    params(MemberPath),
    responses((status = 200, body = ProfileDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn profile(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ProfileDto> {
    let (tenant, member) = p.ids()?;
    let profile = s.members().profile(&tenant, &member, View::Masked).await?;
    Ok(Json(profile.into()))
}

/// A member's profile in the clear: needs `member.pii` read, and every read is audited.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/profile/unmasked", tag = "members",
    params(MemberPath),
    responses((status = 200, body = ProfileDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn profile_unmasked(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(p): Path<MemberPath>,
) -> Reply<ProfileDto> {
    let (tenant, member) = p.ids()?;
    let result = s.members().profile(&tenant, &member, View::Unmasked).await;
    let outcome = match &result {
        Ok(_) => Outcome::Allowed,
        Err(e) => Outcome::Failed(e.code.as_str().into()),
    };
    let request_id = request_id(&headers);
    // Recorded before the data leaves: no unaudited unmasked read.
    s.identity()
        .record(
            &who,
            tenant.as_str(),
            "member.read_unmasked",
            &format!("member:{tenant}/{member}"),
            outcome,
            &request_id,
        )
        .await?;
    Ok(Json(result?.into()))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TagsBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// Adds and removes a member's tags (1 to 64 of `a-z 0-9 - _ :`); the profile, masked.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/tags", tag = "members",
    params(MemberPath, ("Idempotency-Key" = String, Header)), request_body = TagsBody,
    responses((status = 200, body = ProfileDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn tag(
    State(s): State<AppState>,
    Path(p): Path<MemberPath>,
    JsonBody(body): JsonBody<TagsBody>,
) -> Reply<ProfileDto> {
    let (tenant, member) = p.ids()?;
    let profile = s
        .members()
        .tag(&tenant, &member, &body.add, &body.remove)
        .await?;
    Ok(Json(profile.into()))
}

/// Where a member's erasure stands. Times are Unix milliseconds, UTC.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureDto {
    member_id: String,
    /// `none` (never requested) or `completed`.
    state: String,
    requested_at: Option<i64>,
    completed_at: Option<i64>,
    /// The configured deadline after the request (`member.erasure_deadline_days`).
    due_by: Option<i64>,
}

impl From<ErasureStatus> for ErasureDto {
    fn from(s: ErasureStatus) -> Self {
        Self {
            member_id: s.member,
            state: match s.state {
                ErasureState::None => "none",
                ErasureState::Completed => "completed",
            }
            .into(),
            requested_at: s.requested_at.map(|t| t.0),
            completed_at: s.completed_at.map(|t| t.0),
            due_by: s.due_by.map(|t| t.0),
        }
    }
}

/// Erases a member's personal data (crypto-shredding) at once; the member id, wallet and
/// orders stay under it as a pseudonym. Erasing again changes nothing.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/erasure", tag = "members",
    params(MemberPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = ErasureDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn erase(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ErasureDto> {
    let (tenant, member) = p.ids()?;
    Ok(Json(s.members().erase(&tenant, &member).await?.into()))
}

/// Where a member's erasure stands.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/erasure", tag = "members",
    params(MemberPath),
    responses((status = 200, body = ErasureDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn erasure_status(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ErasureDto> {
    let (tenant, member) = p.ids()?;
    Ok(Json(
        s.members().erasure_status(&tenant, &member).await?.into(),
    ))
}

/// Exactly one of them.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    phone: Option<String>,
    email: Option<String>,
    id_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupDto {
    member_id: String,
}

/// The member of the tenant with this phone, email or ID number (any spelling).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/member-lookup", tag = "members",
    params(TenantPath, LookupQuery),
    responses((status = 200, body = LookupDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn lookup(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
    QueryParams(q): QueryParams<LookupQuery>,
) -> Reply<LookupDto> {
    let tenant = TenantId::parse(&p.tenant)?;
    let (kind, value) = match (q.phone, q.email, q.id_number) {
        (Some(v), None, None) => (IndexKind::Phone, v),
        (None, Some(v), None) => (IndexKind::Email, v),
        (None, None, Some(v)) => (IndexKind::IdNumber, v),
        _ => {
            return Err(
                ServiceError::invalid("give exactly one of phone, email or id_number").into(),
            );
        }
    };
    let member = s
        .members()
        .find(&tenant, kind, &value)
        .await?
        .ok_or_else(|| {
            ServiceError::new(
                loyalty_common::error::ErrorCode::MemberNotFound,
                format!("no member of {tenant} has this {}", kind.label()),
            )
        })?;
    Ok(Json(LookupDto { member_id: member }))
}
