//! Rights requests with legal deadlines: received, verified, handled, completed or denied,
//! on the calendar of their jurisdiction, with the clock paused while identity is verified.
//!
//! Invariants: the clock rules are the domain's (`RequestClock`); every change is audited;
//! an overdue request raises one signed webhook (once per cluster); completion records the
//! fulfilment time in the `candor_rights_fulfilment_days` histogram.

use std::time::Duration;

use candor_domain::{
    AuditDraft, Jurisdiction, Micros, RequestClock, RequestKind, RequestState, SubjectKey,
};
use candor_store::{OutboxEvent, RightsRequestRow};
use serde_json::{Value, json};

use super::SubjectRef;
use crate::scheduler::{Job, Reach};
use crate::{App, AppError, Result};

/// Channels a request can arrive by.
const CHANNELS: [&str; 6] = ["api", "web", "email", "phone", "mail", "in_person"];

/// A request as a person or staff member files it.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub subject: SubjectRef,
    pub kind: String,
    /// `gdpr` or `ccpa`; the configured default when absent.
    pub jurisdiction: Option<String>,
    /// How it arrived: api, web, email, phone, mail or in_person.
    pub channel: Option<String>,
    /// How staff verified the person's identity, if they did at entry; otherwise the clock
    /// waits for verification.
    pub verification_method: Option<String>,
    pub details: Option<String>,
    /// When it was received, if earlier than now (an email read the next morning).
    pub received_at: Option<Micros>,
}

/// A change of a request: a new status, an extension, a verification.
#[derive(Debug, Clone, Default)]
pub struct RequestUpdate {
    pub status: Option<String>,
    pub reason: Option<String>,
    pub verification_method: Option<String>,
    pub extend: bool,
}

/// A request as shown, its deadline computed now.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    pub row: RightsRequestRow,
    pub due_at: Micros,
    pub paused: bool,
    pub overdue: bool,
    pub fulfilment_days: Option<f64>,
}

impl RequestView {
    pub fn to_json(&self) -> Value {
        let r = &self.row;
        json!({
            "id": r.id,
            "kind": r.kind,
            "jurisdiction": r.jurisdiction,
            "status": r.status,
            "channel": r.channel,
            "verification_method": r.verification_method,
            "details": r.details,
            "received_at": candor_domain::format_micros(r.received_at),
            "due_at": candor_domain::format_micros(self.due_at),
            "extended": r.extended,
            "clock_paused": self.paused,
            "overdue": self.overdue,
            "completed_at": r.completed_at.map(candor_domain::format_micros),
            "reason": r.reason,
            "fulfilment_days": self.fulfilment_days,
        })
    }
}

fn clock(r: &RightsRequestRow) -> Result<RequestClock> {
    Ok(RequestClock {
        jurisdiction: Jurisdiction::parse(&r.jurisdiction)?,
        received_at: r.received_at,
        extended: r.extended,
        paused_for: r.paused_for,
        paused_since: r.paused_since,
    })
}

/// The view of a stored request at `now`.
pub(super) fn view(r: &RightsRequestRow, now: Micros) -> RequestView {
    let status = RequestState::parse(&r.status).unwrap_or(RequestState::Received);
    let (due_at, overdue, fulfilment_days) = match clock(r) {
        Ok(c) => {
            let at = r.completed_at.unwrap_or(now);
            (
                c.due_at(at),
                status.is_open() && c.is_overdue(now),
                r.completed_at.map(|done| c.fulfilment_days(done)),
            )
        }
        Err(_) => (r.due_at, false, None),
    };
    RequestView {
        row: r.clone(),
        due_at,
        paused: r.paused_since.is_some(),
        overdue,
        fulfilment_days,
    }
}

