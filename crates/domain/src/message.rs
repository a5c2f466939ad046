//! Segment-spec messages: parsing and validation of what analytics clients send.
//!
//! Invariants: a `Message` always has a message id, an identity (`userId` or `anonymousId`; for
//! `alias`, `userId` and `previousId`), a name where its type needs one, object-valued
//! `properties`/`traits`/`context`, and a timestamp corrected for client clock skew that is not
//! far in the future. Anything else is a `MessageError` naming the field.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Micros;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl MessageKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "track" => MessageKind::Track,
            "identify" => MessageKind::Identify,
            "page" => MessageKind::Page,
            "screen" => MessageKind::Screen,
            "group" => MessageKind::Group,
            "alias" => MessageKind::Alias,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Track => "track",
            MessageKind::Identify => "identify",
            MessageKind::Page => "page",
            MessageKind::Screen => "screen",
            MessageKind::Group => "group",
            MessageKind::Alias => "alias",
        }
    }
}

/// A validated message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: MessageKind,
    pub message_id: String,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub previous_id: Option<String>,
    pub group_id: Option<String>,
    /// `event` of a track, `name` of a page/screen.
    pub name: Option<String>,
    pub properties: Map<String, Value>,
    pub traits: Map<String, Value>,
    pub context: Map<String, Value>,
    /// When it happened, corrected for the client's clock skew.
    pub timestamp: Micros,
}

impl Message {
    /// The inventory key of this message: `track:<event>`, `page`, `screen`, `group`, `identify`,
    /// `alias`.
    pub fn inventory_key(&self) -> String {
        match self.kind {
            MessageKind::Track => format!("track:{}", self.name.as_deref().unwrap_or_default()),
            k => k.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn err(field: &'static str, reason: impl Into<String>) -> MessageError {
    MessageError {
        field,
        reason: reason.into(),
    }
}

/// Properties that name the item an event is about, in order of preference.
pub const ITEM_ID_FIELDS: [&str; 3] = ["product_id", "sku", "item_id"];

/// Largest accepted future skew after correction.
const MAX_FUTURE: Micros = 24 * 3600 * 1_000_000;
/// 2000-01-01: anything earlier is a broken clock, not history.
const MIN_TIME: Micros = 946_684_800 * 1_000_000;

fn id_field(m: &Map<String, Value>, field: &'static str) -> Result<Option<String>, MessageError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= 256 && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        // Some clients send numeric ids; Segment accepts them as strings.
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(err(
            field,
            "must be a string of at most 256 characters without control characters",
        )),
    }
}

fn object<'v>(
    m: &'v Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'v Map<String, Value>>, MessageError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(err(field, "must be an object")),
    }
}

/// Moves an object field out of the message (checked by `object` already); copying it would
/// cost an allocation per property of every event.
fn take_object(m: &mut Map<String, Value>, field: &'static str) -> Map<String, Value> {
    match m.get_mut(field) {
        Some(Value::Object(o)) => std::mem::take(o),
        _ => Map::new(),
    }
}

fn time(m: &Map<String, Value>, field: &'static str) -> Result<Option<Micros>, MessageError> {
    match m.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::parse_rfc3339(s)
            .map(Some)
            .map_err(|_| err(field, "must be an ISO 8601 / RFC 3339 date-time")),
        Some(_) => Err(err(field, "must be an ISO 8601 string")),
    }
}

