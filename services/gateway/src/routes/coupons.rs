//! Coupon templates and the coupons issued from them: templates saved as JSON (refused,
//! naming the field, when they cannot be evaluated; docs/campaigns.md), coupons issued to a
//! member or a segment under an `Idempotency-Key`, batches of bearer codes generated or
//! imported (idempotent by their batch id), and a member's coupons.

use crate::problem::{ApiError, IdempotencyKeyHeader, JsonBody, Problem, QueryParams};
use crate::routes::TenantPath;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use loyalty_common::ServiceError;
use loyalty_common::ids::TenantId;
use loyalty_proto::campaign::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type Reply<T> = Result<Json<T>, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(put_template, get_template))
        .routes(routes!(issue))
        .routes(routes!(issue_to_segment))
        .routes(routes!(generate))
        .routes(routes!(import))
        .routes(routes!(get_coupon))
        .routes(routes!(member_coupons))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TemplatePath {
    tenant: String,
    /// 1 to 64 of letters, digits, `- _ .`.
    template: String,
}

impl TemplatePath {
    fn tenant(&self) -> Result<String, ApiError> {
        Ok(TenantId::parse(&self.tenant)?.to_string())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDto {
    /// The template as saved (docs/campaigns.md gives its fields).
    #[schema(value_type = Object)]
    template: serde_json::Value,
    version: u64,
}

fn template_dto(t: pb::Template) -> Result<TemplateDto, ApiError> {
    let template = serde_json::from_str(&t.json).map_err(ServiceError::internal)?;
    Ok(TemplateDto {
        template,
        version: t.version,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PutQuery {
    /// The version read (0 for a new template): refused with `VERSION_CONFLICT` if it
    /// changed since. Absent, the template is written whatever its version.
    expected_version: Option<u64>,
}

/// The tenant's coupon templates.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/coupon-templates", tag = "coupons",
    params(TenantPath),
    responses((status = 200, body = [TemplateDto]), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_templates(
    State(s): State<AppState>,
    Path(p): Path<TenantPath>,
) -> Reply<Vec<TemplateDto>> {
    let tenant_id = TenantId::parse(&p.tenant)?.to_string();
    let templates = s
        .campaigns()?
        .list_templates(pb::TenantRef { tenant_id })
        .await?;
    Ok(Json(
        templates
            .templates
            .into_iter()
            .map(template_dto)
            .collect::<Result<_, _>>()?,
    ))
}

/// Saves a coupon template: what it gives, on what, to whom, when, how often, and with
/// which other coupons. The body's `id` must be the path's.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/coupon-templates/{template}", tag = "coupons",
    params(TemplatePath, PutQuery), request_body(content = Object, description = "The template"),
    responses((status = 200, body = TemplateDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_template(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    QueryParams(q): QueryParams<PutQuery>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Reply<TemplateDto> {
    if body.get("id").and_then(|v| v.as_str()) != Some(p.template.as_str()) {
        return Err(ServiceError::invalid("id: must be the template named in the path").into());
    }
    let request = pb::PutTemplateRequest {
        tenant_id: p.tenant()?,
        json: body.to_string(),
        expected_version: q.expected_version,
    };
    Ok(Json(template_dto(
        s.campaigns()?.put_template(request).await?,
    )?))
}

/// A coupon template.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/coupon-templates/{template}", tag = "coupons",
    params(TemplatePath),
    responses((status = 200, body = TemplateDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_template(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
) -> Reply<TemplateDto> {
    let request = pb::TemplateRef {
        tenant_id: p.tenant()?,
        template_id: p.template.clone(),
    };
    Ok(Json(template_dto(
        s.campaigns()?.get_template(request).await?,
    )?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponDto {
    /// Upper case, no separators; print it in groups of four if you like.
    code: String,
    template_id: String,
    /// Absent: a bearer code, usable by whoever presents it.
    member_id: Option<String>,
    issued_at: i64,
    valid_from: i64,
    /// Exclusive (Unix milliseconds).
    valid_until: i64,
    batch: Option<String>,
}

pub(crate) fn coupon_dto(c: pb::Coupon) -> CouponDto {
    CouponDto {
        code: c.code,
        template_id: c.template_id,
        member_id: Some(c.member_id).filter(|m| !m.is_empty()),
        issued_at: c.issued_at_ms,
        valid_from: c.valid_from_ms,
        valid_until: c.valid_until_ms,
        batch: Some(c.batch).filter(|b| !b.is_empty()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct IssueBody {
    member_id: String,
}

/// Issues a coupon of the template to a member; the same `Idempotency-Key` answers with
/// the coupon it issued.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/coupon-templates/{template}/coupons", tag = "coupons",
    params(TemplatePath, ("Idempotency-Key" = String, Header)), request_body = IssueBody,
    responses((status = 200, body = CouponDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn issue(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<IssueBody>,
) -> Reply<CouponDto> {
    let request = pb::IssueCouponRequest {
        tenant_id: p.tenant()?,
        template_id: p.template.clone(),
        member_id: body.member_id,
        issue_key: key.to_string(),
    };
    Ok(Json(coupon_dto(
        s.campaigns()?.issue_coupon(request).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SegmentIssueBody {
    segment: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedDto {
    /// Coupons this request added.
    added: u64,
    /// Coupons an earlier request with the same key (or batch) had added.
    already: u64,
    /// Imported codes the tenant holds under another batch: not imported.
    taken: Vec<String>,
}

fn issued_dto(r: pb::IssueResult) -> IssuedDto {
    IssuedDto {
        added: r.added,
        already: r.already,
        taken: r.taken,
    }
}

/// Issues a coupon of the template to every member of a segment (as of its last refresh),
/// once per member for the `Idempotency-Key`: a retry adds only what is missing.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/coupon-templates/{template}/segment-issues", tag = "coupons",
    params(TemplatePath, ("Idempotency-Key" = String, Header)), request_body = SegmentIssueBody,
    responses((status = 200, body = IssuedDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn issue_to_segment(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<SegmentIssueBody>,
) -> Reply<IssuedDto> {
    let request = pb::IssueToSegmentRequest {
        tenant_id: p.tenant()?,
        template_id: p.template.clone(),
        segment_code: body.segment,
        issue_key: key.to_string(),
    };
    Ok(Json(issued_dto(
        s.campaigns()?.issue_to_segment(request).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BatchBody {
    /// The batch's id: the same id and count answer with the codes made before.
    batch: String,
    /// Up to 8 characters of the code alphabet, put before every code.
    #[serde(default)]
    prefix: String,
    /// 1 to 10,000 (`memberd coupons generate` makes up to 1,000,000 into a CSV file).
    count: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeneratedDto {
    codes: Vec<String>,
    added: u64,
    already: u64,
}

/// Generates a batch of bearer codes: unguessable, with a check character, without
/// ambiguous characters (0 O 1 I L U), unique in the tenant.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/coupon-templates/{template}/batches", tag = "coupons",
    params(TemplatePath), request_body = BatchBody,
    responses((status = 200, body = GeneratedDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn generate(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    JsonBody(body): JsonBody<BatchBody>,
) -> Reply<GeneratedDto> {
    let request = pb::GenerateCodesRequest {
        tenant_id: p.tenant()?,
        template_id: p.template.clone(),
        batch: body.batch,
        prefix: body.prefix,
        count: body.count,
    };
    let generated = s.campaigns()?.generate_codes(request).await?;
    Ok(Json(GeneratedDto {
        codes: generated.codes,
        added: generated.added,
        already: generated.already,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportBody {
    batch: String,
    /// Codes printed elsewhere: 4 to 64 letters and digits each (spaces and dashes are
    /// ignored, letters upper-cased).
    codes: Vec<String>,
}

/// Imports codes printed elsewhere as bearer coupons of the template.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/coupon-templates/{template}/imports", tag = "coupons",
    params(TemplatePath), request_body = ImportBody,
    responses((status = 200, body = IssuedDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn import(
    State(s): State<AppState>,
    Path(p): Path<TemplatePath>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Reply<IssuedDto> {
    let request = pb::ImportCodesRequest {
        tenant_id: p.tenant()?,
        template_id: p.template.clone(),
        batch: body.batch,
        codes: body.codes,
    };
    Ok(Json(issued_dto(
        s.campaigns()?.import_codes(request).await?,
    )))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CouponPath {
    tenant: String,
    /// As typed or scanned: case and dashes do not matter.
    code: String,
}

/// A coupon by its code.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/coupons/{code}", tag = "coupons",
    params(CouponPath),
    responses((status = 200, body = CouponDto), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_coupon(State(s): State<AppState>, Path(p): Path<CouponPath>) -> Reply<CouponDto> {
    let request = pb::CouponRef {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        code: p.code,
    };
    Ok(Json(coupon_dto(s.campaigns()?.get_coupon(request).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberCouponsPath {
    tenant: String,
    member: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// The last code of the previous page.
    after: Option<String>,
    /// 1 to 1000; 100 by default.
    limit: Option<u32>,
}

/// The coupons a member holds, by code.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/members/{member}/coupons", tag = "coupons",
    params(MemberCouponsPath, PageQuery),
    responses((status = 200, body = [CouponDto]), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn member_coupons(
    State(s): State<AppState>,
    Path(p): Path<MemberCouponsPath>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Reply<Vec<CouponDto>> {
    let request = pb::ListMemberCouponsRequest {
        tenant_id: TenantId::parse(&p.tenant)?.to_string(),
        member_id: p.member,
        after: q.after.unwrap_or_default(),
        limit: q.limit.unwrap_or(0),
    };
    let coupons = s.campaigns()?.list_member_coupons(request).await?;
    Ok(Json(coupons.coupons.into_iter().map(coupon_dto).collect()))
}
