//! W3C trace context end to end, one process per service: the identity service, the ledger,
//! the member service and the gateway each export their spans to an OTLP/gRPC receiver run by
//! this test. A till's earn, sent to the gateway with its own `traceparent`, is one trace
//! across the gateway, the ledger and the identity service (every span a child of another
//! received span or of the till's), and the ledger's event for it reaches NATS with a
//! `traceparent` of the same trace. No span of any process holds the personal data of the
//! member registered and looked up by phone in the same run, nor a raw path.

#![allow(clippy::unwrap_used)] // Test code: a panic is a failed assertion with its location.

use loyalty_events::Envelope;
use loyalty_events::testing::NatsServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::apart::start;
use support::{http_get_with, http_post_with};

mod support;

const CREDENTIAL: &str = "dHJhY2VzLXRlc3Qtc2VydmljZS1jcmVkZW50aWFs";
/// The till's trace, and its span that sends the earn.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TILL_SPAN: &str = "00f067aa0ba902b7";
/// Alice's personal data, and the parts of it no span may hold in any spelling.
const NAME: &str = "Wong Mei-Ling";
const PHONE: &str = "13987654321";
const EMAIL: &str = "mei-ling.wong@example.cn";
const ID_NUMBER: &str = "11010119900307451X";
const PERSONAL: [&str; 5] = [
    "Mei-Ling",
    "987654321",
    "mei-ling.wong",
    "example.cn",
    "19900307451",
];
const WAIT: Duration = Duration::from_secs(60);

/// A span as the receiver got it, with the service that exported it.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    /// Its attributes and its events' names and attributes, as `key=value`.
    texts: Vec<String>,
}

