//! Subject rights: the kinds of request a person can make, the states a request moves through,
//! the legal calendar its deadline follows, and what an erasure removes or keeps.
//!
//! Invariants:
//! - A deadline is a pure function of the receipt time, the jurisdiction, whether it was
//!   extended, and how long the clock was paused while the person's identity was being
//!   verified. GDPR counts in calendar months (a month from 31 January ends on the last day of
//!   February), CCPA in days; both end at the last microsecond of the final day, UTC.
//! - A request moves only forward (received → identity_verified → in_progress → completed or
//!   denied), and a denial always carries a reason.
//! - What erasure keeps is an explicit list, never an accident: the audit chain (it cannot drop
//!   an entry without breaking), and by configuration the pseudonymous consent log (proof of
//!   consent) and data held under a legal obligation.

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::{DomainError, MICROS_PER_DAY, Micros, named};

/// What a person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A copy of everything held (GDPR art. 15, CCPA right to know).
    Access,
    /// Delete everything held (GDPR art. 17, CCPA right to delete).
    Erasure,
    /// Correct declared data, traits or contact values (GDPR art. 16).
    Rectification,
    /// Keep the data but stop using it for a purpose (GDPR art. 18).
    Restriction,
    /// Object to processing, or opt out of sale and sharing (GDPR art. 21, CCPA).
    Objection,
}

impl RequestKind {
    pub const ALL: [RequestKind; 5] = [
        RequestKind::Access,
        RequestKind::Erasure,
        RequestKind::Rectification,
        RequestKind::Restriction,
        RequestKind::Objection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Access => "access",
            RequestKind::Erasure => "erasure",
            RequestKind::Rectification => "rectification",
            RequestKind::Restriction => "restriction",
            RequestKind::Objection => "objection",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, "kind", s)
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Received; the person's identity is not verified yet, so the clock is paused.
    Received,
    IdentityVerified,
    InProgress,
    Completed,
    /// Refused, with a reason the person is told.
    Denied,
}

impl RequestState {
    pub const ALL: [RequestState; 5] = [
        RequestState::Received,
        RequestState::IdentityVerified,
        RequestState::InProgress,
        RequestState::Completed,
        RequestState::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::IdentityVerified => "identity_verified",
            RequestState::InProgress => "in_progress",
            RequestState::Completed => "completed",
            RequestState::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        named(&Self::ALL, Self::as_str, "status", s)
    }

    /// Completed and denied requests are closed: their clock has stopped for good.
    pub fn is_open(self) -> bool {
        !matches!(self, RequestState::Completed | RequestState::Denied)
    }

    fn rank(self) -> u8 {
        match self {
            RequestState::Received => 0,
            RequestState::IdentityVerified => 1,
            RequestState::InProgress => 2,
            RequestState::Completed | RequestState::Denied => 3,
        }
    }

    /// Checks a move to `next`: only forward, never out of a closed state, and a denial needs a
    /// reason. Denial is possible from any open state (an unverifiable identity, say).
    pub fn check_move(self, next: RequestState, reason: Option<&str>) -> Result<(), DomainError> {
        if !self.is_open() {
            return Err(DomainError::invalid(
                "status",
                format!("the request is already {}", self.as_str()),
            ));
        }
        if next.rank() <= self.rank() {
            return Err(DomainError::invalid(
                "status",
                format!(
                    "a request moves forward only: {} cannot become {}",
                    self.as_str(),
                    next.as_str()
                ),
            ));
        }
        if next == RequestState::Denied && reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(DomainError::invalid(
                "reason",
                "a denial must say why (the person is told)",
            ));
        }
        Ok(())
    }
}

/// The law a request is handled under, which sets its calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jurisdiction {
    /// GDPR art. 12(3): one month from receipt, extendable by two further months with notice
    /// given within the first month.
    Gdpr,
    /// CCPA/CPRA: 45 days, extendable once by 45 more with notice within the first 45.
    Ccpa,
}

impl Jurisdiction {
    pub fn as_str(self) -> &'static str {
        match self {
            Jurisdiction::Gdpr => "gdpr",
            Jurisdiction::Ccpa => "ccpa",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "gdpr" => Ok(Jurisdiction::Gdpr),
            "ccpa" | "cpra" => Ok(Jurisdiction::Ccpa),
            other => Err(DomainError::invalid(
                "jurisdiction",
                format!("`{other}` is not one of gdpr, ccpa"),
            )),
        }
    }

    /// The calendar this jurisdiction's periods are counted in.
    pub fn period(self, extended: bool) -> Period {
        match (self, extended) {
            (Jurisdiction::Gdpr, false) => Period::Months(1),
            (Jurisdiction::Gdpr, true) => Period::Months(3),
            (Jurisdiction::Ccpa, false) => Period::Days(45),
            (Jurisdiction::Ccpa, true) => Period::Days(90),
        }
    }
}

