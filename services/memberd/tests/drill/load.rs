//! The drill's load: clients that send earns, redemptions, transfers and coupon redemptions
//! through the global address, each with an idempotency key of its own, and retry one with
//! the same key until it is answered for good (as a till does), logging every outcome and
//! every refusal.

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a client keeps retrying one write before it gives up on knowing its outcome.
const RETRY_FOR: Duration = Duration::from_secs(25);
/// The pause between a client's writes, and between its retries.
const PACE: Duration = Duration::from_millis(20);
const BACK_OFF: Duration = Duration::from_millis(150);
/// How often an RTO probe sends a fresh write, and how long one may take.
const PROBE_EVERY: Duration = Duration::from_millis(100);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// In every probe write's key.
const PROBE_KEY: &str = "-probe-";

/// The coupon template every tenant gets at set-up: single-use codes, issued to a member
/// just before each coupon redemption.
pub const COUPON_TEMPLATE: &str = "DRILL";

/// [`COUPON_TEMPLATE`]'s body.
pub fn coupon_template() -> Value {
    json!({"id": COUPON_TEMPLATE, "name": "10% off",
        "benefit": {"type": "percent_off", "basis_points": 1000},
        "validity": {"days_from_issue": {"days": 30}},
        "uses_per_code": 1, "stacking": {"mode": "exclusive"}})
}

/// A tenant the load writes to, and its members.
pub struct Target {
    pub tenant: String,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Earn,
    Redeem,
    Transfer,
    /// A coupon issued to the member, then redeemed at a till (the logged write).
    Coupon,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered 2xx: applied (or replayed).
    Acked,
    /// Answered with a final refusal, such as INSUFFICIENT_POINTS.
    Refused(String),
    /// Not answered for good within [`RETRY_FOR`]: applied or not, nobody knows yet.
    Unknown,
}

/// One write as the client saw it. Times are since the drill's start.
#[derive(Debug, Clone)]
pub struct Sent {
    pub tenant: usize,
    pub kind: Kind,
    pub key: String,
    pub from: String,
    /// When its first attempt was sent, and when it was answered for good.
    pub sent_at: Duration,
    pub answered_at: Duration,
    pub outcome: Outcome,
    /// The entries an acknowledgement named: (member, entry id).
    pub entries: Vec<(String, String)>,
    pub attempts: u32,
    pub replayed: bool,
    /// A coupon redemption's code.
    pub coupon: Option<String>,
    /// The region that gave the final answer (`Answered-In-Region`).
    pub answered_in: Option<String>,
    /// A final refusal's `detail`.
    pub detail: Option<String>,
}

/// A write's final answer, or the lack of one.
pub struct Reply {
    pub outcome: Outcome,
    pub body: Value,
    pub attempts: u32,
    pub region: Option<String>,
}

/// An answer that said "not now": its code (a region's refusal such as `REGION_FENCED`,
/// or `UNAVAILABLE`), `HTTP <status>` without one, or `no answer`.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub tenant: usize,
    /// The write's idempotency key.
    pub key: String,
    pub at: Duration,
    pub code: String,
}

#[derive(Default)]
pub struct Log {
    pub sent: Vec<Sent>,
    pub refusals: Vec<Refusal>,
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub started: Instant,
}

impl Sent {
    /// `key`'s write of `kind` by member `from` of target `tenant`, sent at `sent_at` and
    /// answered for good now with `reply`, which named `entries`.
    fn answered(
        client: &Client,
        (tenant, kind, key, from): (usize, Kind, String, String),
        sent_at: Duration,
        reply: Reply,
        entries: Vec<(String, String)>,
        coupon: Option<String>,
    ) -> Self {
        Self {
            tenant,
            kind,
            key,
            from,
            sent_at,
            answered_at: client.started.elapsed(),
            replayed: reply.body["replayed"].as_bool().unwrap_or(false),
            outcome: reply.outcome,
            entries,
            attempts: reply.attempts,
            coupon,
            answered_in: reply.region,
            detail: reply.body["detail"].as_str().map(str::to_string),
        }
    }

    /// One of the RTO probe's writes ([`probe`]), not the load's.
    pub fn is_probe(&self) -> bool {
        self.key.contains(PROBE_KEY)
    }
}