/// The OTLP/gRPC trace receiver: keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Received>>>);

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn texts(attributes: &[KeyValue]) -> impl Iterator<Item = String> + '_ {
    attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, text(&kv.value)))
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(&kv.value))
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                let mut all: Vec<String> = texts(&span.attributes).collect();
                for event in &span.events {
                    all.push(event.name.clone());
                    all.extend(texts(&event.attributes));
                }
                received.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    texts: all,
                });
            }
        }
        self.0.lock().unwrap().extend(received);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on a free port; returns it with its URL.
    async fn start() -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Self::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        tokio::spawn(server);
        (receiver, url)
    }

    fn spans(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// The spans of the till's trace, once they come from each of `services` and form one
    /// tree under the till's span: every parent is the till's span or another received one.
    async fn till_trace(&self, services: &[&str]) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let spans: Vec<Received> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == TRACE_ID)
                .collect();
            let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
            let orphans: Vec<&Received> = spans
                .iter()
                .filter(|s| s.parent != TILL_SPAN && !ids.contains(s.parent.as_str()))
                .collect();
            let missing: Vec<&&str> = services
                .iter()
                .filter(|name| !spans.iter().any(|s| s.service == **name))
                .collect();
            if orphans.is_empty() && missing.is_empty() {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the till's trace is not one tree from {services:?} within {WAIT:?}: no spans \
                 from {missing:?}, spans whose parent never came: {orphans:#?}; all: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until some span of `service` has arrived.
    async fn wait_for(&self, service: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.spans().iter().any(|s| s.service == service) {
            assert!(
                Instant::now() < deadline,
                "no span from {service} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn post(http: &str, headers: &str, path: &str, key: &str, body: Value) -> Value {
    let headers = format!("{headers}Idempotency-Key: {key}\r\n");
    let (status, reply) = http_post_with(http, path, &headers, &body.to_string()).await;
    assert_eq!(status, 200, "POST {path}: {reply}");
    serde_json::from_str(&reply).unwrap()
}

/// The ledger's `earned` event for `order` on NATS, with its `traceparent` header.
async fn earned_event(nats: &NatsServer, order: &str) -> (Envelope, Option<String>) {
    let js = nats.jetstream().await;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(mut stream) = js.get_stream("LOYALTY_LEDGER").await {
            let last = stream.info().await.unwrap().state.last_sequence;
            for seq in 1..=last {
                let Ok(message) = stream.get_raw_message(seq).await else {
                    continue;
                };
                let event: Envelope = serde_json::from_slice(&message.payload).unwrap();
                if event.event_type == "loyalty.ledger.earned.v1"
                    && event.data_value()["entry"]["order_id"] == order
                {
                    let header = message
                        .headers
                        .get("traceparent")
                        .map(|v| v.as_str().to_string());
                    return (event, header);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no earned event for {order} on NATS within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earn_is_one_trace_across_the_processes_and_its_event() {
    let (receiver, otlp) = Receiver::start().await;
    let nats = NatsServer::start().await;
    let url = nats.url();
    let shared = [
        ("MEMBERD_TELEMETRY__OTLP_ENDPOINT", otlp.as_str()),
        // Spans are info-level; the exporter sends them every 100 ms, not every 5 s.
        ("MEMBERD_TELEMETRY__FILTER", "info"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("MEMBERD_EVENTS__BUS", "nats"),
        ("MEMBERD_EVENTS__NATS__URL", url.as_str()),
        ("MEMBERD_IDENTITY__SERVICE_CREDENTIAL", CREDENTIAL),
    ];
    let named = |service| ("MEMBERD_TELEMETRY__SERVICE_NAME", service);
    let identity = start("identity", &shared, &[named("memberd-identity")]).await;
    let checks = ("MEMBERD_IDENTITY_ENDPOINT", identity.addrs.grpc.as_str());
    let ledger = start("ledger", &shared, &[named("memberd-ledger"), checks]).await;
    let ledger_at = ("MEMBERD_LEDGER_ENDPOINT", ledger.addrs.grpc.as_str());
    let member = start(
        "member",
        &shared,
        &[named("memberd-member"), checks, ledger_at],
    )
    .await;
    let member_at = ("MEMBERD_MEMBER_ENDPOINT", member.addrs.grpc.as_str());
    let gateway = start(
        "gateway",
        &shared,
        &[named("memberd-gateway"), checks, ledger_at, member_at],
    )
    .await;
    let http = gateway.addrs.http.as_str();
    let token = gateway.addrs.token().await;
    let auth = format!("Authorization: Bearer {token}\r\n");

    post(
        http,
        &auth,
        "/v1/tenants",
        "tenant-acme",
        json!({"id": "acme", "name": "Acme"}),
    )
    .await;
    // Alice registers with her personal data, and is found by her phone number (in the
    // query string): both pass the gateway, the member service and the identity service.
    let alice = "/v1/tenants/acme/members/alice";
    let personal = json!({"name": NAME, "phone": PHONE, "email": EMAIL, "id_number": ID_NUMBER});
    post(
        http,
        &auth,
        &format!("{alice}/profile"),
        "register-alice",
        json!({ "personal": personal }),
    )
    .await;
    let lookup = format!("/v1/tenants/acme/member-lookup?phone={PHONE}");
    let (status, found) = http_get_with(http, &lookup, &auth).await;
    assert_eq!(status, 200, "{found}");
    post(
        http,
        &auth,
        &format!("{alice}/wallet"),
        "open-alice",
        json!({}),
    )
    .await;

    // The till's earn, in the till's trace.
    let till = format!("{auth}traceparent: 00-{TRACE_ID}-{TILL_SPAN}-01\r\n");
    let earned = post(
        http,
        &till,
        &format!("{alice}/earnings"),
        "pos-7-0001",
        json!({"order_id": "A-1001", "order_total": 25_000}),
    )
    .await;
    assert_eq!(earned["balance"]["points_available"], 250, "{earned}");

    let trace = receiver
        .till_trace(&["memberd-gateway", "memberd-ledger", "memberd-identity"])
        .await;
    let roots: Vec<&Received> = trace.iter().filter(|s| s.parent == TILL_SPAN).collect();
    assert_eq!(roots.len(), 1, "one span answers the till: {roots:#?}");
    assert_eq!(roots[0].service, "memberd-gateway");
    assert_eq!(
        roots[0].name, "POST /v1/tenants/{tenant}/members/{member}/earnings",
        "the gateway's span is named by its route template"
    );
    let ledger_span = trace
        .iter()
        .find(|s| s.service == "memberd-ledger" && s.name == "ledger.v1.LedgerService/Earn")
        .unwrap_or_else(|| panic!("the ledger's span of the earn: {trace:#?}"));

    // The event is the ledger's write, in the same trace: the header as the envelope's
    // attribute, naming the span of the ledger's call that wrote it.
    let (event, header) = earned_event(&nats, "A-1001").await;
    let header = header.expect("the earned event carries a traceparent header");
    assert_eq!(Some(&header), event.traceparent.as_ref());
    let parts: Vec<&str> = header.split('-').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(
        parts[1], TRACE_ID,
        "the event's trace is the till's: {header}"
    );
    assert_eq!(
        parts[2], ledger_span.span_id,
        "the event's parent is the ledger's call"
    );

    // No span of any process holds alice's personal data, or a path with her id in it.
    receiver.wait_for("memberd-member").await;
    let spans = receiver.spans();
    for span in &spans {
        for text in std::iter::once(&span.name).chain(&span.texts) {
            for personal in PERSONAL.iter().chain(&["/members/alice", "member-lookup?"]) {
                assert!(
                    !text.contains(personal),
                    "a span of {} holds {personal:?}: {span:#?}",
                    span.service
                );
            }
        }
    }
}
