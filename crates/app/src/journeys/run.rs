//! Walking subjects through journeys: each due position moves step by step until it waits,
//! defers, ends or leaves, and every message meets its boundaries at that moment.
//!
//! Invariant: a message is decided by `domain::journey::decide_send` with the channel
//! purpose's permit taken from the consent room just then; its row, its outbox delivery and
//! the position's move commit together (`Store::record_journey_step`).

use std::collections::BTreeMap;

use candor_domain::journey::{
    Caps, JourneyDefinition, Personalize, QuietHours, SendContext, SendDecision, Step, local_day,
};
use candor_domain::preferences::Level;
use candor_domain::{Micros, SubjectKey};
use candor_store::{JourneyMessage, OutboxEvent, Position, PositionMove};
use serde_json::json;
use sha2::Digest;

use crate::{App, AppError, Result};

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JourneyRun {
    /// Steps taken, over every subject.
    pub steps: u64,
    pub sent: u64,
    pub deferred: u64,
    pub suppressed: u64,
    /// Subjects whose entry conditions did not hold (they may enter on a later trigger).
    pub not_entered: u64,
    pub finished: u64,
}

const PAGE: i64 = 500;
const HOUR: Micros = 3_600_000_000;

fn uses_name(u: Personalize) -> &'static str {
    match u {
        Personalize::None => "none",
        Personalize::Declared => "declared",
        Personalize::Behaviour => "behaviour",
    }
}

impl App {
    /// Advances every due position once (their waits that ended, their deferrals that came).
    pub async fn run_journeys(&self) -> Result<JourneyRun> {
        let _one = self.journeys.running.lock().await;
        let now = self.now();
        let active = self.active_journeys();
        let by_id: BTreeMap<&str, &JourneyDefinition> =
            active.iter().map(|j| (j.id.as_str(), j.as_ref())).collect();
        let mut run = JourneyRun::default();
        // Every position a page returns ends up waiting, finished or gone, so each page is new;
        // the bound only guards against a store that does not move them.
        for _ in 0..10_000 {
            let due = self.store.due_positions(now, PAGE).await?;
            for p in &due {
                match by_id.get(p.journey_id.as_str()) {
                    Some(def) => self.advance(def, p.clone(), now, &mut run).await?,
                    None => {
                        let to = PositionMove {
                            step: p.step.clone(),
                            arrived_at: p.arrived_at,
                            wake_at: p.wake_at,
                            status: "exited",
                        };
                        self.store.record_journey_step(p, &to, None, now).await?;
                    }
                }
            }
            if (due.len() as i64) < PAGE {
                break;
            }
        }
        metrics::counter!("candor_journey_messages_total", "result" => "sent").increment(run.sent);
        metrics::counter!("candor_journey_messages_total", "result" => "deferred")
            .increment(run.deferred);
        metrics::counter!("candor_journey_messages_total", "result" => "suppressed")
            .increment(run.suppressed);
        Ok(run)
    }

    /// The person's engagements (catalog category of the item, when) as the journey's purpose
    /// may read them; `None` without a permit for it or at level `off`.
    async fn engagements(
        &self,
        def: &JourneyDefinition,
        subject: &SubjectKey,
    ) -> Result<Option<Vec<(String, Micros)>>> {
        let purposes = self.purposes();
        let Some((id, purpose)) = purposes.iter().find(|(id, _)| id.as_str() == def.purpose) else {
            return Ok(None);
        };
        if self.preferences(subject).await?.level == Level::Off {
            return Ok(None);
        }
        let one = BTreeMap::from([(id.clone(), purpose.clone())]);
        let permits = self.permits(subject, &one).await?;
        if permits.is_empty() {
            return Ok(None);
        }
        let (events, _) = self.store.profile_events(&permits, 1000).await?;
        Ok(Some(
            events
                .into_iter()
                .filter_map(|e| e.item_category.map(|c| (c.id, e.at)))
                .collect(),
        ))
    }

    async fn condition_holds(
        &self,
        def: &JourneyDefinition,
        subject: &SubjectKey,
        check: impl Fn(&[(&str, Micros)]) -> bool,
    ) -> Result<bool> {
        let Some(list) = self.engagements(def, subject).await? else {
            return Ok(false);
        };
        let borrowed: Vec<(&str, Micros)> = list.iter().map(|(c, at)| (c.as_str(), *at)).collect();
        Ok(check(&borrowed))
    }