/// A legal period: calendar months or days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Months(u32),
    Days(u32),
}

/// The last microsecond of the day `period` after `from` (UTC). A month from the 31st ends on
/// the last day of a shorter month, as the EU rule on periods (Regulation 1182/71) counts it.
pub fn period_end(from: Micros, period: Period) -> Micros {
    let start = utc(from);
    let date = start.date();
    let end = match period {
        Period::Days(d) => date.saturating_add(time::Duration::days(i64::from(d))),
        Period::Months(m) => add_months(date, m),
    };
    end_of_day(end)
}

fn utc(at: Micros) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn add_months(date: Date, months: u32) -> Date {
    let index = date.year() * 12 + i32::from(u8::from(date.month()) - 1) + months as i32;
    let (year, month0) = (index.div_euclid(12), index.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).expect("0..12 + 1 is a month");
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(date)
}

fn end_of_day(date: Date) -> Micros {
    let next = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc() + time::Duration::DAY;
    (next.unix_timestamp_nanos() / 1000) as Micros - 1
}

/// A request's clock: when it was received, which law counts it, whether it was extended, and
/// how long it has been paused for identity verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestClock {
    pub jurisdiction: Jurisdiction,
    pub received_at: Micros,
    pub extended: bool,
    /// Paused time already over.
    pub paused_for: Micros,
    /// Set while the clock is paused (awaiting identity verification).
    pub paused_since: Option<Micros>,
}

impl RequestClock {
    /// When the request is due, seen at `now`: the legal period from receipt, pushed back by
    /// every microsecond the clock was paused (including a pause still running at `now`).
    pub fn due_at(&self, now: Micros) -> Micros {
        let running_pause = self.paused_since.map_or(0, |since| (now - since).max(0));
        period_end(self.received_at, self.jurisdiction.period(self.extended))
            .saturating_add(self.paused_for)
            .saturating_add(running_pause)
    }

    /// Whether an open request is past its deadline at `now`. A paused clock is never overdue:
    /// its deadline moves with it.
    pub fn is_overdue(&self, now: Micros) -> bool {
        self.paused_since.is_none() && now > self.due_at(now)
    }

    /// Pauses the clock at `at` (waiting on the person); pausing twice changes nothing.
    pub fn pause(&mut self, at: Micros) {
        if self.paused_since.is_none() {
            self.paused_since = Some(at);
        }
    }

    /// Resumes a paused clock at `at`, adding the pause to the deadline.
    pub fn resume(&mut self, at: Micros) {
        if let Some(since) = self.paused_since.take() {
            self.paused_for = self.paused_for.saturating_add((at - since).max(0));
        }
    }

    /// Extends the deadline once, with notice inside the first period (GDPR: the first month;
    /// CCPA: the first 45 days).
    pub fn extend(&mut self, now: Micros) -> Result<(), DomainError> {
        if self.extended {
            return Err(DomainError::invalid(
                "extend",
                "the deadline can be extended only once",
            ));
        }
        if now > self.due_at(now) {
            return Err(DomainError::invalid(
                "extend",
                "an extension must be noticed to the person before the first deadline passes",
            ));
        }
        self.extended = true;
        Ok(())
    }

    /// Days from receipt to `completed_at`, less the paused time: the fulfilment time KPI.
    pub fn fulfilment_days(&self, completed_at: Micros) -> f64 {
        let running_pause = self
            .paused_since
            .map_or(0, |since| (completed_at - since).max(0));
        let active = completed_at - self.received_at - self.paused_for - running_pause;
        active.max(0) as f64 / MICROS_PER_DAY as f64
    }
}

/// What erasure keeps, by configuration; the audit chain is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasurePolicy {
    /// Keep the subject's pseudonymous consent records as proof of consent (GDPR art. 7(1)).
    pub keep_consent_log: bool,
    /// Keep events stored under a purpose whose legal basis is a legal obligation (invoices
    /// kept for tax law, say). Their contact values become unreadable with the key.
    pub keep_legal_obligation_events: bool,
}

impl Default for ErasurePolicy {
    fn default() -> Self {
        ErasurePolicy {
            keep_consent_log: true,
            keep_legal_obligation_events: true,
        }
    }
}

/// One thing an erasure touched, as its receipt lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptPart {
    /// Where: `database`, `memory` (this node's caches), `cluster` (other nodes' caches),
    /// `models`.
    pub store: String,
    /// What: `events`, `contact_fields`, `data_key`, ...
    pub artifact: String,
    /// How many rows or entries.
    pub count: i64,
    /// `erased`, `shredded`, `kept`, `cleared`, `notified`, `not_held` or `failed`.
    pub status: String,
    /// Why, in words: the legal reason for what is kept, or what went wrong.
    pub note: String,
}

