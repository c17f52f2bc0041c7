//! One error model: a small set of stable codes, mapped once to gRPC status and once to HTTP.
//!
//! Callers tell errors apart by [`ErrorCode`], never by message text. The code travels in the
//! gRPC metadata key [`CODE_METADATA_KEY`] so a remote caller rebuilds the same error.

use std::fmt;

/// gRPC metadata key carrying the stable error code.
pub const CODE_METADATA_KEY: &str = "x-error-code";

macro_rules! error_codes {
    ($($variant:ident => $text:literal, $grpc:ident, $http:literal, $title:literal;)*) => {
        /// Stable, documented error codes. Never renumber or rename one: partners match on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire form, e.g. `INSUFFICIENT_POINTS`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text),* }
            }

            /// The gRPC status code this error maps to.
            pub fn grpc(self) -> tonic::Code {
                match self { $(ErrorCode::$variant => tonic::Code::$grpc),* }
            }

            /// The HTTP status this error maps to.
            pub fn http(self) -> http::StatusCode {
                match self {
                    $(ErrorCode::$variant => http::StatusCode::from_u16($http)
                        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)),*
                }
            }

            /// A short human title for problem+json.
            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title),* }
            }

            /// Parses the wire form back into a code.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    InvalidArgument => "INVALID_ARGUMENT", InvalidArgument, 400, "The request is invalid";
    MalformedBody => "MALFORMED_BODY", InvalidArgument, 400, "The body is not valid JSON for this operation";
    PayloadTooLarge => "PAYLOAD_TOO_LARGE", InvalidArgument, 413, "The body is too large";
    IdempotencyKeyMissing => "IDEMPOTENCY_KEY_MISSING", InvalidArgument, 400, "An Idempotency-Key is required";
    IdempotencyConflict => "IDEMPOTENCY_CONFLICT", AlreadyExists, 409, "The idempotency key was used with another body";
    AlreadyApplied => "ALREADY_APPLIED", AlreadyExists, 409, "The request was applied already; what it showed once is not kept";
    Unauthenticated => "UNAUTHENTICATED", Unauthenticated, 401, "Authentication is required";
    WalletNotFound => "WALLET_NOT_FOUND", NotFound, 404, "No wallet for this member";
    EntryNotFound => "ENTRY_NOT_FOUND", NotFound, 404, "No such ledger entry";
    HoldNotFound => "HOLD_NOT_FOUND", NotFound, 404, "No such hold";
    RulesNotFound => "RULES_NOT_FOUND", NotFound, 404, "No earning rules for this tenant";
    RouteNotFound => "ROUTE_NOT_FOUND", NotFound, 404, "No such route";
    InsufficientPoints => "INSUFFICIENT_POINTS", FailedPrecondition, 422, "Not enough available points";
    InsufficientStoredValue => "INSUFFICIENT_STORED_VALUE", FailedPrecondition, 422, "Not enough stored value";
    HoldNotActive => "HOLD_NOT_ACTIVE", FailedPrecondition, 409, "The hold was already captured, voided or expired";
    NotReversible => "NOT_REVERSIBLE", FailedPrecondition, 422, "This entry cannot be reversed";
    ReversalExceedsOriginal => "REVERSAL_EXCEEDS_ORIGINAL", FailedPrecondition, 422, "The reversal exceeds what is left of the original";
    VersionConflict => "VERSION_CONFLICT", Aborted, 409, "The resource changed; retry";
    AmountOverflow => "AMOUNT_OVERFLOW", OutOfRange, 422, "The amount would overflow";
    Unavailable => "UNAVAILABLE", Unavailable, 503, "The service is unavailable; retry later";
    RegionFenced => "REGION_FENCED", Unavailable, 503, "This region may not write the tenant now; retry";
    RegionMoving => "REGION_MOVING", Unavailable, 503, "The tenant's home region is moving; retry";
    NotHomeRegion => "NOT_HOME_REGION", Unavailable, 503, "This region is not the tenant's home; retry";
    NoHomeRegion => "NO_HOME_REGION", Unavailable, 503, "The tenant has no home region yet";
    Internal => "INTERNAL", Internal, 500, "Internal error";
    Forbidden => "FORBIDDEN", PermissionDenied, 403, "The caller's roles do not allow this";
    InvalidCredentials => "INVALID_CREDENTIALS", Unauthenticated, 401, "The username, password or code is wrong";
    AccountLocked => "ACCOUNT_LOCKED", FailedPrecondition, 423, "The account is locked after too many failed logins";
    TotpRequired => "TOTP_REQUIRED", Unauthenticated, 401, "A one-time code from the authenticator app is required";
    PasswordPolicy => "PASSWORD_POLICY", InvalidArgument, 422, "The password does not meet the policy";
    AlreadyExists => "ALREADY_EXISTS", AlreadyExists, 409, "It exists already";
    NotFound => "NOT_FOUND", NotFound, 404, "No such resource";
    MemberNotFound => "MEMBER_NOT_FOUND", NotFound, 404, "No such member";
    DuplicateMember => "DUPLICATE_MEMBER", AlreadyExists, 409, "Another member of the tenant has this phone, email or ID number";
    MemberErased => "MEMBER_ERASED", FailedPrecondition, 410, "The member's personal data was erased";
    MemberMerged => "MEMBER_MERGED", FailedPrecondition, 409, "The member was merged into another";
    MergeNotFound => "MERGE_NOT_FOUND", NotFound, 404, "No such merge";
    SegmentNotFound => "SEGMENT_NOT_FOUND", NotFound, 404, "No such segment";
    SegmentNotRefreshed => "SEGMENT_NOT_REFRESHED", FailedPrecondition, 409, "The segment has not been refreshed yet";
    TierPolicyNotFound => "TIER_POLICY_NOT_FOUND", NotFound, 404, "The tenant has no tier policy";
    NoPendingTierChange => "NO_PENDING_TIER_CHANGE", NotFound, 404, "The member has no tier change awaiting approval";
    OrderConflict => "ORDER_CONFLICT", AlreadyExists, 409, "An order with this id was recorded with other details";
    RateLimited => "RATE_LIMITED", ResourceExhausted, 429, "Too many requests; retry later";
    TemplateNotFound => "TEMPLATE_NOT_FOUND", NotFound, 404, "No such coupon template";
    CouponNotFound => "COUPON_NOT_FOUND", NotFound, 404, "No such coupon code";
    CodeTaken => "CODE_TAKEN", AlreadyExists, 409, "The tenant has a coupon with this code";
    CouponNotApplicable => "COUPON_NOT_APPLICABLE", FailedPrecondition, 422, "A coupon does not apply to this cart";
    CouponLimitReached => "COUPON_LIMIT_REACHED", FailedPrecondition, 409, "A coupon's use limit is reached";
    RedemptionNotFound => "REDEMPTION_NOT_FOUND", NotFound, 404, "No such coupon redemption";
    RedemptionNotActive => "REDEMPTION_NOT_ACTIVE", FailedPrecondition, 409, "The redemption is not in a state that allows this";
    SaleNotFound => "SALE_NOT_FOUND", NotFound, 404, "No such flash sale";
    SaleNotOpen => "SALE_NOT_OPEN", FailedPrecondition, 409, "The flash sale has not started or has ended";
    SoldOut => "SOLD_OUT", FailedPrecondition, 409, "No unit is left in the member's quota";
    SaleNotEligible => "SALE_NOT_ELIGIBLE", FailedPrecondition, 422, "The flash sale has no quota for the member's tier";
    ClaimLimitReached => "CLAIM_LIMIT_REACHED", FailedPrecondition, 409, "The member holds or bought as many units as the sale allows";
    ClaimNotFound => "CLAIM_NOT_FOUND", NotFound, 404, "No such flash-sale claim";
    ClaimNotActive => "CLAIM_NOT_ACTIVE", FailedPrecondition, 409, "The claim is not held any more (confirmed, released or lapsed)";
    CampaignNotFound => "CAMPAIGN_NOT_FOUND", NotFound, 404, "No such campaign";
    CampaignStateConflict => "CAMPAIGN_STATE_CONFLICT", FailedPrecondition, 409, "The campaign's state does not allow this step";
    ApproverIsMaker => "APPROVER_IS_MAKER", PermissionDenied, 403, "A campaign is approved by someone other than who wrote or submitted it";
    CampaignNotRunning => "CAMPAIGN_NOT_RUNNING", FailedPrecondition, 409, "The campaign is not running now";
    BudgetExhausted => "BUDGET_EXHAUSTED", FailedPrecondition, 409, "The campaign's budget has too little left";
    NotInAudience => "NOT_IN_AUDIENCE", FailedPrecondition, 422, "The member is not in the campaign's audience";
    FrequencyCapReached => "FREQUENCY_CAP_REACHED", FailedPrecondition, 409, "The member was rewarded by this campaign as often as it allows";
    ReferralCodeNotFound => "REFERRAL_CODE_NOT_FOUND", NotFound, 404, "No member holds this referral code";
    SelfReferral => "SELF_REFERRAL", FailedPrecondition, 422, "A member cannot be referred by its own code, nor under a phone, email or ID number its holder presented";
    ReferralExists => "REFERRAL_EXISTS", FailedPrecondition, 409, "The member was referred in this campaign by another member already";
    ReferralNotEligible => "REFERRAL_NOT_ELIGIBLE", FailedPrecondition, 422, "A referee is a member who has not ordered yet";
    MallItemNotFound => "MALL_ITEM_NOT_FOUND", NotFound, 404, "No such item in the points mall";
    MallItemNotAvailable => "MALL_ITEM_NOT_AVAILABLE", FailedPrecondition, 409, "The item is not offered now, at this store or this way";
    MallNotEligible => "MALL_NOT_ELIGIBLE", FailedPrecondition, 422, "The item is not for members of this tier";
    MallLimitReached => "MALL_LIMIT_REACHED", FailedPrecondition, 409, "The member ordered as many of this item as its limit allows in this period";
    MallOrderNotFound => "MALL_ORDER_NOT_FOUND", NotFound, 404, "No such points-mall order";
    MallOrderNotActive => "MALL_ORDER_NOT_ACTIVE", FailedPrecondition, 409, "The order's state does not allow this step";
    PickupCodeMismatch => "PICKUP_CODE_MISMATCH", FailedPrecondition, 422, "The pick-up code is not this order's";
    DrawNotFound => "DRAW_NOT_FOUND", NotFound, 404, "No such lucky draw";
    DrawNotOpen => "DRAW_NOT_OPEN", FailedPrecondition, 409, "The lucky draw has not started or has ended";
    DrawLimitReached => "DRAW_LIMIT_REACHED", FailedPrecondition, 409, "The member entered the draw as often as it allows in this period";
    DrawEntryNotFound => "DRAW_ENTRY_NOT_FOUND", NotFound, 404, "No such entry in the lucky draw";
}

