//! Journeys: rule-triggered lifecycle messages, and the boundaries every message meets at the
//! moment it would be sent.
//!
//! A journey is a trigger, entry conditions, steps and exits. Steps are a wait, a branch on a
//! condition, or a message on a channel; each names its successor (by default the next step in
//! the list). This module holds the definition and its validation, the walk from step to step,
//! and [`decide_send`], the one rule that says whether a message goes out now, later or never.
//!
//! Invariants:
//! - A definition that passes [`JourneyDefinition::validate`] has unique step ids, successors
//!   that exist, only known channels that each have a consent purpose, and no cycle without a
//!   wait (so walking a journey always stops); every error names the step at fault.
//! - [`decide_send`] needs the channel purpose's [`Permit`] to send: without one the message is
//!   suppressed, whatever else holds. Boundaries only take sending away: consent, expiry,
//!   sensitive dates, frequency caps, then quiet hours, which defer (never past the expiry).
//! - Calendar days and hours are the person's local ones, through the offset function the
//!   caller passes (the domain reads no clock and no time-zone database).

use serde::{Deserialize, Serialize};

use crate::preferences::{Level, QuietPeriod};
use crate::{DomainError, Micros, Permit};

/// The channels a message can go out on.
pub const CHANNELS: [&str; 3] = ["email", "sms", "push"];
pub const MAX_STEPS: usize = 100;
const MINUTE: Micros = 60_000_000;
pub const DAY: Micros = 24 * 60 * MINUTE;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JourneyDefinition {
    pub id: String,
    pub name: String,
    /// The purpose under which the journey reads the person's behaviour for its conditions.
    pub purpose: String,
    pub trigger: Trigger,
    /// All must hold when the trigger fires; otherwise the person does not enter (a later
    /// trigger checks again).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub steps: Vec<Step>,
    /// The person leaves the journey as soon as one of these happens.
    #[serde(default)]
    pub exits: Vec<Exit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A tracked event of this name (as the tracking plan declares it) enters the person.
    Event {
        event: String,
    },
    SegmentEntry {
        segment: String,
    },
    SegmentExit {
        segment: String,
    },
    Date {
        at: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// At least `at_least` engagements (item events) with items of catalog category `topic`
    /// (or a category under it, `Garden > Tools`) within the last `within_days` days.
    Engaged {
        topic: String,
        at_least: u32,
        within_days: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Exit {
    Event { event: String },
}

/// How much of the person a message would like to use; the person's level caps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Personalize {
    /// The same copy for everyone.
    #[default]
    None,
    /// Declared interests and categories.
    Declared,
    /// Individual behaviour (items viewed).
    Behaviour,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Wait {
        id: String,
        minutes: u32,
        #[serde(default)]
        next: Option<String>,
    },
    Branch {
        id: String,
        condition: Condition,
        then: String,
        otherwise: String,
    },
    Message {
        id: String,
        channel: String,
        template: String,
        /// A themed message (e.g. "Mother's Day") is suppressed around the person's quiet
        /// periods of that name.
        #[serde(default)]
        theme: Option<String>,
        #[serde(default)]
        personalize: Personalize,
        /// A message deferred (quiet hours) longer than this after it was due is dropped.
        #[serde(default = "default_expiry_hours")]
        expires_after_hours: u32,
        #[serde(default)]
        next: Option<String>,
    },
}

fn default_expiry_hours() -> u32 {
    24
}

impl Step {
    pub fn id(&self) -> &str {
        match self {
            Step::Wait { id, .. } | Step::Branch { id, .. } | Step::Message { id, .. } => id,
        }
    }

    /// The steps this one may lead to, explicit ones only.
    fn successors(&self) -> Vec<(&'static str, &str)> {
        match self {
            Step::Wait { next, .. } | Step::Message { next, .. } => {
                next.iter().map(|n| ("next", n.as_str())).collect()
            }
            Step::Branch {
                then, otherwise, ..
            } => vec![("then", then.as_str()), ("otherwise", otherwise.as_str())],
        }
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn bounded_text(field: &str, s: &str, max: usize) -> Result<(), DomainError> {
    if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(())
}

impl Condition {
    fn validate(&self, field: &str) -> Result<(), DomainError> {
        match self {
            Condition::Engaged {
                topic,
                at_least,
                within_days,
            } => {
                bounded_text(&format!("{field}.topic"), topic, 200)?;
                if !(1..=1000).contains(at_least) {
                    return Err(DomainError::invalid(
                        format!("{field}.at_least"),
                        "must be between 1 and 1000",
                    ));
                }
                if !(1..=365).contains(within_days) {
                    return Err(DomainError::invalid(
                        format!("{field}.within_days"),
                        "must be between 1 and 365",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Whether the condition holds at `now` over the person's engagements, each
    /// (catalog category of the item, when).
    pub fn holds(&self, engagements: &[(&str, Micros)], now: Micros) -> bool {
        match self {
            Condition::Engaged {
                topic,
                at_least,
                within_days,
            } => {
                let since = now - Micros::from(*within_days) * DAY;
                let under = format!("{topic} > ");
                let n = engagements
                    .iter()
                    .filter(|(c, at)| {
                        *at >= since && *at <= now && (*c == topic || c.starts_with(&under))
                    })
                    .count();
                n >= *at_least as usize
            }
        }
    }
}

impl JourneyDefinition {
    /// Checks the definition. `channel_purpose(channel)` says which purpose a channel's
    /// messages need (none: the channel cannot be used). Errors name the step at fault.
    pub fn validate(
        &self,
        channel_purpose: impl Fn(&str) -> Option<String>,
    ) -> Result<(), DomainError> {
        if !valid_id(&self.id) {
            return Err(DomainError::invalid(
                "id",
                "must be 1 to 64 lowercase letters, digits, `_` or `-`",
            ));
        }
        bounded_text("name", &self.name, 200)?;
        bounded_text("purpose", &self.purpose, 64)?;
        match &self.trigger {
            Trigger::Event { event } => bounded_text("trigger.event", event, 200)?,
            Trigger::SegmentEntry { .. } | Trigger::SegmentExit { .. } | Trigger::Date { .. } => {
                return Err(DomainError::invalid(
                    "trigger.type",
                    "only `event` triggers run in this build; segment_entry, segment_exit and date are not supported yet",
                ));
            }
        }
        for (i, c) in self.conditions.iter().enumerate() {
            c.validate(&format!("conditions[{i}]"))?;
        }
        for (i, Exit::Event { event }) in self.exits.iter().enumerate() {
            bounded_text(&format!("exits[{i}].event"), event, 200)?;
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(DomainError::invalid(
                "steps",
                format!("a journey has 1 to {MAX_STEPS} steps"),
            ));
        }
        let at = |i: usize, id: &str, reason: String| {
            DomainError::invalid(format!("steps[{i}]"), format!("step `{id}`: {reason}"))
        };
        for (i, s) in self.steps.iter().enumerate() {
            let id = s.id();
            if !valid_id(id) {
                return Err(at(
                    i,
                    id,
                    "an id is 1 to 64 lowercase letters, digits, `_` or `-`".into(),
                ));
            }
            if self.steps[..i].iter().any(|p| p.id() == id) {
                return Err(at(i, id, "another step has this id".into()));
            }
            for (field, target) in s.successors() {
                if !self.steps.iter().any(|t| t.id() == target) {
                    return Err(at(i, id, format!("{field} names no step `{target}`")));
                }
            }
            match s {
                Step::Wait { minutes, .. } => {
                    if !(1..=366 * 24 * 60).contains(minutes) {
                        return Err(at(i, id, "a wait lasts 1 minute to 366 days".into()));
                    }
                }
                Step::Branch { condition, .. } => condition
                    .validate(&format!("steps[{i}].condition"))
                    .map_err(|e| at(i, id, e.to_string()))?,
                Step::Message {
                    channel,
                    template,
                    theme,
                    expires_after_hours,
                    ..
                } => {
                    if !CHANNELS.contains(&channel.as_str()) {
                        return Err(at(
                            i,
                            id,
                            format!("`{channel}` is not a channel (email, sms, push)"),
                        ));
                    }
                    if channel_purpose(channel).is_none() {
                        return Err(at(
                            i,
                            id,
                            format!(
                                "channel `{channel}` has no consent purpose; set journeys.channel_purposes.{channel}"
                            ),
                        ));
                    }
                    bounded_text(&format!("steps[{i}].template"), template, 200)
                        .map_err(|e| at(i, id, e.to_string()))?;
                    if let Some(t) = theme {
                        bounded_text(&format!("steps[{i}].theme"), t, 100)
                            .map_err(|e| at(i, id, e.to_string()))?;
                    }
                    if !(1..=24 * 30).contains(expires_after_hours) {
                        return Err(at(
                            i,
                            id,
                            "expires_after_hours must be between 1 and 720".into(),
                        ));
                    }
                }
            }
        }
        if let Some(i) = self.cycle_without_wait() {
            return Err(at(
                i,
                self.steps[i].id(),
                "is on a cycle without a wait; add a wait step to the loop".into(),
            ));
        }
        Ok(())
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id() == id)
    }

    /// Where a step leads after it (explicit `next`, else the following step; `None`: the end).
    pub fn following(&self, i: usize) -> Vec<usize> {
        match &self.steps[i] {
            Step::Branch {
                then, otherwise, ..
            } => [then, otherwise]
                .iter()
                .filter_map(|t| self.index_of(t))
                .collect(),
            Step::Wait { next, .. } | Step::Message { next, .. } => match next {
                Some(n) => self.index_of(n).into_iter().collect(),
                None => (i + 1 < self.steps.len())
                    .then_some(i + 1)
                    .into_iter()
                    .collect(),
            },
        }
    }

    /// A step on a cycle whose every step is a branch or a message, if there is one.
    fn cycle_without_wait(&self) -> Option<usize> {
        // Depth-first search over edges that leave non-wait steps: a back edge is a cycle.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        fn visit(j: &JourneyDefinition, i: usize, marks: &mut [Mark]) -> Option<usize> {
            marks[i] = Mark::Open;
            if !matches!(j.steps[i], Step::Wait { .. }) {
                for n in j.following(i) {
                    if matches!(j.steps[n], Step::Wait { .. }) {
                        continue;
                    }
                    match marks[n] {
                        Mark::Open => return Some(n),
                        Mark::New => {
                            if let Some(c) = visit(j, n, marks) {
                                return Some(c);
                            }
                        }
                        Mark::Done => {}
                    }
                }
            }
            marks[i] = Mark::Done;
            None
        }
        let mut marks = vec![Mark::New; self.steps.len()];
        (0..self.steps.len()).find_map(|i| {
            if marks[i] == Mark::New {
                visit(self, i, &mut marks)
            } else {
                None
            }
        })
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<(usize, &Step)> {
        self.index_of(id).map(|i| (i, &self.steps[i]))
    }

    /// The id of the step after a wait or a message (`None`: the journey ends there).
    pub fn next_after(&self, i: usize) -> Option<&str> {
        self.following(i).first().map(|n| self.steps[*n].id())
    }

    /// Whether every entry condition holds.
    pub fn may_enter(&self, engagements: &[(&str, Micros)], now: Micros) -> bool {
        self.conditions.iter().all(|c| c.holds(engagements, now))
    }

    /// Whether the journey reads behaviour at all (conditions or branches).
    pub fn reads_behaviour(&self) -> bool {
        !self.conditions.is_empty() || self.steps.iter().any(|s| matches!(s, Step::Branch { .. }))
    }
}

/// Limits on how many messages a person gets per local calendar day (0 = no limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub per_channel: u32,
    pub all_channels: u32,
}

/// Local hours during which nothing is sent, as minutes after local midnight; `start > end`
/// spans midnight (21:00 to 08:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start_minute: u32,
    pub end_minute: u32,
}

impl QuietHours {
    /// Parses `HH:MM`.
    pub fn minute_of(s: &str) -> Option<u32> {
        let (h, m) = s.split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && s.len() == 5).then_some(h * 60 + m)
    }

    fn contains(&self, minute: u32) -> bool {
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// The person's local calendar day (days since 1970-01-01 in their time zone).
pub fn local_day(at: Micros, offset: &dyn Fn(Micros) -> Micros) -> i64 {
    (at + offset(at)).div_euclid(DAY)
}

fn local_minute(at: Micros, offset: &dyn Fn(Micros) -> Micros) -> u32 {
    ((at + offset(at)).rem_euclid(DAY) / MINUTE) as u32
}

/// Lowercase letters and digits only, so "Mother's Day" and "mothers-day" match.
fn theme_key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// The person has not granted the channel's purpose.
    NoChannelConsent,
    /// It would arrive later than its expiry.
    Expired,
    /// Themed, and near a date the person opted out of.
    SensitiveDate,
    ChannelCap,
    AllChannelsCap,
    /// Quiet hours last past its expiry.
    QuietHoursPastExpiry,
    /// The person's level is off and the message is nothing but personal.
    Level,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::NoChannelConsent => "no_channel_consent",
            Suppression::Expired => "expired",
            Suppression::SensitiveDate => "sensitive_date",
            Suppression::ChannelCap => "channel_cap",
            Suppression::AllChannelsCap => "all_channels_cap",
            Suppression::QuietHoursPastExpiry => "quiet_hours_past_expiry",
            Suppression::Level => "level",
        }
    }
}

/// What [`decide_send`] needs to know about the person and the moment.
pub struct SendContext<'a> {
    pub now: Micros,
    /// When the message stops making sense.
    pub expires_at: Micros,
    pub channel: &'a str,
    pub theme: Option<&'a str>,
    pub personalize: Personalize,
    pub level: Level,
    pub quiet_periods: &'a [QuietPeriod],
    /// Messages sent today (local day) on this channel, and on every channel.
    pub sent_today: (u32, u32),
    pub caps: &'a Caps,
    pub quiet_hours: Option<QuietHours>,
    /// How far around an opted-out date themed messages stay away.
    pub sensitive_window: Micros,
    /// The person's UTC offset at an instant, in microseconds.
    pub offset: &'a dyn Fn(Micros) -> Micros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// Send now, using at most `uses` of the person, for these reasons.
    Send {
        uses: Personalize,
        reasons: Vec<String>,
    },
    /// Not now: try again at `until` (before the expiry).
    Defer {
        until: Micros,
    },
    Suppress(Suppression),
}

/// The boundaries of one message at the moment it would be sent. `permit` is the channel
/// purpose's permit, which only the person's consent state can produce.
pub fn decide_send(permit: Option<&Permit<'_>>, cx: &SendContext<'_>) -> SendDecision {
    let Some(permit) = permit else {
        return SendDecision::Suppress(Suppression::NoChannelConsent);
    };
    if cx.now >= cx.expires_at {
        return SendDecision::Suppress(Suppression::Expired);
    }
    if let Some(theme) = cx.theme {
        let key = theme_key(theme);
        let near = cx.quiet_periods.iter().any(|q| {
            let named = q.label.as_deref().is_none_or(|l| theme_key(l) == key);
            named
                && cx.now >= q.from - cx.sensitive_window
                && cx.now < q.until + cx.sensitive_window
        });
        if near {
            return SendDecision::Suppress(Suppression::SensitiveDate);
        }
    }
    let (channel_today, all_today) = cx.sent_today;
    if cx.caps.per_channel > 0 && channel_today >= cx.caps.per_channel {
        return SendDecision::Suppress(Suppression::ChannelCap);
    }
    if cx.caps.all_channels > 0 && all_today >= cx.caps.all_channels {
        return SendDecision::Suppress(Suppression::AllChannelsCap);
    }
    if let Some(q) = cx.quiet_hours {
        let minute = local_minute(cx.now, cx.offset);
        if q.contains(minute) {
            let wait = (i64::from(q.end_minute) - i64::from(minute)).rem_euclid(24 * 60);
            let mut until = cx.now - cx.now.rem_euclid(MINUTE) + wait * MINUTE;
            // A change of offset (daylight saving) inside the wait moves local time with it.
            until -= (cx.offset)(until) - (cx.offset)(cx.now);
            if until >= cx.expires_at {
                return SendDecision::Suppress(Suppression::QuietHoursPastExpiry);
            }
            return SendDecision::Defer { until };
        }
    }
    // A quiet period takes personalization away; the level caps what the message may use.
    let level = if cx
        .quiet_periods
        .iter()
        .any(|q| q.from <= cx.now && cx.now < q.until)
    {
        Level::Off
    } else {
        cx.level
    };
    let allowed = match level {
        Level::Off => Personalize::None,
        Level::Basic => Personalize::Declared,
        Level::Full => Personalize::Behaviour,
    };
    let uses = match (cx.personalize, allowed) {
        (Personalize::Behaviour, Personalize::Declared) => Personalize::Declared,
        (want, Personalize::None) if want != Personalize::None => Personalize::None,
        (want, _) => want,
    };
    let mut reasons = vec![format!(
        "You allowed {} messages (purpose `{}`)",
        cx.channel,
        permit.purpose()
    )];
    match uses {
        Personalize::None => reasons.push("The same message everyone gets".into()),
        Personalize::Declared => reasons.push("Chosen from the interests you told us".into()),
        Personalize::Behaviour => reasons.push("Chosen from what you viewed recently".into()),
    }
    if uses != cx.personalize {
        reasons.push(format!(
            "Less personal than planned: your personalization level is {}",
            level.as_str()
        ));
    }
    SendDecision::Send { uses, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SubjectConsents;
    use crate::consent::tests_support::{granted_all, purpose};

    fn journey(steps: serde_json::Value) -> JourneyDefinition {
        serde_json::from_value(serde_json::json!({
            "id": "follow-up", "name": "Garden follow-up", "purpose": "personalization",
            "trigger": {"type": "event", "event": "Product Viewed"},
            "steps": steps,
        }))
        .unwrap()
    }

    fn purposes(ch: &str) -> Option<String> {
        (ch != "push").then(|| format!("{ch}_marketing"))
    }

    fn err(j: &JourneyDefinition) -> (String, String) {
        match j.validate(purposes).unwrap_err() {
            DomainError::Invalid { field, reason } => (field, reason),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn validation_names_the_faulty_step() {
        let good = journey(serde_json::json!([
            {"type": "wait", "id": "wait", "minutes": 1440},
            {"type": "branch", "id": "engaged", "condition": {"type": "engaged", "topic": "garden", "at_least": 2, "within_days": 7}, "then": "mail", "otherwise": "end"},
            {"type": "message", "id": "mail", "channel": "email", "template": "garden-follow-up", "next": "end"},
            {"type": "wait", "id": "end", "minutes": 1},
        ]));
        good.validate(purposes).unwrap();
        assert_eq!(good.next_after(0), Some("engaged"));
        assert_eq!(good.next_after(3), None);

        let unknown = journey(serde_json::json!([
            {"type": "message", "id": "mail", "channel": "fax", "template": "t"}]));
        let (field, reason) = err(&unknown);
        assert_eq!(field, "steps[0]");
        assert!(
            reason.contains("`mail`") && reason.contains("not a channel"),
            "{reason}"
        );

        let no_purpose = journey(serde_json::json!([
            {"type": "wait", "id": "w", "minutes": 5},
            {"type": "message", "id": "nudge", "channel": "push", "template": "t"}]));
        let (field, reason) = err(&no_purpose);
        assert_eq!(field, "steps[1]");
        assert!(reason.contains("`nudge`") && reason.contains("no consent purpose"));

        let cycle = journey(serde_json::json!([
            {"type": "message", "id": "a", "channel": "email", "template": "t", "next": "b"},
            {"type": "branch", "id": "b", "condition": {"type": "engaged", "topic": "x", "at_least": 1, "within_days": 1}, "then": "a", "otherwise": "c"},
            {"type": "wait", "id": "c", "minutes": 5, "next": "a"}]));
        let (_, reason) = err(&cycle);
        assert!(reason.contains("cycle without a wait"), "{reason}");
        // The same loop through a wait is fine.
        let looped = journey(serde_json::json!([
            {"type": "message", "id": "a", "channel": "email", "template": "t", "next": "c"},
            {"type": "wait", "id": "c", "minutes": 5, "next": "a"}]));
        looped.validate(purposes).unwrap();

        let dangling = journey(serde_json::json!([
            {"type": "wait", "id": "w", "minutes": 5, "next": "nowhere"}]));
        assert!(err(&dangling).1.contains("names no step `nowhere`"));
        let dup = journey(serde_json::json!([
            {"type": "wait", "id": "w", "minutes": 5}, {"type": "wait", "id": "w", "minutes": 5}]));
        assert_eq!(err(&dup).0, "steps[1]");
        let mut date = good.clone();
        date.trigger = Trigger::Date {
            at: "2027-05-09T00:00:00Z".into(),
        };
        assert_eq!(err(&date).0, "trigger.type");
    }

    #[test]
    fn engagement_counts_only_the_topic_within_the_window() {
        let c = Condition::Engaged {
            topic: "garden".into(),
            at_least: 2,
            within_days: 7,
        };
        let now = 100 * DAY;
        assert!(!c.holds(&[("garden", now - DAY)], now));
        assert!(c.holds(
            &[("garden", now - DAY), ("garden > tools", now - 2 * DAY)],
            now
        ));
        assert!(!c.holds(&[("garden", now - DAY), ("gardening", now - DAY)], now));
        assert!(!c.holds(&[("garden", now - DAY), ("garden", now - 8 * DAY)], now));
    }

    fn consents(granted: bool) -> (SubjectConsents, crate::Purpose, crate::SubjectKey) {
        let p = purpose("email_marketing", "consent", &["contact"]);
        let s = crate::SubjectKey::parse(&"a".repeat(64)).unwrap();
        let c = if granted {
            granted_all(&["email_marketing"])
        } else {
            SubjectConsents::default()
        };
        (c, p, s)
    }

    #[test]
    fn every_boundary_at_send_time() {
        let (c, p, s) = consents(true);
        let permit = c.permit(&s, &p, 10);
        let offset = |_| 2 * 60 * MINUTE; // UTC+2
        let caps = Caps {
            per_channel: 1,
            all_channels: 2,
        };
        let day = 20_000 * DAY;
        let noon_utc = day + 12 * 60 * MINUTE;
        let cx = |now: Micros| SendContext {
            now,
            expires_at: now + DAY,
            channel: "email",
            theme: None,
            personalize: Personalize::Behaviour,
            level: Level::Basic,
            quiet_periods: &[],
            sent_today: (0, 0),
            caps: &caps,
            quiet_hours: Some(QuietHours {
                start_minute: 21 * 60,
                end_minute: 8 * 60,
            }),
            sensitive_window: 3 * DAY,
            offset: &offset,
        };
        match decide_send(permit.as_ref(), &cx(noon_utc)) {
            SendDecision::Send { uses, reasons } => {
                assert_eq!(uses, Personalize::Declared, "basic caps behaviour");
                assert!(reasons.iter().any(|r| r.contains("level is basic")));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(
            decide_send(None, &cx(noon_utc)),
            SendDecision::Suppress(Suppression::NoChannelConsent)
        );
        // 20:00 UTC is 22:00 local: deferred to 08:00 local, 06:00 UTC the next day.
        let evening = day + 20 * 60 * MINUTE;
        assert_eq!(
            decide_send(permit.as_ref(), &cx(evening)),
            SendDecision::Defer {
                until: day + DAY + 6 * 60 * MINUTE
            }
        );
        let mut short = cx(evening);
        short.expires_at = evening + 60 * MINUTE;
        assert_eq!(
            decide_send(permit.as_ref(), &short),
            SendDecision::Suppress(Suppression::QuietHoursPastExpiry)
        );
        let mut capped = cx(noon_utc);
        capped.sent_today = (1, 1);
        assert_eq!(
            decide_send(permit.as_ref(), &capped),
            SendDecision::Suppress(Suppression::ChannelCap)
        );
        capped.sent_today = (0, 2);
        assert_eq!(
            decide_send(permit.as_ref(), &capped),
            SendDecision::Suppress(Suppression::AllChannelsCap)
        );
        let periods = [QuietPeriod {
            from: noon_utc + 2 * DAY,
            until: noon_utc + 3 * DAY,
            label: Some("Mother's Day".into()),
        }];
        let mut themed = cx(noon_utc);
        themed.quiet_periods = &periods;
        themed.theme = Some("mothers-day");
        assert_eq!(
            decide_send(permit.as_ref(), &themed),
            SendDecision::Suppress(Suppression::SensitiveDate)
        );
        themed.theme = Some("Summer sale");
        assert!(matches!(
            decide_send(permit.as_ref(), &themed),
            SendDecision::Send { .. }
        ));
        // Local day: 23:00 UTC is already tomorrow at UTC+2.
        assert_eq!(local_day(day + 23 * 60 * MINUTE, &offset), 20_001);
        let (denied, p, s) = consents(false);
        assert!(denied.permit(&s, &p, 10).is_none());
    }
}
