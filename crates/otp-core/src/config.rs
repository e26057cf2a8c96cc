//! The service's configuration schema: instances as code in `wrangler.toml` (`INSTANCES`).
//!
//! Parsing is strict (`deny_unknown_fields`): a typo in a deploy's config is an error at the
//! first request, not a silently ignored limit. `docs/configuration.md` describes every field.

use crate::challenge::Policy;
use crate::ids::is_uuid;
use serde::Deserialize;
use std::fmt;

/// How an instance delivers its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Development: messages are kept in the recipient's Durable Object and shown by
    /// `GET /dev/outbox`; nothing leaves the machine.
    Outbox,
}

impl ChannelKind {
    /// True for channels that reach real phones.
    pub fn is_real(self) -> bool {
        !matches!(self, Self::Outbox)
    }

    /// The channel's name in status bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
        }
    }
}

/// Message texts of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Messages {
    /// The code message; `{code}`, `{name}` and `{minutes}` are filled in.
    pub code: String,
}

impl Default for Messages {
    fn default() -> Self {
        Self {
            code: "{code} is your {name} verification code. It expires in {minutes} minutes."
                .into(),
        }
    }
}

/// One tenant of the service: its id (the `{instance}` of the URLs), channel and rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// The instance UUID used in API paths.
    pub id: String,
    /// Default app name for `{name}` when a request gives none.
    pub name: String,
    /// Delivery channel.
    pub channel: ChannelKind,
    /// The WhatsApp business number users write to (digits), for link challenges.
    #[serde(default)]
    pub business_number: Option<String>,
    /// Limits; every field defaults (docs/security.md).
    #[serde(default)]
    pub limits: Policy,
    /// Message texts.
    #[serde(default)]
    pub messages: Messages,
    /// Longest code lifetime this instance accepts, in seconds (tightens the API's 1800).
    #[serde(default)]
    pub max_expires: Option<i64>,
}

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// All instances of one deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Instances, unique by id.
    pub instances: Vec<InstanceConfig>,
}

impl ServiceConfig {
    /// Parses and checks the `INSTANCES` JSON array.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let instances: Vec<InstanceConfig> = serde_json::from_str(json)
            .map_err(|e| ConfigError(format!("INSTANCES is not valid: {e}")))?;
        Self::new(instances)
    }

    /// Checks instances: UUID ids, no duplicates, sane limits.
    pub fn new(instances: Vec<InstanceConfig>) -> Result<Self, ConfigError> {
        for (i, inst) in instances.iter().enumerate() {
            if !is_uuid(&inst.id) {
                return Err(ConfigError(format!("instance {i}: id must be a UUID")));
            }
            if instances[..i]
                .iter()
                .any(|o| o.id.eq_ignore_ascii_case(&inst.id))
            {
                return Err(ConfigError(format!("instance {}: duplicate id", inst.id)));
            }
            let l = &inst.limits;
            if l.max_attempts == 0 || l.max_sends == 0 || l.send_window <= 0 {
                return Err(ConfigError(format!(
                    "instance {}: max_attempts, max_sends and send_window must be positive",
                    inst.id
                )));
            }
            if let Some(m) = inst.max_expires {
                if !(60..=1800).contains(&m) {
                    return Err(ConfigError(format!(
                        "instance {}: max_expires must be between 60 and 1800",
                        inst.id
                    )));
                }
            }
        }
        Ok(Self { instances })
    }

    /// The instance with this id (case-insensitive, as UUIDs are).
    pub fn instance(&self, id: &str) -> Option<&InstanceConfig> {
        self.instances
            .iter()
            .find(|i| i.id.eq_ignore_ascii_case(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const ID: &str = "9f1c2d3e-0000-4000-8000-000000000001";

    #[test]
    fn minimal_instance_gets_the_defaults() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"Demo","channel":"outbox"}}]"#
        ))
        .unwrap();
        let i = c.instance(&ID.to_uppercase()).unwrap();
        assert_eq!(i.limits, Policy::default());
        assert!(i.messages.code.contains("{code}"));
        assert!(!i.channel.is_real());
    }

    #[test]
    fn limits_can_be_tightened_per_instance() {
        let c = ServiceConfig::from_json(&format!(
            r#"[{{"id":"{ID}","name":"D","channel":"outbox","limits":{{"max_attempts":3,"resend_cooldown":30}}}}]"#
        ))
        .unwrap();
        let l = c.instances[0].limits;
        assert_eq!((l.max_attempts, l.resend_cooldown, l.max_sends), (3, 30, 5));
    }

    #[test]
    fn mistakes_are_refused_with_a_reason() {
        for (json, says) in [
            (
                r#"[{"id":"x","name":"D","channel":"outbox"}]"#.to_string(),
                "UUID",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"carrier-pigeon"}}]"#),
                "unknown variant",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"outbox","limitz":{{}}}}]"#),
                "unknown field",
            ),
            (
                format!(
                    r#"[{{"id":"{ID}","name":"D","channel":"outbox"}},{{"id":"{ID}","name":"E","channel":"outbox"}}]"#
                ),
                "duplicate",
            ),
            (
                format!(
                    r#"[{{"id":"{ID}","name":"D","channel":"outbox","limits":{{"max_attempts":0}}}}]"#
                ),
                "positive",
            ),
            (
                format!(r#"[{{"id":"{ID}","name":"D","channel":"outbox","max_expires":5000}}]"#),
                "max_expires",
            ),
        ] {
            let err = ServiceConfig::from_json(&json).unwrap_err();
            assert!(err.0.contains(says), "{json}: {err}");
        }
    }
}
