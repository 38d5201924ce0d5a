//! What a person can change, declared once. Each setting has a row in [`table`]: its key (in
//! project files and the page), its command-line flag, its words (a label and one sentence of
//! help), its kind with its default and limits, and the rule that ties it to another setting.
//! The page builds its controls from [`Settings::schema`]; the CLI parses its options and writes
//! its usage from the same rows ([`Settings::from_flags`], [`Setting::usage_line`]); the model
//! card names settings by their labels. Adding a setting is a field of [`Settings`], its row,
//! and the code that uses it (the preprocessing for how a photo is seen).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::preprocess::{Framing, Seeing, CLOSER_VIEW_FRAMING};
use crate::train::{TrainConfig, MAX_HIDDEN_UNITS};

/// What a person can change. Missing fields take the defaults; unknown ones are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Units of a hidden ReLU layer; 0 trains a softmax regression.
    pub hidden_units: usize,
    /// How a photo that is not square becomes a square.
    pub framing: Framing,
    /// Also learn from each photo's mirror image, and average both when predicting.
    pub mirror: bool,
    /// Also learn from a closer view of each photo (cropped only), and average it in.
    pub zoom: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let seeing = Seeing::default();
        Settings {
            hidden_units: TrainConfig::default().hidden_units,
            framing: seeing.framing,
            mirror: seeing.mirror,
            zoom: seeing.zoom,
        }
    }
}

/// What kind of value a setting takes, with its limits.
#[derive(Debug, Clone)]
pub enum Kind {
    Boolean,
    Integer { min: usize, max: usize },
    /// The values (as project files spell them) with their words.
    Choice(&'static [(&'static str, &'static str)]),
}

/// What a setting changes: how photos are seen (every embedding is redone when it changes, and
/// every CLI command takes it) or how the head is trained (`train` and `eval` take it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Seeing,
    Training,
}

/// One setting's row.
#[derive(Debug, Clone)]
pub struct Setting {
    /// Its field in [`Settings`] as project files and the page spell it.
    pub key: &'static str,
    /// Its command-line option, without the dashes.
    pub flag: &'static str,
    pub label: &'static str,
    /// One sentence: what it does, and what it costs.
    pub help: &'static str,
    pub kind: Kind,
    pub scope: Scope,
    /// Offered only while another setting has a value: that setting's key, the value, and why.
    pub only_when: Option<(&'static str, Value, &'static str)>,
}

/// Every setting, in the order the page shows them.
pub fn table() -> Vec<Setting> {
    vec![
        Setting {
            key: "hiddenUnits",
            flag: "hidden",
            label: "Hidden layer units",
            help: "0 trains a softmax regression on the backbone's features; a hidden layer can learn classes no straight line separates, and needs more photos to do it",
            kind: Kind::Integer { min: 0, max: MAX_HIDDEN_UNITS },
            scope: Scope::Training,
            only_when: None,
        },
        Setting {
            key: "mirror",
            flag: "mirror",
            label: "Mirror",
            help: "also learn each photo's mirror image, and average both when predicting (a little more accurate; adding photos takes twice as long)",
            kind: Kind::Boolean,
            scope: Scope::Seeing,
            only_when: None,
        },
        Setting {
            key: "zoom",
            flag: "zoom",
            label: "Closer view",
            help: "also learn the centre of each photo, a quarter nearer, and average it in (about 3 points more accurate with 5 to 20 photos a class; adding photos takes twice as long)",
            kind: Kind::Boolean,
            scope: Scope::Seeing,
            only_when: Some(("framing", json!(CLOSER_VIEW_FRAMING), "a photo kept whole has no closer view")),
        },
        Setting {
            key: "framing",
            flag: "framing",
            label: "Framing",
            help: "how a photo that is not square becomes one",
            kind: Kind::Choice(&[("crop", "Crop to the centre square"), ("pad", "Keep the whole photo (pad to a square)")]),
            scope: Scope::Seeing,
            only_when: None,
        },
    ]
}

impl Setting {
    /// The value a command-line option's text stands for, or why it cannot be read.
    fn parse_flag(&self, text: &str) -> Result<Value> {
        let flag = self.flag;
        let bad = |takes: String| Err(Error::BadConfig(format!("--{flag} takes {takes}, not \"{text}\"")));
        match &self.kind {
            Kind::Boolean => match text {
                "on" => Ok(json!(true)),
                "off" => Ok(json!(false)),
                _ => bad("on or off".into()),
            },
            Kind::Integer { min, max } => match text.parse::<usize>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(json!(n)),
                _ => bad(format!("a whole number from {min} to {max}")),
            },
            Kind::Choice(choices) => match choices.iter().find(|(value, _)| *value == text) {
                Some((value, _)) => Ok(json!(value)),
                None => bad(choices.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(" or ")),
            },
        }
    }

    /// Its line in the CLI's usage: `  --zoom on|off   also learn … (default on)`.
    pub fn usage_line(&self) -> String {
        let values = match &self.kind {
            Kind::Boolean => "on|off".to_string(),
            Kind::Integer { .. } => "N".to_string(),
            Kind::Choice(choices) => choices.iter().map(|(v, _)| *v).collect::<Vec<_>>().join("|"),
        };
        let default = match (&self.kind, &Settings::default().to_json()[self.key]) {
            (Kind::Boolean, Value::Bool(on)) => (if *on { "on" } else { "off" }).to_string(),
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        let rule = match &self.only_when {
            Some((key, value, _)) => format!("; only with --{} {}", flag_of(key), value.as_str().unwrap_or_default()),
            None => String::new(),
        };
        format!("  --{:<17} {} (default {default}{rule})", format!("{} {values}", self.flag), self.help)
    }
}