    async fn advance(
        &self,
        def: &JourneyDefinition,
        mut pos: Position,
        now: Micros,
        run: &mut JourneyRun,
    ) -> Result<()> {
        let subject = SubjectKey::parse(&pos.subject_key)?;
        let arrive = |step: Option<&str>, at: Micros| PositionMove {
            step: step.map(str::to_owned),
            arrived_at: at,
            wake_at: at,
            status: if step.is_some() { "active" } else { "done" },
        };
        // What the store holds. Moves that neither send nor stop (entry, branches) stay in
        // memory until the next one that does: a crash in between redoes them, and nothing was
        // sent meanwhile, since a message is written together with its position.
        let mut stored = pos.clone();
        // A walk without a wait is at most every step once (no cycle without a wait).
        for _ in 0..=def.steps.len() + 1 {
            run.steps += 1;
            let to = match pos.step.as_deref() {
                None => {
                    let enters = def.conditions.is_empty()
                        || self
                            .condition_holds(def, &subject, |e| def.may_enter(e, now))
                            .await?;
                    if !enters {
                        self.store
                            .drop_position(&pos.journey_id, &pos.subject_key)
                            .await?;
                        run.not_entered += 1;
                        return Ok(());
                    }
                    arrive(Some(def.steps[0].id()), now)
                }
                Some(id) => match def.step(id) {
                    None => PositionMove {
                        status: "exited",
                        ..arrive(Some(id), now)
                    },
                    Some((i, Step::Wait { minutes, .. })) => {
                        let at = now + Micros::from(*minutes) * 60_000_000;
                        let mut to = arrive(def.next_after(i), at);
                        if to.step.is_none() {
                            to.arrived_at = now;
                            to.wake_at = now;
                        }
                        to
                    }
                    Some((
                        _,
                        Step::Branch {
                            condition,
                            then,
                            otherwise,
                            ..
                        },
                    )) => {
                        let holds = self
                            .condition_holds(def, &subject, |e| condition.holds(e, now))
                            .await?;
                        arrive(Some(if holds { then } else { otherwise }), now)
                    }
                    Some((i, step @ Step::Message { .. })) => {
                        let (to, m, event) =
                            self.message_step(def, &pos, i, step, &subject, now).await?;
                        match m.status.as_str() {
                            "queued" => run.sent += 1,
                            "deferred" => run.deferred += 1,
                            _ => run.suppressed += 1,
                        }
                        if !self
                            .store
                            .record_journey_step(&stored, &to, Some((&m, event.as_ref())), now)
                            .await?
                        {
                            return Ok(());
                        }
                        stored = Position {
                            step: to.step.clone(),
                            arrived_at: to.arrived_at,
                            wake_at: to.wake_at,
                            ..pos.clone()
                        };
                        if to.status == "done" {
                            run.finished += 1;
                        }
                        if to.status != "active" || to.wake_at > now || to.step == pos.step {
                            return Ok(());
                        }
                        pos = Position {
                            step: to.step,
                            arrived_at: to.arrived_at,
                            wake_at: to.wake_at,
                            ..pos
                        };
                        continue;
                    }
                },
            };
            if to.status != "active" || to.wake_at > now {
                if self
                    .store
                    .record_journey_step(&stored, &to, None, now)
                    .await?
                    && to.status == "done"
                {
                    run.finished += 1;
                }
                return Ok(());
            }
            pos = Position {
                step: to.step,
                arrived_at: to.arrived_at,
                wake_at: to.wake_at,
                ..pos
            };
        }
        Ok(())
    }

