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
use loyalty_identity::checks::{Act, Caller};
use loyalty_identity::credential;
use loyalty_identity::service::Principal;
use loyalty_proto::member::v1 as pb;
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

impl From<pb::Profile> for ProfileDto {
    fn from(p: pb::Profile) -> Self {
        let q = p.personal.unwrap_or_default();
        let consents = p.consents.unwrap_or_default();
        Self {
            member_id: p.member_id,
            personal: PersonalDto {
                name: q.name.map(Into::into),
                gender: q.gender.map(Into::into),
                birthday: q.birthday.map(Into::into),
                phone: q.phone.map(Into::into),
                email: q.email.map(Into::into),
                id_number: q.id_number.map(Into::into),
                address: q.address.map(Into::into),
            },
            channel: given(p.channel),
            store: given(p.store),
            consents: ConsentsDto {
                sms: consents.sms,
                email: consents.email,
                app: consents.app,
            },
            attributes: p.attributes.into_iter().collect(),
            tags: p.tags,
            tier: given(p.tier),
            created_at: p.created_at_ms,
            updated_at: p.updated_at_ms,
        }
    }
}

/// None for an empty string (the wire's "none").
pub(crate) fn given(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

impl From<PersonalDto> for pb::Personal {
    fn from(q: PersonalDto) -> Self {
        let plain = |value: Option<PersonalData>| value.map(PersonalData::into_exposed);
        Self {
            name: plain(q.name),
            gender: plain(q.gender),
            birthday: plain(q.birthday),
            phone: plain(q.phone),
            email: plain(q.email),
            id_number: plain(q.id_number),
            address: plain(q.address),
        }
    }
}

impl From<ConsentsDto> for pb::Consents {
    fn from(c: ConsentsDto) -> Self {
        Self {
            sms: c.sms,
            email: c.email,
            app: c.app,
        }
    }
}

impl ProfileBody {
    fn request(self, tenant: &TenantId, member: &MemberId) -> pb::RegisterMemberRequest {
        pb::RegisterMemberRequest {
            member: Some(member_ref(tenant, member)),
            personal: Some(self.personal.into()),
            channel: self.channel.unwrap_or_default(),
            store: self.store.unwrap_or_default(),
            consents: Some(self.consents.into()),
            attributes: self.attributes.into_iter().collect(),
            tags: self.tags,
        }
    }
}

pub(crate) fn member_ref(tenant: &TenantId, member: &MemberId) -> pb::MemberRef {
    pb::MemberRef {
        tenant_id: tenant.to_string(),
        member_id: member.to_string(),
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
    let request = body.request(&tenant, &member);
    Ok(Json(s.members().register_member(request).await?.into()))
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

impl PatchBody {
    /// Fields given a value are set; the others named (cleared, or not a profile field,
    /// which the member service refuses by name) are cleared.
    fn request(self, tenant: &TenantId, member: &MemberId) -> pb::UpdateProfileRequest {
        let mut personal = pb::Personal::default();
        let mut clear_personal = Vec::new();
        for (name, value) in self.personal {
            let field = match name.as_str() {
                "name" => &mut personal.name,
                "gender" => &mut personal.gender,
                "birthday" => &mut personal.birthday,
                "phone" => &mut personal.phone,
                "email" => &mut personal.email,
                "id_number" => &mut personal.id_number,
                "address" => &mut personal.address,
                _ => {
                    clear_personal.push(name);
                    continue;
                }
            };
            match value {
                Some(value) => *field = Some(value.into_exposed()),
                None => clear_personal.push(name),
            }
        }
        let (set, removed): (Vec<_>, Vec<_>) =
            self.attributes.into_iter().partition(|(_, v)| v.is_some());
        pb::UpdateProfileRequest {
            member: Some(member_ref(tenant, member)),
            personal: Some(personal),
            clear_personal,
            consents: self.consents.map(Into::into),
            set_attributes: set
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
            remove_attributes: removed.into_iter().map(|(k, _)| k).collect(),
        }
    }
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
    let request = body.request(&tenant, &member);
    Ok(Json(s.members().update_profile(request).await?.into()))
}

/// A member's profile with personal data masked (`138****5678`).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/profile", tag = "members",
    params(MemberPath),
    responses((status = 200, body = ProfileDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn profile(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ProfileDto> {
    let (tenant, member) = p.ids()?;
    let profile = s
        .members()
        .get_profile(member_ref(&tenant, &member))
        .await?;
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
    let result = s
        .members()
        .get_profile_unmasked(member_ref(&tenant, &member))
        .await;
    let outcome = match &result {
        Ok(_) => Outcome::Allowed,
        Err(e) => Outcome::Failed(e.code.as_str().into()),
    };
    let request_id = request_id(&headers);
    let credential = credential::from_headers(&headers)?;
    let caller = Caller {
        principal: &who,
        credential,
    };
    let act = Act {
        tenant: tenant.as_str(),
        action: "member.read_unmasked",
        target: &format!("member:{tenant}/{member}"),
        outcome,
        request_id: &request_id,
    };
    // Recorded before the data leaves: no unaudited unmasked read.
    s.identity().record(caller, act).await?;
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
    let request = pb::TagMemberRequest {
        member: Some(member_ref(&tenant, &member)),
        add: body.add,
        remove: body.remove,
    };
    Ok(Json(s.members().tag_member(request).await?.into()))
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

impl From<pb::ErasureStatus> for ErasureDto {
    fn from(s: pb::ErasureStatus) -> Self {
        Self {
            member_id: s.member_id,
            state: s.state,
            requested_at: time(s.requested_at_ms),
            completed_at: time(s.completed_at_ms),
            due_by: time(s.due_by_ms),
        }
    }
}

/// None for a zero time (the wire's "none").
pub(crate) fn time(ms: i64) -> Option<i64> {
    (ms != 0).then_some(ms)
}

/// Erases a member's personal data (crypto-shredding) at once; the member id, wallet and
/// orders stay under it as a pseudonym. Erasing again changes nothing.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/members/{member}/erasure", tag = "members",
    params(MemberPath, ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = ErasureDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn erase(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ErasureDto> {
    let (tenant, member) = p.ids()?;
    let status = s
        .members()
        .erase_member(member_ref(&tenant, &member))
        .await?;
    Ok(Json(status.into()))
}

/// Where a member's erasure stands.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/erasure", tag = "members",
    params(MemberPath),
    responses((status = 200, body = ErasureDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn erasure_status(State(s): State<AppState>, Path(p): Path<MemberPath>) -> Reply<ErasureDto> {
    let (tenant, member) = p.ids()?;
    let r = member_ref(&tenant, &member);
    Ok(Json(s.members().get_erasure_status(r).await?.into()))
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
    use pb::find_member_request::By;
    let tenant = TenantId::parse(&p.tenant)?;
    let by = match (q.phone, q.email, q.id_number) {
        (Some(v), None, None) => By::Phone(v),
        (None, Some(v), None) => By::Email(v),
        (None, None, Some(v)) => By::IdNumber(v),
        _ => {
            return Err(
                ServiceError::invalid("give exactly one of phone, email or id_number").into(),
            );
        }
    };
    let request = pb::FindMemberRequest {
        tenant_id: tenant.to_string(),
        by: Some(by),
    };
    let found = s.members().find_member(request).await?;
    Ok(Json(LookupDto {
        member_id: found.member_id,
    }))
}
