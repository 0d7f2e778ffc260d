//! Unknown keys, found before serde sees the file, so the message can name the
//! section and suggest the closest known key.
//!
//! serde's `deny_unknown_fields` stays on every raw type as the backstop. The known
//! keys come from the serde derive itself (see [`fields_of`]), so this pass and the
//! raw types cannot disagree about what a section accepts.

use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use toml::de::DeTable;

use super::raw::{
    RawConfig, RawDrain, RawHealth, RawHookTable, RawHooks, RawHost, RawLimits, RawNginx, RawProxy,
    RawProxyTls, RawService, RawSsh, RawTlsFiles, RawVerify,
};
use crate::spec::HookPoint;

/// One key that no section accepts.
#[derive(Debug)]
pub(super) struct UnknownKey {
    pub span: Range<usize>,
    pub message: String,
}

/// The unknown key that comes first in the file, if any.
pub(super) fn first_unknown_key(root: &DeTable<'_>) -> Option<UnknownKey> {
    let mut found = Vec::new();
    check(root, fields_of::<RawConfig>(), "the top level", &mut found);
    if let Some(proxy) = sub_table(root, "proxy") {
        check(proxy, fields_of::<RawProxy>(), "[proxy]", &mut found);
        if let Some(nginx) = sub_table(proxy, "nginx") {
            check(nginx, fields_of::<RawNginx>(), "[proxy.nginx]", &mut found);
        }
        if let Some(tls) = sub_table(proxy, "tls") {
            check(tls, fields_of::<RawProxyTls>(), "[proxy.tls]", &mut found);
        }
    }
    for (name, service) in sub_table(root, "services").into_iter().flatten() {
        let Some(service) = service.get_ref().as_table() else {
            continue; // not a table: serde reports the type error
        };
        let section = format!("services.{}", section_key(name.get_ref()));
        check(
            service,
            fields_of::<RawService>(),
            &format!("[{section}]"),
            &mut found,
        );
        if let Some(health) = sub_table(service, "health") {
            let fields = fields_of::<RawHealth>();
            check(health, fields, &format!("[{section}.health]"), &mut found);
        }
        if let Some(drain) = sub_table(service, "drain") {
            let fields = fields_of::<RawDrain>();
            check(drain, fields, &format!("[{section}.drain]"), &mut found);
        }
        if let Some(hooks) = sub_table(service, "hooks") {
            let fields = fields_of::<RawHooks>();
            check(hooks, fields, &format!("[{section}.hooks]"), &mut found);
            for point in HookPoint::ALL {
                if let Some(hook) = sub_table(hooks, point.as_str()) {
                    let fields = fields_of::<RawHookTable>();
                    let at = format!("[{section}.hooks.{point}]");
                    check(hook, fields, &at, &mut found);
                }
            }
        }
        if let Some(verify) = sub_table(service, "verify") {
            let fields = fields_of::<RawVerify>();
            check(verify, fields, &format!("[{section}.verify]"), &mut found);
        }
        if let Some(tls) = sub_table(service, "tls") {
            let fields = fields_of::<RawTlsFiles>();
            check(tls, fields, &format!("{section}.tls"), &mut found);
        }
        if let Some(limits) = sub_table(service, "limits") {
            let fields = fields_of::<RawLimits>();
            check(limits, fields, &format!("[{section}.limits]"), &mut found);
        }
    }
    remote_keys(root, &mut found);
    found.into_iter().min_by_key(|unknown| unknown.span.start)
}

/// `[ssh]`, `[hosts."NAME"]` and `[hosts."NAME".proxy]`.
fn remote_keys(root: &DeTable<'_>, found: &mut Vec<UnknownKey>) {
    if let Some(ssh) = sub_table(root, "ssh") {
        check(ssh, fields_of::<RawSsh>(), "[ssh]", found);
    }
    for (name, host) in sub_table(root, "hosts").into_iter().flatten() {
        let Some(host) = host.get_ref().as_table() else {
            continue;
        };
        let section = format!("hosts.{}", section_key(name.get_ref()));
        check(host, fields_of::<RawHost>(), &format!("[{section}]"), found);
        if let Some(proxy) = sub_table(host, "proxy") {
            let fields = fields_of::<RawProxy>();
            check(proxy, fields, &format!("[{section}.proxy]"), found);
        }
    }
}

fn sub_table<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a DeTable<'i>> {
    table.get(key).and_then(|value| value.get_ref().as_table())
}

fn check(table: &DeTable<'_>, known: &[&str], section: &str, found: &mut Vec<UnknownKey>) {
    for key in table.keys() {
        let name: &str = key.get_ref();
        if known.contains(&name) {
            continue;
        }
        let mut message = format!("unknown key {name:?} in {section}");
        if let Some(close) = closest(name, known) {
            message.push_str(&format!("; did you mean {close:?}?"));
        }
        message.push_str(&format!("; expected one of: {}", known.join(", ")));
        found.push(UnknownKey {
            span: key.span(),
            message,
        });
    }
}

/// A TOML key as it would be written in a table header.
fn section_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The known key within edit distance 2 of `name` (a typo), if there is one.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The field names the serde derive of `T` accepts.
///
/// Derived `Deserialize` impls hand their field list to `deserialize_struct`; this
/// deserializer records it and stops there.
pub(super) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields
}

struct FieldProbe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("field probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests;
