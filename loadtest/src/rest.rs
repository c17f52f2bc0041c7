//! The REST arm: the same workload sent through memberd's gateway (`/v1`, JSON over HTTP/1.1)
//! instead of straight to the ledger's gRPC port, so what the gateway adds (routing, JSON,
//! authentication, authorization, audit) is measured end to end.

use crate::stats::Outcome;
use crate::workload::report_first;
use anyhow::{Context, Result};
use loyalty_common::error::ErrorCode;
use loyalty_proto::ledger::v1::{EarnRequest, WalletRef};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::json;
use std::time::Duration;

/// A pooled HTTP client to one gateway, with the run's credential.
#[derive(Clone)]
pub struct RestConn {
    http: reqwest::Client,
    base: String,
    authorization: Option<HeaderValue>,
}

impl RestConn {
    /// `base` is the gateway's loopback URL, e.g. `http://127.0.0.1:8080`. The client keeps one
    /// connection per concurrent request (HTTP/1.1 keep-alive).
    pub fn new(base: &str, request_timeout: Duration, token: Option<&str>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        let authorization = token
            .filter(|t| !t.is_empty())
            .map(|t| HeaderValue::try_from(format!("Bearer {t}")))
            .transpose()
            .context("--token must be ASCII")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            authorization,
        })
    }

    fn post(&self, wallet: &WalletRef, action: &str, key: &str) -> reqwest::RequestBuilder {
        let url = format!(
            "{}/v1/tenants/{}/members/{}/{action}",
            self.base, wallet.tenant_id, wallet.member_id
        );
        self.authorized(self.http.post(url).header("idempotency-key", key))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    /// Opens a wallet; an error says what the gateway answered.
    pub async fn open_wallet(&self, wallet: &WalletRef, key: &str) -> Result<()> {
        let response = self.post(wallet, "wallet", key).send().await?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("{status}: {body}");
        }
        Ok(())
    }

    /// Sends one earn as the REST API takes it.
    pub async fn earn(&self, request: EarnRequest) -> Outcome {
        let Some(wallet) = &request.wallet else {
            return Outcome::Error("earn-without-wallet".into());
        };
        let lines: Vec<_> = request
            .lines
            .iter()
            .map(|l| json!({"sku": l.sku, "category": l.category, "amount": l.amount}))
            .collect();
        let body = json!({
            "order_id": request.order_id,
            "order_total": request.order_total,
            "lines": lines,
        });
        let sent = self
            .post(wallet, "earnings", &request.idempotency_key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                // Read the whole reply, as a client would.
                match response.bytes().await {
                    Ok(_) => Outcome::Ok,
                    Err(e) => transport_error(&e),
                }
            }
            Ok(response) => classify(response).await,
            Err(e) => transport_error(&e),
        }
    }

    /// Issues a coupon of `template` to `member` under `key`; its code.
    pub async fn issue_coupon(
        &self,
        tenant: &str,
        template: &str,
        member: &str,
        key: &str,
    ) -> Result<String> {
        let url = format!(
            "{}/v1/tenants/{tenant}/coupon-templates/{template}/coupons",
            self.base
        );
        let request = self.http.post(url).header("idempotency-key", key);
        let response = self
            .authorized(request)
            .json(&json!({"member_id": member}))
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("{status}: {body}");
        }
        let coupon: serde_json::Value = serde_json::from_str(&body).context("a coupon")?;
        coupon["code"]
            .as_str()
            .map(String::from)
            .context("a coupon without its code")
    }

    /// The till's checkout as the REST API takes it: the cart evaluated with `code`, then
    /// the coupon redeemed under the idempotency key `key`.
    pub async fn checkout(
        &self,
        tenant: &str,
        cart: serde_json::Value,
        code: &str,
        key: &str,
    ) -> Outcome {
        let evaluate = format!("{}/v1/tenants/{tenant}/carts/evaluations", self.base);
        let body = json!({"cart": cart, "codes": [code]});
        let sent = self.authorized(self.http.post(evaluate)).json(&body).send();
        if let Outcome::Error(kind) = Self::outcome(sent.await).await {
            return Outcome::Error(kind);
        }
        let redeem = format!("{}/v1/tenants/{tenant}/coupon-redemptions", self.base);
        let body = json!({"cart": cart, "codes": [code], "order_id": format!("o-{key}")});
        let request = self.http.post(redeem).header("idempotency-key", key);
        Self::outcome(self.authorized(request).json(&body).send().await).await
    }

    /// A reply read whole, as a client would, or what went wrong.
    async fn outcome(sent: reqwest::Result<reqwest::Response>) -> Outcome {
        match sent {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(_) => Outcome::Ok,
                Err(e) => transport_error(&e),
            },
            Ok(response) => classify(response).await,
            Err(e) => transport_error(&e),
        }
    }

    /// Reads a member's masked profile (`GET .../members/{m}/profile`), the whole reply.
    pub async fn profile(&self, tenant: &str, member: &str) -> Outcome {
        let url = format!("{}/v1/tenants/{tenant}/members/{member}/profile", self.base);
        match self.authorized(self.http.get(url)).send().await {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(_) => Outcome::Ok,
                Err(e) => transport_error(&e),
            },
            Ok(response) => classify(response).await,
            Err(e) => transport_error(&e),
        }
    }
}

fn transport_error(error: &reqwest::Error) -> Outcome {
    let kind = if error.is_timeout() {
        "http-timeout"
    } else if error.is_connect() {
        "http-connect"
    } else {
        "http-transport"
    };
    report_first(kind, &error.to_string());
    Outcome::Error(kind.into())
}

/// A refusal keyed by HTTP status and the problem's stable `code`, like the gRPC arm.
async fn classify(response: reqwest::Response) -> Outcome {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(String::from));
    if code.as_deref() == Some(ErrorCode::InsufficientPoints.as_str()) {
        return Outcome::Rejected;
    }
    let kind = match code {
        Some(code) => format!("{status}/{code}"),
        None => status.to_string(),
    };
    report_first(&kind, &text);
    Outcome::Error(kind)
}
