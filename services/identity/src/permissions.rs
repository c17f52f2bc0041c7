//! The permission vocabulary: an object (a kind of resource) and an action. Routes and gRPC
//! methods name the permission they need from here, so the one table that maps them, and the
//! role definitions in [`crate::rbac`], speak the same words.

/// Reading or changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Write,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    pub object: &'static str,
    pub action: Action,
}

const fn read(object: &'static str) -> Permission {
    Permission {
        object,
        action: Action::Read,
    }
}

const fn write(object: &'static str) -> Permission {
    Permission {
        object,
        action: Action::Write,
    }
}

/// Balances, history, expiring points.
pub const WALLET_READ: Permission = read("ledger.wallet");
/// Opening wallets, earning, redeeming, reversals, transfers, stored value.
pub const WALLET_WRITE: Permission = write("ledger.wallet");
/// Manual adjustments with a reason.
pub const ADJUST: Permission = write("ledger.adjust");
pub const RULES_READ: Permission = read("ledger.rules");
pub const RULES_WRITE: Permission = write("ledger.rules");
pub const MEMBER_READ: Permission = read("member");
pub const MEMBER_WRITE: Permission = write("member");
/// Reading personal data unmasked (every such read is audited).
pub const PII_READ: Permission = read("member.pii");
/// Recording orders (tills, shops): they earn points and count towards tiers.
pub const ORDERS_WRITE: Permission = write("member.orders");
/// The programme's member rules: tier and scoring policies, segments, tier approvals.
pub const PROGRAM_WRITE: Permission = write("member.program");
pub const STAFF_READ: Permission = read("identity.staff");
pub const STAFF_WRITE: Permission = write("identity.staff");
pub const ROLES_WRITE: Permission = write("identity.roles");
pub const API_KEYS_WRITE: Permission = write("identity.api_keys");
pub const AUDIT_READ: Permission = read("audit");
/// Creating tenants: the platform's own staff only.
pub const TENANT_WRITE: Permission = write("tenant");
pub const TENANT_READ: Permission = read("tenant");
/// A tenant's brands and stores.
pub const STORES_WRITE: Permission = write("tenant.stores");
/// A tenant's security policy (password rules, lockout, second factor).
pub const POLICY_WRITE: Permission = write("tenant.policy");

/// Coupon templates, coupons and redemptions, and evaluating a cart against them.
pub const COUPONS_READ: Permission = read("campaign.coupons");
/// Saving templates and issuing coupons (to members, segments, batches, imports).
pub const COUPONS_WRITE: Permission = write("campaign.coupons");
/// Redeeming coupons at the till: holds, confirmations, releases, undoing on a return.
pub const REDEEM: Permission = write("campaign.redeem");
/// Reading flash sales and the units taken and left per quota.
pub const SALES_READ: Permission = read("campaign.sales");
/// Creating flash sales: head office, like saving coupon templates.
pub const SALES_WRITE: Permission = write("campaign.sales");
/// Reading flash-sale claims.
pub const CLAIMS_READ: Permission = read("campaign.claims");
/// Claiming a flash-sale unit for a member, confirming or releasing the claim: tills and
/// e-shops, like redeeming coupons.
pub const CLAIMS_WRITE: Permission = write("campaign.claims");
/// Reading campaigns, their dry runs and budgets.
pub const CAMPAIGNS_READ: Permission = read("campaign.campaigns");
/// Writing campaigns and moving them along (submit, pause, resume, end, broadcast): head
/// office's marketing staff.
pub const CAMPAIGNS_WRITE: Permission = write("campaign.campaigns");
/// Approving or rejecting a submitted campaign: the checker of maker-checker, who must be
/// someone other than its maker.
pub const CAMPAIGN_APPROVALS: Permission = write("campaign.approvals");
/// Rewarding one member from a running campaign (a partner's marketing automation firing a
/// trigger), once per key.
pub const CAMPAIGN_REWARDS: Permission = write("campaign.rewards");
/// Reading members' referrals.
pub const REFERRALS_READ: Permission = read("campaign.referrals");
/// Making a member's referral code and recording a new member's referral (an app's sign-up).
pub const REFERRALS_WRITE: Permission = write("campaign.referrals");
/// Reading the points mall's items, their stock left.
pub const MALL_READ: Permission = read("campaign.mall");
/// Writing the points mall's items: head office, like coupon templates.
pub const MALL_WRITE: Permission = write("campaign.mall");
/// Reading points-mall orders.
pub const MALL_ORDERS_READ: Permission = read("campaign.mall_orders");
/// Placing orders for members and moving them on (confirm, ready, fulfil, cancel, return):
/// members' apps, tills, stores handing gifts over, the ERP and logistics partners.
pub const MALL_ORDERS_WRITE: Permission = write("campaign.mall_orders");
/// Reading lucky draws, what they awarded, and their seeds once they have ended.
pub const DRAWS_READ: Permission = read("campaign.draws");
/// Creating lucky draws: head office.
pub const DRAWS_WRITE: Permission = write("campaign.draws");
/// Reading draw entries with what decided them.
pub const DRAW_ENTRIES_READ: Permission = read("campaign.draw_entries");
/// Entering members in draws: members' apps.
pub const DRAW_ENTRIES_WRITE: Permission = write("campaign.draw_entries");

/// Every permission, for reading one back from its words (e.g. off the wire).
pub const ALL: &[Permission] = &[
    WALLET_READ,
    WALLET_WRITE,
    ADJUST,
    RULES_READ,
    RULES_WRITE,
    MEMBER_READ,
    MEMBER_WRITE,
    PII_READ,
    ORDERS_WRITE,
    PROGRAM_WRITE,
    STAFF_READ,
    STAFF_WRITE,
    ROLES_WRITE,
    API_KEYS_WRITE,
    AUDIT_READ,
    TENANT_WRITE,
    TENANT_READ,
    STORES_WRITE,
    POLICY_WRITE,
    COUPONS_READ,
    COUPONS_WRITE,
    REDEEM,
    SALES_READ,
    SALES_WRITE,
    CLAIMS_READ,
    CLAIMS_WRITE,
    CAMPAIGNS_READ,
    CAMPAIGNS_WRITE,
    CAMPAIGN_APPROVALS,
    CAMPAIGN_REWARDS,
    REFERRALS_READ,
    REFERRALS_WRITE,
    MALL_READ,
    MALL_WRITE,
    MALL_ORDERS_READ,
    MALL_ORDERS_WRITE,
    DRAWS_READ,
    DRAWS_WRITE,
    DRAW_ENTRIES_READ,
    DRAW_ENTRIES_WRITE,
];

/// The permission named by `object` and `action` (`read` or `write`), if there is one.
pub fn parse(object: &str, action: &str) -> Option<Permission> {
    ALL.iter()
        .find(|p| p.object == object && p.action.as_str() == action)
        .copied()
}