/// Validates one message. `kind` is the endpoint's type (`None` inside a batch, where `type`
/// decides). `received_at` is the server's clock when the request arrived. The message's
/// `properties`, `traits` and `context` objects move into the result, leaving empty objects in
/// `value`; on an error `value` is unchanged.
pub fn parse_message(
    value: &mut Value,
    kind: Option<MessageKind>,
    received_at: Micros,
) -> Result<Message, MessageError> {
    let m = value
        .as_object()
        .ok_or_else(|| err("message", "must be a JSON object"))?;
    let declared = match m.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(MessageKind::parse(s).ok_or_else(|| {
            err(
                "type",
                format!("`{s}` is not track, identify, page, screen, group or alias"),
            )
        })?),
        Some(_) => return Err(err("type", "must be a string")),
    };
    let kind = match (kind, declared) {
        (Some(k), Some(d)) if k != d => {
            return Err(err(
                "type",
                format!("`{}` sent to the {} endpoint", d.as_str(), k.as_str()),
            ));
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Err(err("type", "is required in a batch")),
    };
    let user_id = id_field(m, "userId")?;
    let anonymous_id = id_field(m, "anonymousId")?;
    let previous_id = id_field(m, "previousId")?;
    let group_id = id_field(m, "groupId")?;
    match kind {
        MessageKind::Alias if user_id.is_none() || previous_id.is_none() => {
            return Err(err("userId", "alias needs userId and previousId"));
        }
        MessageKind::Group if group_id.is_none() => {
            return Err(err("groupId", "is required for group"));
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(err("userId", "userId or anonymousId is required"));
        }
        _ => {}
    }
    let name = match kind {
        MessageKind::Track => match m.get("event") {
            Some(Value::String(s))
                if !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control) =>
            {
                Some(s.clone())
            }
            _ => {
                return Err(err(
                    "event",
                    "track needs an event name of 1-200 characters",
                ));
            }
        },
        MessageKind::Page | MessageKind::Screen => match m.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= 200 && !s.chars().any(char::is_control) => {
                Some(s.clone())
            }
            Some(_) => {
                return Err(err(
                    "name",
                    "must be a string of at most 200 characters without control characters",
                ));
            }
        },
        _ => None,
    };
    let properties = object(m, "properties")?;
    // These become the event's item id, a column of its own rather than JSON text.
    for field in ITEM_ID_FIELDS {
        if let Some(Value::String(s)) = properties.and_then(|p| p.get(field))
            && (s.len() > 256 || s.chars().any(char::is_control))
        {
            return Err(err(
                "properties",
                format!("`{field}` must be at most 256 characters without control characters"),
            ));
        }
    }
    // Segment puts identify/group traits at the top level; older clients put them in context.
    object(m, "traits")?;
    object(m, "context")?;
    let timestamp = time(m, "timestamp")?;
    let sent_at = time(m, "sentAt")?;
    // Clock-skew correction as Segment does it: shift by how far the client's clock was off when
    // it sent the batch.
    let skew = sent_at.map_or(0, |s| received_at - s);
    let timestamp = timestamp.map_or(received_at, |t| t + skew);
    if timestamp > received_at + MAX_FUTURE {
        return Err(err("timestamp", "is more than a day in the future"));
    }
    if timestamp < MIN_TIME {
        return Err(err("timestamp", "is before the year 2000"));
    }
    let message_id = match m.get("messageId") {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 200 && !s.chars().any(char::is_control) =>
        {
            s.clone()
        }
        None | Some(Value::Null) => {
            // Without an id, retries of the same message must still deduplicate: derive it from
            // the content.
            format!(
                "derived-{}",
                hex::encode(&Sha256::digest(value.to_string().as_bytes())[..16])
            )
        }
        Some(_) => return Err(err("messageId", "must be a string of 1-200 characters")),
    };
    let m = value
        .as_object_mut()
        .expect("checked to be an object above");
    let (properties, traits, context) = (
        take_object(m, "properties"),
        take_object(m, "traits"),
        take_object(m, "context"),
    );
    Ok(Message {
        kind,
        message_id,
        user_id,
        anonymous_id,
        previous_id,
        group_id,
        name,
        properties,
        traits,
        context,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Micros = 1_800_000_000_000_000;

    #[test]
    fn control_characters_never_reach_a_column() {
        for v in [
            json!({"type": "track", "event": "Viewed", "userId": "u1", "properties": {"product_id": "a\u{0}b"}}),
            json!({"type": "page", "name": "Home\u{0}", "userId": "u1"}),
            json!({"type": "track", "event": "V\u{0}", "userId": "u1"}),
        ] {
            assert!(parse_message(&mut v.clone(), None, NOW).is_err(), "{v}");
        }
    }

    #[test]
    fn parses_and_corrects_skew() {
        let v = json!({"type": "track", "event": "Product Viewed", "userId": "u1", "messageId": "m1", "properties": {"sku": "A"},
                       "timestamp": "2027-01-15T08:00:00Z", "sentAt": "2027-01-15T08:00:10Z"});
        let received = crate::parse_rfc3339("2027-01-15T08:05:10Z").unwrap();
        let m = parse_message(&mut v.clone(), None, received).unwrap();
        assert_eq!(m.properties, *v["properties"].as_object().unwrap());
        assert_eq!(m.inventory_key(), "track:Product Viewed");
        assert_eq!(
            m.timestamp,
            crate::parse_rfc3339("2027-01-15T08:05:00Z").unwrap(),
            "the client clock was 5 minutes slow"
        );
        let no_time = parse_message(
            &mut json!({"userId": 7, "event": "x"}),
            Some(MessageKind::Track),
            NOW,
        )
        .unwrap();
        assert_eq!(
            (no_time.timestamp, no_time.user_id.as_deref()),
            (NOW, Some("7"))
        );
        assert!(no_time.message_id.starts_with("derived-"));
        assert_eq!(
            parse_message(
                &mut json!({"userId": 7, "event": "x"}),
                Some(MessageKind::Track),
                NOW
            )
            .unwrap()
            .message_id,
            no_time.message_id
        );
    }

    #[test]
    fn names_the_bad_field() {
        let bad = |mut v: Value, kind| parse_message(&mut v, kind, NOW).unwrap_err().field;
        assert_eq!(
            bad(json!({"event": "x"}), Some(MessageKind::Track)),
            "userId"
        );
        assert_eq!(
            bad(json!({"userId": "u"}), Some(MessageKind::Track)),
            "event"
        );
        assert_eq!(
            bad(
                json!({"userId": "u", "type": "page"}),
                Some(MessageKind::Track)
            ),
            "type"
        );
        assert_eq!(bad(json!({"userId": "u"}), None), "type");
        assert_eq!(
            bad(
                json!({"userId": "u", "properties": [1]}),
                Some(MessageKind::Page)
            ),
            "properties"
        );
        assert_eq!(
            bad(
                json!({"userId": "u", "timestamp": "2099-01-01T00:00:00Z"}),
                Some(MessageKind::Page)
            ),
            "timestamp"
        );
        assert_eq!(
            bad(
                json!({"userId": "u", "timestamp": "yesterday"}),
                Some(MessageKind::Page)
            ),
            "timestamp"
        );
        assert_eq!(
            bad(json!({"userId": {"a": 1}}), Some(MessageKind::Identify)),
            "userId"
        );
        assert_eq!(
            bad(json!({"userId": "u"}), Some(MessageKind::Alias)),
            "userId"
        );
        assert_eq!(bad(json!([1]), Some(MessageKind::Identify)), "message");
    }
}
