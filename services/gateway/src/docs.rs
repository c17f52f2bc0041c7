//! The OpenAPI document and a self-contained page to browse it (no scripts from elsewhere).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "memberd REST API", description = "Membership and loyalty platform: points and stored value. \
Every POST needs an Idempotency-Key header; errors are RFC 9457 problem+json with a stable `code`."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "ledger", description = "Points: earn, redeem, reverse, adjust, transfer, balances, history"),
         (name = "stored value", description = "Top-ups with bonus, spends, refunds"),
         (name = "rules", description = "Per-tenant earning rules, versioned"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// A small page that renders `/v1/openapi.json`: operations, parameters and schemas.
pub const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>memberd API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#1d2330}
h1{font-size:1.5rem}h2{margin-top:2rem;border-bottom:1px solid #ddd}
.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.4rem .8rem}
.m{display:inline-block;min-width:3.5rem;font-weight:600;color:#fff;border-radius:4px;padding:0 .4rem;text-align:center}
.get{background:#2b7bb9}.post{background:#2f9e44}.put{background:#e67700}.delete{background:#c92a2a}
code,pre{background:#f4f5f7;border-radius:4px;padding:0 .3rem}pre{padding:.5rem;overflow:auto}
summary{cursor:pointer}
</style></head><body>
<h1>memberd REST API</h1><p id="desc"></p><p>Machine-readable: <a href="/v1/openapi.json">/v1/openapi.json</a></p>
<div id="ops"></div><h2>Schemas</h2><div id="schemas"></div>
<script>
const esc = s => String(s ?? '').replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const ref = r => r && r.$ref ? r.$ref.split('/').pop() : (r && r.type) || '';
fetch('/v1/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('desc').textContent = doc.info.description || '';
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) {
    (byTag[(op.tags || ['other'])[0]] ||= []).push({path, method, op});
  }
  let html = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    html += `<h2>${esc(tag)}</h2>`;
    for (const {path, method, op} of ops) {
      const params = (op.parameters || []).map(p => `<li><code>${esc(p.name)}</code> (${esc(p.in)}${p.required ? ', required' : ''}) ${esc(p.description)}</li>`).join('');
      const body = op.requestBody ? ref(Object.values(op.requestBody.content)[0].schema) : '';
      const resp = Object.entries(op.responses || {}).map(([code, r]) => `<li>${esc(code)}: ${esc(r.content ? ref(Object.values(r.content)[0].schema) : r.description)}</li>`).join('');
      html += `<details class="op"><summary><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code> ${esc(op.summary || '')}</summary>
        <p>${esc(op.description || '')}</p>${params ? `<b>Parameters</b><ul>${params}</ul>` : ''}
        ${body ? `<b>Body</b>: <a href="#s-${esc(body)}">${esc(body)}</a>` : ''}<b>Responses</b><ul>${resp}</ul></details>`;
    }
  }
  document.getElementById('ops').innerHTML = html;
  document.getElementById('schemas').innerHTML = Object.entries(doc.components.schemas).map(([name, s]) =>
    `<details class="op" id="s-${esc(name)}"><summary><code>${esc(name)}</code> ${esc(s.description || '')}</summary><pre>${esc(JSON.stringify(s, null, 2))}</pre></details>`).join('');
});
</script></body></html>"##;