fn bounded(field: &str, v: Option<String>, max: usize) -> Result<Option<String>> {
    match v {
        Some(s) if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') => {
            Err(AppError::invalid(
                field,
                format!("must be at most {max} characters without control characters"),
            ))
        }
        Some(s) if s.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

impl App {
    /// Files a request. Without a verification method the clock waits for verification.
    pub async fn create_request(&self, actor: &str, req: NewRequest) -> Result<RequestView> {
        let kind = RequestKind::parse(&req.kind)?;
        let jurisdiction = Jurisdiction::parse(
            req.jurisdiction
                .as_deref()
                .unwrap_or(&self.config.rights.jurisdiction),
        )?;
        let channel = req.channel.unwrap_or_else(|| "api".into());
        if !CHANNELS.contains(&channel.as_str()) {
            return Err(AppError::invalid(
                "channel",
                format!("`{channel}` is not one of {}", CHANNELS.join(", ")),
            ));
        }
        let verification = bounded("verification_method", req.verification_method, 200)?;
        let details = bounded("details", req.details, 2000)?.unwrap_or_default();
        let (subject, _) = self.resolve(&req.subject)?;
        let now = self.now();
        let received_at = req.received_at.unwrap_or(now);
        if received_at > now {
            return Err(AppError::invalid("received_at", "lies in the future"));
        }
        let mut c = RequestClock {
            jurisdiction,
            received_at,
            extended: false,
            paused_for: 0,
            paused_since: None,
        };
        let status = if verification.is_some() {
            RequestState::IdentityVerified
        } else {
            c.pause(received_at);
            RequestState::Received
        };
        let row = RightsRequestRow {
            id: crate::new_id("req"),
            subject_key: subject.to_string(),
            kind: kind.as_str().into(),
            jurisdiction: jurisdiction.as_str().into(),
            status: status.as_str().into(),
            channel,
            verification_method: verification,
            details,
            received_at,
            extended: false,
            paused_for: c.paused_for,
            paused_since: c.paused_since,
            due_at: c.due_at(now),
            completed_at: None,
            reason: None,
            overdue_notified: false,
            updated_at: now,
        };
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::RequestCreate,
            subject.as_str(),
            json!({"request": row.id, "kind": row.kind, "jurisdiction": row.jurisdiction, "channel": row.channel, "verified": row.verification_method.is_some()}),
        );
        self.store.create_request(&row, &audit).await?;
        metrics::counter!("candor_rights_requests_total", "kind" => kind.as_str()).increment(1);
        Ok(view(&row, now))
    }

    /// Moves a request on: verify (resumes the clock), extend (once, inside the first
    /// period), progress, complete or deny (with a reason).
    pub async fn update_request(
        &self,
        actor: &str,
        id: &str,
        u: RequestUpdate,
    ) -> Result<RequestView> {
        let mut row = self.stored_request(id).await?;
        let now = self.now();
        let mut c = clock(&row)?;
        let current = RequestState::parse(&row.status)?;
        let reason = bounded("reason", u.reason, 2000)?;
        let verification = bounded("verification_method", u.verification_method, 200)?;
        if u.status.is_none() && !u.extend && verification.is_none() {
            return Err(AppError::invalid(
                "body",
                "give a status, a verification_method or extend: true",
            ));
        }
        if u.extend {
            if !current.is_open() {
                return Err(AppError::invalid("extend", "the request is closed"));
            }
            c.extend(now)?;
        }
        if let Some(method) = verification {
            row.verification_method = Some(method);
        }
        if let Some(next) = u.status.as_deref() {
            let next = RequestState::parse(next)?;
            current.check_move(next, reason.as_deref())?;
            if next != RequestState::Denied
                && current == RequestState::Received
                && row.verification_method.is_none()
            {
                return Err(AppError::invalid(
                    "verification_method",
                    "say how the person's identity was verified before handling the request",
                ));
            }
            // Verification ends the pause; a closed request's clock stops for good.
            c.resume(now);
            row.status = next.as_str().into();
            if !next.is_open() {
                row.completed_at = Some(now);
                row.reason = reason;
            }
        }
        row.extended = c.extended;
        row.paused_for = c.paused_for;
        row.paused_since = c.paused_since;
        row.due_at = c.due_at(now);
        row.updated_at = now;
        let audit = AuditDraft::new(
            actor,
            candor_domain::AuditAction::RequestUpdate,
            &row.subject_key,
            json!({"request": row.id, "status": row.status, "extended": row.extended, "reason": row.reason}),
        );
        self.store.update_request(&row, &audit).await?;
        if let Some(done) = row.completed_at.filter(|_| u.status.is_some()) {
            metrics::histogram!("candor_rights_fulfilment_days", "kind" => row.kind.clone(), "status" => row.status.clone())
                .record(c.fulfilment_days(done));
        }
        Ok(view(&row, now))
    }

    pub async fn rights_request(&self, id: &str) -> Result<RequestView> {
        Ok(view(&self.stored_request(id).await?, self.now()))
    }

    async fn stored_request(&self, id: &str) -> Result<RightsRequestRow> {
        self.store
            .request(id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "rights request",
                id: id.to_owned(),
            })
    }

    /// Requests, newest first, optionally by status and only the overdue ones.
    pub async fn rights_requests(
        &self,
        status: Option<&str>,
        overdue: bool,
        limit: i64,
    ) -> Result<Vec<RequestView>> {
        if let Some(s) = status {
            RequestState::parse(s)?;
        }
        let now = self.now();
        let rows = self
            .store
            .requests(status, overdue.then_some(now), limit)
            .await?;
        Ok(rows.iter().map(|r| view(r, now)).collect())
    }

    /// A subject's requests, oldest first.
    pub async fn subject_requests(&self, subject: &SubjectKey) -> Result<Vec<RequestView>> {
        let now = self.now();
        Ok(self
            .store
            .requests_of(subject.as_str())
            .await?
            .iter()
            .map(|r| view(r, now))
            .collect())
    }

    /// Requests received in `[since, until)` for reports: how many of each kind, how many were
    /// completed, and their fulfilment times in days (receipt to completion, less paused
    /// time). `None` when no request was received.
    pub async fn rights_figures(
        &self,
        since: Micros,
        until: Micros,
    ) -> Result<Option<candor_analytics::report::RightsFigures>> {
        let rows = self.store.requests_received_between(since, until).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut received: std::collections::BTreeMap<String, u64> = Default::default();
        let mut days: Vec<f64> = Vec::new();
        for r in &rows {
            *received.entry(r.kind.clone()).or_default() += 1;
            if r.status == RequestState::Completed.as_str()
                && let (Some(done), Ok(c)) = (r.completed_at, clock(r))
            {
                days.push(c.fulfilment_days(done));
            }
        }
        days.sort_by(f64::total_cmp);
        Ok(Some(candor_analytics::report::RightsFigures {
            received: received.into_iter().collect(),
            fulfilled: days.len() as u64,
            median_days: days.get(days.len() / 2).copied(),
            max_days: days.last().copied(),
        }))
    }

    /// Announces each overdue request once, by signed webhook, and returns how many.
    pub async fn announce_overdue_requests(&self) -> Result<usize> {
        let now = self.now();
        let mut announced = 0;
        for r in self.store.requests(None, Some(now), 1000).await? {
            if r.overdue_notified {
                continue;
            }
            let v = view(&r, now);
            let event_id = crate::new_id("evt");
            let event = OutboxEvent {
                payload: json!({
                    "id": event_id,
                    "type": "rights.request_overdue",
                    "created_at": candor_domain::format_micros(now),
                    "request": v.to_json(),
                })
                .to_string(),
                id: event_id,
                event_type: "rights.request_overdue".into(),
                sealed_external_id: None,
                subject_key: Some(r.subject_key.clone()),
            };
            let audit = AuditDraft::new(
                "scheduler",
                candor_domain::AuditAction::RequestUpdate,
                &r.subject_key,
                json!({"request": r.id, "overdue": true}),
            );
            if self
                .store
                .announce_overdue(&r.id, now, &event, &audit)
                .await?
            {
                announced += 1;
            }
        }
        Ok(announced)
    }

    /// Checks for overdue requests, on one node of the cluster at a time.
    pub(crate) fn overdue_requests_job(&self) -> Option<Job> {
        let secs = self.config.rights.overdue_check_secs;
        (secs > 0).then(|| {
            Job::new(
                "rights_overdue",
                Duration::from_secs(secs),
                Reach::OncePerCluster,
                |app| async move {
                    let n = app.announce_overdue_requests().await?;
                    Ok(format!("{n} overdue rights requests announced"))
                },
            )
        })
    }
}