/// A service error: a stable code, a message safe to show a caller (no PII), and the cause.
#[derive(Debug, thiserror::Error)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// An internal failure; the cause is kept for logs, the caller sees a generic message.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            source: Some(source.into()),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(err: ServiceError) -> Self {
        if err.code == ErrorCode::Internal {
            tracing::error!(error = %error_chain(&err), "internal error");
        }
        let mut status = tonic::Status::new(err.code.grpc(), err.message);
        if let Ok(value) = err.code.as_str().parse() {
            status.metadata_mut().insert(CODE_METADATA_KEY, value);
        }
        status
    }
}

impl From<tonic::Status> for ServiceError {
    fn from(status: tonic::Status) -> Self {
        let code = status
            .metadata()
            .get(CODE_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorCode::parse)
            .unwrap_or(match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => ErrorCode::Unavailable,
                tonic::Code::InvalidArgument => ErrorCode::InvalidArgument,
                tonic::Code::Unauthenticated => ErrorCode::Unauthenticated,
                _ => ErrorCode::Internal,
            });
        ServiceError::new(code, status.message().to_string())
    }
}

/// The error and its causes on one line, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
/// Shorthand for results in service code.
pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_grpc_status() {
        for &code in ErrorCode::ALL {
            let status: tonic::Status = ServiceError::new(code, "m").into();
            assert_eq!(status.code(), code.grpc());
            assert_eq!(ServiceError::from(status).code, code);
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!(code.http().as_u16() >= 400);
        }
    }
}