impl Refusal {
    pub fn is_probe(&self) -> bool {
        self.key.contains(PROBE_KEY)
    }
}

/// What one attempt's answer means for the client.
enum Answer {
    /// The outcome, the body, and the region that answered (`Answered-In-Region`).
    Final(Outcome, Value, Option<String>),
    Retry(String),
}

impl Client {
    async fn attempt(&self, path: &str, key: &str, body: &Value) -> Answer {
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        let Ok(answer) = sent else {
            return Answer::Retry("no answer".into());
        };
        let status = answer.status().as_u16();
        let region = answer
            .headers()
            .get("answered-in-region")
            .and_then(|r| r.to_str().ok())
            .map(str::to_string);
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        let code = body["code"].as_str().unwrap_or_default().to_string();
        match (status, code.as_str()) {
            (200..=299, _) => Answer::Final(Outcome::Acked, body, region),
            // Busy, unavailable, cut off, or changed under this attempt.
            (409 | 429 | 500..=599, "") => Answer::Retry(format!("HTTP {status}")),
            (409, "VERSION_CONFLICT") | (429 | 500..=599, _) => Answer::Retry(code),
            _ => Answer::Final(Outcome::Refused(code), body, region),
        }
    }

    /// Sends one write until it is answered for good, or [`RETRY_FOR`] has passed.
    pub async fn send(
        &self,
        tenant: usize,
        path: &str,
        key: &str,
        body: Value,
        log: &Mutex<Log>,
    ) -> Reply {
        let first = Instant::now();
        let mut attempts = 0;
        while first.elapsed() < RETRY_FOR {
            attempts += 1;
            match self.attempt(path, key, &body).await {
                Answer::Final(outcome, body, region) => {
                    return Reply {
                        outcome,
                        body,
                        attempts,
                        region,
                    };
                }
                Answer::Retry(code) => {
                    let at = self.started.elapsed();
                    let key = key.to_string();
                    let refusal = Refusal {
                        tenant,
                        key,
                        at,
                        code,
                    };
                    log.lock().unwrap().refusals.push(refusal);
                    tokio::time::sleep(BACK_OFF).await;
                }
            }
        }
        Reply {
            outcome: Outcome::Unknown,
            body: Value::Null,
            attempts,
            region: None,
        }
    }
}

fn entry_id(entry: &Value) -> Option<String> {
    entry["entry_id"].as_str().map(str::to_string)
}