    /// One message step: the boundaries now, the message row, and where the position goes.
    async fn message_step(
        &self,
        def: &JourneyDefinition,
        pos: &Position,
        i: usize,
        step: &Step,
        subject: &SubjectKey,
        now: Micros,
    ) -> Result<(PositionMove, JourneyMessage, Option<OutboxEvent>)> {
        let Step::Message {
            id,
            channel,
            template,
            theme,
            personalize,
            expires_after_hours,
            ..
        } = step
        else {
            unreachable!("called for message steps only");
        };
        let cfg = &self.config.journeys;
        let purposes = self.purposes();
        let purpose = self.channel_purpose(channel).and_then(|id| {
            purposes
                .iter()
                .find(|(p, _)| p.as_str() == id)
                .map(|(_, p)| p.clone())
        });
        let (permit, _) = match &purpose {
            Some(p) => self.permit_and_status(subject, p).await?,
            None => (None, candor_domain::ConsentStatus::NotAsked),
        };
        let prefs = self.preferences(subject).await?;
        let zone_name = self
            .store
            .time_zone(subject.as_str())
            .await?
            .unwrap_or_else(|| cfg.default_time_zone.clone());
        let zone = jiff::tz::TimeZone::get(&zone_name)
            .map_err(|e| AppError::Internal(format!("time zone `{zone_name}`: {e}")))?;
        let offset = move |at: Micros| -> Micros {
            jiff::Timestamp::from_microsecond(at)
                .map(|t| Micros::from(zone.to_offset(t).seconds()) * 1_000_000)
                .unwrap_or(0)
        };
        let day = local_day(now, &offset);
        let sent_today = self
            .store
            .messages_sent_on(subject.as_str(), day, channel)
            .await?;
        let caps = Caps {
            per_channel: cfg.cap_per_channel,
            all_channels: cfg.cap_all_channels,
        };
        let quiet_hours = (!cfg.quiet_hours_start.is_empty())
            .then(|| {
                Some(QuietHours {
                    start_minute: QuietHours::minute_of(&cfg.quiet_hours_start)?,
                    end_minute: QuietHours::minute_of(&cfg.quiet_hours_end)?,
                })
            })
            .flatten();
        let expires_at = pos.arrived_at + Micros::from(*expires_after_hours) * HOUR;
        let cx = SendContext {
            now,
            expires_at,
            channel,
            theme: theme.as_deref(),
            personalize: *personalize,
            level: prefs.level,
            quiet_periods: &prefs.quiet_periods,
            sent_today,
            caps: &caps,
            quiet_hours,
            sensitive_window: Micros::from(cfg.sensitive_date_window_days) * 24 * HOUR,
            offset: &offset,
        };
        let decision = candor_domain::journey::decide_send(permit.as_ref(), &cx);
        let key = format!("{}|{}|{id}|{}", def.id, pos.subject_key, pos.arrived_at);
        let message_id = format!(
            "msg_{}",
            &hex::encode(sha2::Sha256::digest(key.as_bytes()))[..24]
        );
        let next = def.next_after(i);
        let onward = PositionMove {
            step: next.map(str::to_owned),
            arrived_at: now,
            wake_at: now,
            status: if next.is_some() { "active" } else { "done" },
        };
        let mut m = JourneyMessage {
            id: message_id.clone(),
            journey_id: def.id.clone(),
            subject_key: pos.subject_key.clone(),
            step: id.clone(),
            arrived_at: pos.arrived_at,
            channel: channel.clone(),
            status: String::new(),
            reason: None,
            reasons: "[]".into(),
            uses: "none".into(),
            local_day: day,
            expires_at,
            created_at: now,
            updated_at: now,
        };
        Ok(match decision {
            SendDecision::Send { uses, reasons } => {
                m.status = "queued".into();
                m.uses = uses_name(uses).into();
                m.reasons = json!(reasons).to_string();
                let payload = json!({
                    "id": message_id,
                    "type": "message.send",
                    "created_at": candor_domain::format_micros(now),
                    "journey": def.id,
                    "step": id,
                    "channel": channel,
                    "template": template,
                    "theme": theme,
                    "personalization": uses_name(uses),
                    "level": prefs.level.as_str(),
                    "reasons": reasons,
                    "expires_at": candor_domain::format_micros(expires_at),
                    "subject_key": pos.subject_key,
                });
                let event = OutboxEvent {
                    id: message_id,
                    event_type: "message.send".into(),
                    payload: payload.to_string(),
                    sealed_external_id: pos.sealed_external_id.clone(),
                    subject_key: Some(pos.subject_key.clone()),
                };
                (onward, m, Some(event))
            }
            SendDecision::Defer { until } => {
                m.status = "deferred".into();
                m.reason = Some(format!(
                    "quiet_hours: deferred to {}",
                    candor_domain::format_micros(until)
                ));
                let stay = PositionMove {
                    step: pos.step.clone(),
                    arrived_at: pos.arrived_at,
                    wake_at: until,
                    status: "active",
                };
                (stay, m, None)
            }
            SendDecision::Suppress(why) => {
                m.status = "suppressed".into();
                m.reason = Some(why.as_str().into());
                (onward, m, None)
            }
        })
    }
}
