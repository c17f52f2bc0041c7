//! The mapping file of `memberd import`: which source column (CSV header) or key (JSON
//! Lines) fills which profile field, how values translate, and how dates are written. An
//! example, for a GBK export of an older POS system:
//!
//! ```toml
//! encoding = "gbk"
//! tag_separator = "|"
//! date_formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
//!
//! [fields]
//! member_id = "会员编号"
//! name = "姓名"
//! phone = "手机"
//! id_number = "身份证号"
//! birthday = "生日"
//! gender = "性别"
//! store = "开卡门店"
//! consent_sms = "短信营销"
//! tags = "标签"
//!
//! [attributes]
//! city = "城市"
//!
//! [values.gender]
//! "男" = "m"
//! "女" = "f"
//! ```

use anyhow::{Context, bail};
use loyalty_common::ids::MemberId;
use loyalty_member::blind::{self, Kind};
use loyalty_member::profile::{Consents, Personal};
use loyalty_member::service::{ProfileInput, check_attributes, check_tag};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Every field a mapping may fill.
pub const FIELDS: &[&str] = &[
    "member_id",
    "name",
    "gender",
    "birthday",
    "phone",
    "email",
    "id_number",
    "address",
    "channel",
    "store",
    "consent_sms",
    "consent_email",
    "consent_app",
    "tags",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// `csv` or `jsonl`; by default from the file's extension.
    pub format: Option<String>,
    /// `utf-8` (the default) or `gbk`.
    pub encoding: Option<String>,
    /// The CSV delimiter (one character; `,` by default).
    pub delimiter: Option<char>,
    /// Profile field → source column.
    pub fields: BTreeMap<String, String>,
    /// Custom attribute → source column.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Field → (source value → value), e.g. gender `男` → `m`.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// How birthdays are written (chrono formats), tried in order.
    #[serde(default = "default_date_formats")]
    pub date_formats: Vec<String>,
    #[serde(default = "default_tag_separator")]
    pub tag_separator: String,
}

fn default_date_formats() -> Vec<String> {
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"]
        .map(String::from)
        .to_vec()
}

fn default_tag_separator() -> String {
    ",".into()
}

/// A problem with one field of one row, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