/// One client's writes until `stop`, all for one tenant (`id` modulo the tenants), so that a
/// tenant whose home is lost holds up no other tenant's writes.
pub async fn run(
    id: usize,
    client: Arc<Client>,
    targets: Arc<Vec<Target>>,
    mut stop: watch::Receiver<bool>,
    log: Arc<Mutex<Log>>,
) {
    let mut n = 0usize;
    while !*stop.borrow_and_update() {
        n += 1;
        let tenant = id % targets.len();
        let target = &targets[tenant];
        let members = &target.members;
        let from = members[(id * 7 + n * 3) % members.len()].clone();
        let to = members[(id * 7 + n * 3 + 1) % members.len()].clone();
        let key = format!("drill-{}-{id}-{n}", target.tenant);
        let member_path = format!("/v1/tenants/{}/members/{from}", target.tenant);
        let tenant_path = format!("/v1/tenants/{}", target.tenant);
        let (kind, path, body, coupon) = match n % 4 {
            0 => (
                Kind::Earn,
                format!("{member_path}/adjustments"),
                json!({"points": 10, "reason": key}),
                None,
            ),
            1 => (
                Kind::Redeem,
                format!("{member_path}/redemptions"),
                json!({"points": 7, "reference": key, "capture": true}),
                None,
            ),
            2 => (
                Kind::Transfer,
                format!("{tenant_path}/transfers"),
                json!({"from_member_id": from, "to_member_id": to, "points": 3}),
                None,
            ),
            _ => {
                let issue = format!("{tenant_path}/coupon-templates/{COUPON_TEMPLATE}/coupons");
                let (issue_key, to_whom) = (format!("{key}-issue"), json!({"member_id": from}));
                let sent_at = client.started.elapsed();
                let issued = client.send(tenant, &issue, &issue_key, to_whom, &log).await;
                let code = issued.body["code"].as_str();
                let Some(code) = code.filter(|_| issued.outcome == Outcome::Acked) else {
                    // Not issued: the issue is what the log keeps.
                    let what = (tenant, Kind::Coupon, issue_key, from);
                    let sent = Sent::answered(&client, what, sent_at, issued, Vec::new(), None);
                    log.lock().unwrap().sent.push(sent);
                    tokio::time::sleep(PACE).await;
                    continue;
                };
                let cart = json!({"member_id": from, "store_id": "s01", "lines": [
                    {"line_id": "1", "sku": "RICE", "category": "food", "quantity": 2,
                     "unit_price": 1500}]});
                (
                    Kind::Coupon,
                    format!("{tenant_path}/coupon-redemptions"),
                    json!({"cart": cart, "codes": [code], "order_id": key}),
                    Some(code.to_string()),
                )
            }
        };
        let sent_at = client.started.elapsed();
        let reply = client.send(tenant, &path, &key, body, &log).await;
        let answer = &reply.body;
        let entries = match kind {
            Kind::Transfer => [(&from, "debit"), (&to, "credit")]
                .into_iter()
                .filter_map(|(member, side)| Some((member.clone(), entry_id(&answer[side])?)))
                .collect(),
            Kind::Coupon => Vec::new(),
            _ => answer["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| Some((from.clone(), entry_id(e)?)))
                .collect(),
        };
        let sent = Sent::answered(
            &client,
            (tenant, kind, key, from),
            sent_at,
            reply,
            entries,
            coupon,
        );
        log.lock().unwrap().sent.push(sent);
        tokio::time::sleep(PACE).await;
    }
}

/// One tenant's RTO probe after a loss: a fresh earn of 1 point to its first member every
/// [`PROBE_EVERY`], each with a key of its own and one attempt (a new customer at a till, not
/// a retry), on schedule whether the last was answered or not, until one is acknowledged or
/// `limit` has passed. The load's clients retry their own writes with their keys, and a
/// write under way at the loss may hold its client up for a while; the RTO is when a new
/// write gets through. Each is logged as the load's writes are: acknowledged, refused for
/// good, or unknown (answered "not now", or not within [`PROBE_TIMEOUT`]), so the wallet
/// checks count it too.
pub async fn probe(
    client: Arc<Client>,
    tenant: usize,
    target: &Target,
    log: Arc<Mutex<Log>>,
    limit: Duration,
) {
    let (name, member) = (&target.tenant, target.members[0].clone());
    let path = format!("/v1/tenants/{name}/members/{member}/adjustments");
    let mut sent = tokio::task::JoinSet::new();
    let mut every = tokio::time::interval(PROBE_EVERY);
    let begun = Instant::now();
    for n in 0.. {
        every.tick().await;
        let done = log
            .lock()
            .unwrap()
            .sent
            .iter()
            .any(|s| s.tenant == tenant && s.outcome == Outcome::Acked && s.is_probe());
        if done || begun.elapsed() > limit {
            break;
        }
        let (client, log, path, member) = (
            Arc::clone(&client),
            Arc::clone(&log),
            path.clone(),
            member.clone(),
        );
        let key = format!("drill-{name}{PROBE_KEY}{n}");
        sent.spawn(async move {
            let body = json!({"points": 1, "reason": key});
            let sent_at = client.started.elapsed();
            let attempt = tokio::time::timeout(PROBE_TIMEOUT, client.attempt(&path, &key, &body));
            let (outcome, answer, region) = match attempt.await {
                Ok(Answer::Final(outcome, answer, region)) => (outcome, answer, region),
                Ok(Answer::Retry(code)) => {
                    let at = client.started.elapsed();
                    let refusal = Refusal {
                        tenant,
                        key: key.clone(),
                        at,
                        code,
                    };
                    log.lock().unwrap().refusals.push(refusal);
                    (Outcome::Unknown, Value::Null, None)
                }
                Err(_) => (Outcome::Unknown, Value::Null, None),
            };
            let entries = answer["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| Some((member.clone(), entry_id(e)?)))
                .collect();
            let reply = Reply {
                outcome,
                body: answer,
                attempts: 1,
                region,
            };
            let what = (tenant, Kind::Earn, key, member);
            let sent = Sent::answered(&client, what, sent_at, reply, entries, None);
            log.lock().unwrap().sent.push(sent);
        });
    }
    sent.join_all().await;
}