fn flag_of(key: &str) -> &'static str {
    table().into_iter().find(|s| s.key == key).map_or("", |s| s.flag)
}

impl Settings {
    pub fn seeing(&self) -> Seeing {
        Seeing { framing: self.framing, mirror: self.mirror, zoom: self.zoom }
    }

    pub fn train_config(&self) -> TrainConfig {
        TrainConfig { hidden_units: self.hidden_units, ..TrainConfig::default() }
    }

    /// Refuse settings out of range, with the range in words.
    pub fn check(&self) -> Result<()> {
        self.train_config().check()
    }

    fn to_json(self) -> Value {
        serde_json::to_value(self).expect("settings are plain values")
    }

    /// Settings from command-line options, read by each setting's row: `value_of(flag)` is the
    /// option's text when it was given. Options not given keep their defaults.
    pub fn from_flags<'a>(value_of: impl Fn(&str) -> Option<&'a str>) -> Result<Settings> {
        let mut settings = Settings::default().to_json();
        for setting in table() {
            if let Some(text) = value_of(setting.flag) {
                settings[setting.key] = setting.parse_flag(text)?;
            }
        }
        let settings: Settings = serde_json::from_value(settings).map_err(|e| Error::BadConfig(e.to_string()))?;
        settings.check()?;
        Ok(settings)
    }

    /// Every setting for the page to build its controls from, in order: `[{ key, label, help,
    /// kind: "boolean" | "integer" | "choice", default, min?, max?, choices?: [{ value, label }],
    /// onlyWhen?: { key, value, why } }]`.
    pub fn schema() -> Value {
        let defaults = Settings::default().to_json();
        let rows: Vec<Value> = table()
            .into_iter()
            .map(|s| {
                let mut row = json!({ "key": s.key, "label": s.label, "help": s.help, "default": defaults[s.key] });
                match s.kind {
                    Kind::Boolean => row["kind"] = json!("boolean"),
                    Kind::Integer { min, max } => {
                        row["kind"] = json!("integer");
                        row["min"] = json!(min);
                        row["max"] = json!(max);
                    }
                    Kind::Choice(choices) => {
                        row["kind"] = json!("choice");
                        row["choices"] = choices.iter().map(|(value, label)| json!({ "value": value, "label": label })).collect();
                    }
                }
                if let Some((key, value, why)) = s.only_when {
                    row["onlyWhen"] = json!({ "key": key, "value": value, "why": why });
                }
                row
            })
            .collect();
        Value::Array(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::views;

    #[test]
    fn every_field_has_one_row_and_every_row_one_field() {
        let keys: Vec<&str> = table().iter().map(|s| s.key).collect();
        let fields: Vec<String> = Settings::default().to_json().as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), fields.len());
        for field in &fields {
            assert!(keys.contains(&field.as_str()), "{field} has no row in the table");
        }
        let flags: std::collections::HashSet<_> = table().iter().map(|s| s.flag).collect();
        assert_eq!(flags.len(), keys.len(), "flags are distinct");
    }

    #[test]
    fn choices_are_exactly_the_values_a_project_file_may_hold() {
        for setting in table() {
            if let Kind::Choice(choices) = setting.kind {
                for (value, _) in choices {
                    let mut json = Settings::default().to_json();
                    json[setting.key] = json!(value);
                    assert!(serde_json::from_value::<Settings>(json).is_ok(), "{value} is a {}", setting.key);
                }
                let mut json = Settings::default().to_json();
                json[setting.key] = json!("neither");
                assert!(serde_json::from_value::<Settings>(json).is_err());
            }
        }
    }

    #[test]
    fn the_schema_carries_defaults_limits_and_the_rule_the_preprocessing_follows() {
        let schema = Settings::schema();
        let row = |key: &str| schema.as_array().unwrap().iter().find(|r| r["key"] == key).unwrap().clone();
        assert_eq!(row("hiddenUnits")["max"], MAX_HIDDEN_UNITS);
        assert_eq!(row("hiddenUnits")["default"], TrainConfig::default().hidden_units);
        assert_eq!(row("mirror")["default"], Seeing::default().mirror);
        assert_eq!(row("framing")["choices"][1]["value"], "pad");
        // The rule the page shows is the one views() follows: a closer view only when framed so.
        let rule = &row("zoom")["onlyWhen"];
        for framing in [Framing::Crop, Framing::Pad] {
            let mut seeing = Seeing::default();
            (seeing.framing, seeing.mirror, seeing.zoom) = (framing, false, true);
            let closer = views(seeing).len() > 1;
            assert_eq!(closer, json!(framing) == rule["value"], "{framing:?}");
        }
    }

    #[test]
    fn command_line_options_are_read_by_the_same_rows() {
        let flags = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_flags(move |flag| pairs.iter().find(|(f, _)| *f == flag).map(|(_, v)| *v))
        };
        assert_eq!(flags(&[]).unwrap(), Settings::default());
        let s = flags(&[("hidden", "32"), ("mirror", "off"), ("framing", "pad")]).unwrap();
        assert_eq!(s, Settings { hidden_units: 32, mirror: false, framing: Framing::Pad, ..Settings::default() });
        for (pair, says) in [
            (("zoom", "yes"), "--zoom takes on or off, not \"yes\""),
            (("framing", "fill"), "--framing takes crop or pad, not \"fill\""),
            (("hidden", "2000"), "--hidden takes a whole number from 0 to 1024, not \"2000\""),
        ] {
            let err = Settings::from_flags(|flag| (flag == pair.0).then_some(pair.1)).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
        let line = table().iter().find(|s| s.key == "zoom").unwrap().usage_line();
        assert!(line.starts_with("  --zoom on|off") && line.ends_with("(default on; only with --framing crop)"), "{line}");
    }
}