impl ReceiptPart {
    pub fn new(store: &str, artifact: &str, count: i64, status: &str, note: &str) -> Self {
        ReceiptPart {
            store: store.into(),
            artifact: artifact.into(),
            count,
            status: status.into(),
            note: note.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Micros {
        crate::parse_rfc3339(s).unwrap()
    }

    fn gdpr(received: &str) -> RequestClock {
        RequestClock {
            jurisdiction: Jurisdiction::Gdpr,
            received_at: at(received),
            extended: false,
            paused_for: 0,
            paused_since: None,
        }
    }

    #[test]
    fn gdpr_counts_calendar_months_and_clamps_to_the_month_end() {
        let due = |r: &str| crate::format_micros(gdpr(r).due_at(at(r)));
        assert_eq!(
            due("2027-01-31T10:00:00Z"),
            "2027-02-28T23:59:59.999999Z",
            "not a leap year"
        );
        assert_eq!(
            due("2028-01-31T10:00:00Z"),
            "2028-02-29T23:59:59.999999Z",
            "leap year"
        );
        assert_eq!(due("2027-01-15T00:00:00Z"), "2027-02-15T23:59:59.999999Z");
        assert_eq!(
            due("2026-12-31T23:59:00Z"),
            "2027-01-31T23:59:59.999999Z",
            "over the year end"
        );
        assert_eq!(due("2027-03-31T08:00:00Z"), "2027-04-30T23:59:59.999999Z");
        let mut c = gdpr("2027-01-31T10:00:00Z");
        c.extend(at("2027-02-20T00:00:00Z")).unwrap();
        assert_eq!(
            crate::format_micros(c.due_at(0)),
            "2027-04-30T23:59:59.999999Z",
            "one month plus two further months"
        );
        assert!(c.extend(at("2027-02-21T00:00:00Z")).is_err(), "only once");
    }

    #[test]
    fn an_extension_must_come_inside_the_first_period() {
        let mut c = gdpr("2027-01-10T00:00:00Z");
        assert!(c.extend(at("2027-02-11T00:00:00Z")).is_err());
        assert!(!c.extended);
        let mut ccpa = RequestClock {
            jurisdiction: Jurisdiction::Ccpa,
            ..gdpr("2027-01-10T12:00:00Z")
        };
        assert_eq!(
            crate::format_micros(ccpa.due_at(0)),
            "2027-02-24T23:59:59.999999Z",
            "45 days"
        );
        ccpa.extend(at("2027-02-24T23:00:00Z")).unwrap();
        assert_eq!(
            crate::format_micros(ccpa.due_at(0)),
            "2027-04-10T23:59:59.999999Z",
            "90 days"
        );
    }

    #[test]
    fn a_paused_clock_pushes_the_deadline_and_is_never_overdue() {
        let mut c = gdpr("2027-01-31T10:00:00Z");
        let base = c.due_at(0);
        c.pause(at("2027-02-01T00:00:00Z"));
        let later = at("2027-03-10T00:00:00Z");
        assert!(!c.is_overdue(later), "paused");
        assert_eq!(c.due_at(later), base + (later - at("2027-02-01T00:00:00Z")));
        c.pause(at("2027-02-05T00:00:00Z"));
        c.resume(at("2027-02-04T00:00:00Z"));
        assert_eq!(
            c.paused_for,
            3 * MICROS_PER_DAY,
            "the first pause start counts"
        );
        assert_eq!(c.due_at(later), base + 3 * MICROS_PER_DAY);
        assert!(c.is_overdue(at("2027-03-04T00:00:00Z")));
        assert!(!c.is_overdue(at("2027-03-03T23:00:00Z")));
        assert!((c.fulfilment_days(at("2027-02-07T10:00:00Z")) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn requests_move_forward_and_denials_say_why() {
        use RequestState::*;
        assert!(Received.check_move(IdentityVerified, None).is_ok());
        assert!(Received.check_move(Completed, None).is_ok());
        assert!(InProgress.check_move(Received, None).is_err());
        assert!(Completed.check_move(Denied, Some("x")).is_err());
        let e = Received.check_move(Denied, Some("  ")).unwrap_err();
        assert!(e.to_string().contains("reason"), "{e}");
        assert!(
            Received
                .check_move(Denied, Some("identity not verified"))
                .is_ok()
        );
        assert_eq!(RequestState::parse("in_progress").unwrap(), InProgress);
        assert!(RequestState::parse("done").is_err());
        assert_eq!(
            RequestKind::parse("objection").unwrap(),
            RequestKind::Objection
        );
        let e = RequestKind::parse("forget").unwrap_err();
        assert!(e.to_string().contains("kind"), "{e}");
        assert_eq!(Jurisdiction::parse("cpra").unwrap(), Jurisdiction::Ccpa);
        assert!(Jurisdiction::parse("lgpd").is_err());
    }
}