fn field_error(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Mapping {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the mapping file {}", path.display()))?;
        let mapping: Mapping = toml::from_str(&text)
            .with_context(|| format!("the mapping file {} is not valid", path.display()))?;
        mapping.check()?;
        Ok(mapping)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !self.fields.contains_key("member_id") {
            bail!("the mapping must name the column of member_id under [fields]");
        }
        for field in self.fields.keys().chain(self.values.keys()) {
            if !FIELDS.contains(&field.as_str()) {
                bail!(
                    "the mapping names {field:?}, which is not a field; fields are: {}",
                    FIELDS.join(", ")
                );
            }
        }
        let attributes = self.attributes.keys().map(|a| (a.clone(), String::new()));
        check_attributes(&attributes.collect())
            .map_err(|e| anyhow::anyhow!("[attributes]: {}", e.message))?;
        Ok(())
    }

    /// Every source column the mapping reads.
    pub fn columns(&self) -> impl Iterator<Item = &String> {
        self.fields.values().chain(self.attributes.values())
    }

    /// A row's values (source column → value) as a registration, or every problem found.
    pub fn to_input(
        &self,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(MemberId, ProfileInput), Vec<FieldError>> {
        let mut errors = Vec::new();
        let value = |field: &str| -> Option<String> {
            let raw = get(self.fields.get(field)?)?;
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            let translated = self.values.get(field).and_then(|m| m.get(raw));
            Some(translated.map_or(raw, |v| v.as_str()).to_string())
        };
        let member = match value("member_id").map(MemberId::parse) {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                errors.push(field_error("member_id", e.message));
                None
            }
            None => {
                errors.push(field_error("member_id", "missing"));
                None
            }
        };
        let mut input = ProfileInput::default();
        self.personal(&value, &mut input.personal, &mut errors);
        input.channel = value("channel");
        input.store = value("store");
        input.consents = Consents {
            sms: self.flag(&value, "consent_sms", &mut errors),
            email: self.flag(&value, "consent_email", &mut errors),
            app: self.flag(&value, "consent_app", &mut errors),
        };
        for (attribute, column) in &self.attributes {
            if let Some(v) = get(column).filter(|v| !v.trim().is_empty()) {
                input
                    .attributes
                    .insert(attribute.clone(), v.trim().to_string());
            }
        }
        if let Err(e) = check_attributes(&input.attributes) {
            errors.push(field_error("attributes", e.message));
        }
        if let Some(tags) = value("tags") {
            for tag in tags.split(self.tag_separator.as_str()).map(str::trim) {
                match check_tag(tag) {
                    Ok(()) if !tag.is_empty() => {
                        input.tags.insert(tag.to_string());
                    }
                    Ok(()) => {}
                    Err(e) => errors.push(field_error("tags", e.message)),
                }
            }
        }
        match (member, errors.is_empty()) {
            (Some(member), true) => Ok((member, input)),
            _ => Err(errors),
        }
    }

    fn personal(
        &self,
        value: &impl Fn(&str) -> Option<String>,
        personal: &mut Personal,
        errors: &mut Vec<FieldError>,
    ) {
        for (field, kind) in [
            ("phone", Kind::Phone),
            ("email", Kind::Email),
            ("id_number", Kind::IdNumber),
        ] {
            let Some(v) = value(field) else { continue };
            if blind::normalise(kind, &v).is_none() {
                // The value itself is personal data: never in the report.
                errors.push(field_error(field, format!("not a valid {field}")));
            } else if let Some(slot) = personal.slot(field) {
                *slot = Some(v.into());
            }
        }
        if let Some(v) = value("birthday") {
            let parsed = self
                .date_formats
                .iter()
                .find_map(|f| chrono::NaiveDate::parse_from_str(&v, f).ok());
            match parsed {
                Some(date) => personal.birthday = Some(date.format("%Y-%m-%d").to_string().into()),
                None => errors.push(field_error(
                    "birthday",
                    format!("not a date in {}", self.date_formats.join(" or ")),
                )),
            }
        }
        for field in ["name", "gender", "address"] {
            let Some(v) = value(field) else { continue };
            if v.chars().count() > 200 {
                errors.push(field_error(field, "longer than 200 characters"));
            } else if let Some(slot) = personal.slot(field) {
                *slot = Some(v.into());
            }
        }
    }

    fn flag(
        &self,
        value: &impl Fn(&str) -> Option<String>,
        field: &str,
        errors: &mut Vec<FieldError>,
    ) -> bool {
        let Some(v) = value(field) else { return false };
        match v.to_lowercase().as_str() {
            "1" | "true" | "yes" | "y" | "是" => true,
            "0" | "false" | "no" | "n" | "否" => false,
            _ => {
                errors.push(field_error(field, "not yes or no (1/0, true/false, 是/否)"));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_common::personal::Exposed;

    fn mapping() -> Mapping {
        toml::from_str(
            r#"
            tag_separator = "|"
            [fields]
            member_id = "id"
            phone = "手机"
            birthday = "生日"
            gender = "性别"
            consent_sms = "短信"
            tags = "标签"
            [attributes]
            city = "城市"
            [values.gender]
            "男" = "m"
            "#,
        )
        .unwrap()
    }

    fn row<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |col| {
            pairs
                .iter()
                .find(|(c, _)| *c == col)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_good_row_becomes_a_registration() {
        let (id, input) = mapping()
            .to_input(row(&[
                ("id", "A001"),
                ("手机", "138 1234 5678"),
                ("生日", "1990/03/07"),
                ("性别", "男"),
                ("短信", "是"),
                ("标签", "vip| gold-card"),
                ("城市", "上海"),
            ]))
            .unwrap();
        assert_eq!(id.as_str(), "A001");
        assert_eq!(input.personal.birthday.exposed(), Some("1990-03-07"));
        assert_eq!(input.personal.gender.exposed(), Some("m"));
        assert!(input.consents.sms);
        assert_eq!(input.attributes["city"], "上海");
        assert_eq!(input.tags.len(), 2);
    }

    #[test]
    fn every_bad_field_of_a_row_is_reported_without_its_value() {
        let errors = mapping()
            .to_input(row(&[
                ("手机", "12345"),
                ("生日", "07.03.1990x"),
                ("短信", "maybe"),
                ("标签", "VIP!"),
            ]))
            .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["member_id", "phone", "birthday", "consent_sms", "tags"]
        );
        assert!(errors.iter().all(|e| !e.reason.contains("12345")));
    }

    #[test]
    fn a_mapping_must_name_member_id_and_real_fields() {
        let err = toml::from_str::<Mapping>("[fields]\nphone = \"p\"")
            .map_err(anyhow::Error::from)
            .and_then(|m| m.check())
            .unwrap_err();
        assert!(err.to_string().contains("member_id"), "{err}");
        let m: Mapping = toml::from_str("[fields]\nmember_id = \"i\"\nmobile = \"p\"").unwrap();
        assert!(m.check().unwrap_err().to_string().contains("mobile"));
    }
}
