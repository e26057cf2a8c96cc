//! The Worker's log: one JSON object per event, one line each, for Workers Logs
//! (`[observability]` in wrangler.toml) or any log drain. Every line the Worker writes goes
//! through here, so what may appear in a log is decided in one place:
//!
//! - a phone number only as its calling code and last two digits ([`Line::to`]: `+20…89`);
//! - free text (provider answers, storage errors) only with every run of four or more digits
//!   masked ([`Line::text`]): a provider that echoes the number or the message cannot leak
//!   either; statuses (three digits) stay readable;
//! - never a code, a token, a secret or a message text: callers pass ids, names and counts.
//!
//! The event names and their fields are listed in docs/operations.md.
//!
//! May import: `otp-core` and `worker`. Everything else may import it.

/// One log line being built: `Line::new("delivery.sent").str("channel", "whatsapp").info()`.
pub struct Line(String);

impl Line {
    /// A line for event `event`.
    pub fn new(event: &str) -> Self {
        let mut line = Line(String::with_capacity(160));
        line.0.push('{');
        line.key_str("event", event);
        line
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn key_str(&mut self, key: &str, value: &str) {
        self.key(key);
        // serde_json escapes quotes, backslashes and control characters.
        self.0
            .push_str(&serde_json::to_string(value).unwrap_or_default());
    }

    /// A string field (an id, a name, an outcome): written as it is.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key_str(key, value);
        self
    }

    /// A number field.
    pub fn num(mut self, key: &str, value: i64) -> Self {
        self.key(key);
        self.0.push_str(&value.to_string());
        self
    }

    /// Free text (an error, a provider's answer), with every run of 4+ digits masked.
    pub fn text(self, key: &str, value: &str) -> Self {
        self.str(key, &otp_core::telemetry::scrub(value))
    }

    /// A recipient as `to`: its calling code and last two digits (`+20…89`), never the number.
    pub fn to(self, digits: &str) -> Self {
        self.str("to", &otp_core::telemetry::mask(digits))
    }

    /// Writes the line at the info level.
    pub fn info(mut self) {
        self.0.push('}');
        worker::console_log!("{}", self.0);
    }

    /// Writes the line at the error level.
    pub fn error(mut self) {
        self.0.push('}');
        worker::console_error!("{}", self.0);
    }
}

/// A one-field error line: `{"event": event, "error": <e, scrubbed>}`.
pub fn fault(event: &str, e: &dyn std::fmt::Display) {
    Line::new(event).text("error", &e.to_string()).error();
}
