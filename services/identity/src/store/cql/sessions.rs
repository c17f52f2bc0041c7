//! Login sessions: one partition each, written with a TTL to a day past their expiry (an
//! expired session is of no use, but for a day it still reads as expired rather than
//! unknown). A revoked session is also listed in `revoked_sessions` under the day it expires,
//! and that day in `revoked_session_days`, both before the session is written and with the
//! same lifetime, so every replica can read the revocations still in force.

use super::rows::{ALL, cql_version, day_of, end_of_day, id_blob, ttl_secs, versioned_row};
use super::{IN_CHUNK, PAGE_SIZE, ScyllaIdentityStore, applied};
use crate::model::Session;
use crate::store::{Applied, SessionRepository};
use async_trait::async_trait;
use loyalty_common::Timestamp;
use loyalty_common::error::ServiceResult;
use loyalty_common::ids::SessionId;

/// How long a session's rows outlive its expiry.
const GRACE_SECS: i64 = 86_400;

#[async_trait]
impl SessionRepository for ScyllaIdentityStore {
    async fn session(&self, id: SessionId) -> ServiceResult<Option<Session>> {
        let st = self.statements();
        self.get_versioned(&st.session, id_blob(id.0)).await
    }

    async fn put_session(&self, session: &Session) -> ServiceResult<Applied> {
        let st = self.statements();
        let now = self.inner.clock.now();
        let id = id_blob(session.id.0);
        let ttl = ttl_secs(session.expires_at, now, GRACE_SECS);
        if session.revoked_at.is_some() {
            // Listed first, so no revocation is ever missing from the list; one whose write
            // did not apply is filtered out by the readers, who check the session itself.
            let day = day_of(session.expires_at);
            let day_ttl = ttl_secs(end_of_day(day), now, GRACE_SECS);
            st.list_revoked_day
                .run(self.session(), (ALL.to_string(), day, day_ttl))
                .await?;
            st.list_revoked_session
                .run(self.session(), (day, id.clone(), ttl))
                .await?;
        }
        let (version, body) = versioned_row(session)?;
        let yes = match session.version {
            0 => false,
            1 => {
                st.insert_session
                    .applied(self.session(), (id, version, body, ttl))
                    .await?
            }
            read => {
                let read = cql_version(read - 1)?;
                st.update_session
                    .applied(self.session(), (ttl, version, body, id, read))
                    .await?
            }
        };
        Ok(applied(yes))
    }

    async fn revoked_sessions(&self, now: Timestamp) -> ServiceResult<Vec<SessionId>> {
        let st = self.statements();
        let days: Vec<i32> = st
            .revoked_days_from
            .all_pages(self.session(), (ALL.to_string(), day_of(now)), PAGE_SIZE)
            .await?
            .into_iter()
            .map(|(day,)| day)
            .collect();
        let mut ids = Vec::new();
        for chunk in days.chunks(IN_CHUNK) {
            for (id,) in st
                .revoked_on_days
                .all_pages(self.session(), (chunk.to_vec(),), PAGE_SIZE)
                .await?
            {
                ids.push(id);
            }
        }
        ids.sort();
        ids.dedup();
        let sessions: Vec<Session> = self.get_many(&st.sessions_in, ids).await?;
        let mut revoked: Vec<SessionId> = sessions
            .into_iter()
            .filter(|s| s.revoked_at.is_some() && s.expires_at > now)
            .map(|s| s.id)
            .collect();
        revoked.sort();
        Ok(revoked)
    }
}
