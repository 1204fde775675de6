//! A key's permissions as the API writes them: a JSON array of names, copied from a table of
//! every set of known permissions rather than escaped name by name on every answer.
//!
//! The arrays are compact serde_json text written as they are (`RawValue`): fine for the API's
//! compact JSON answers, wrong inside pretty-printed output (they would stay on one line) and
//! meaningless to any other serializer (it would see serde_json's private `RawValue` struct).

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::Permission;

/// A key's permissions as a JSON array of names.
pub struct PermissionList<'a>(pub &'a [String]);

impl Serialize for PermissionList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match written(self.0) {
            Some(array) => array.serialize(serializer),
            None => self.0.serialize(serializer),
        }
    }
}

/// The JSON array of a key's permissions, written once for every set of known permissions in
/// their sorted order (at most 2⁹ arrays), so that an answer copies it instead of escaping each
/// name again. `None` for a list that is not such a set (an unknown name, a repeat, another
/// order): it is written as it is.
pub(super) fn written(permissions: &[String]) -> Option<&'static RawValue> {
    static ARRAYS: LazyLock<Vec<Box<RawValue>>> = LazyLock::new(|| {
        (0..1usize << Permission::ALL.len())
            .map(|set| {
                let mut names: Vec<&str> = Permission::ALL
                    .iter()
                    .filter(|p| set & bit(**p) != 0)
                    .map(|p| p.as_str())
                    .collect();
                names.sort_unstable();
                serde_json::value::to_raw_value(&names).expect("names are JSON strings")
            })
            .collect()
    });
    fn bit(permission: Permission) -> usize {
        1 << permission as usize
    }
    let mut set = 0;
    let mut previous = "";
    for name in permissions {
        if name.as_str() <= previous {
            return None;
        }
        set |= bit(Permission::parse(name)?);
        previous = name;
    }
    ARRAYS.get(set).map(Box::as_ref)
}

/// For `#[serde(serialize_with)]` on a field holding a key's permissions.
pub fn serialize<S: serde::Serializer>(
    permissions: &[String],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    PermissionList(permissions).serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(permissions: &[String]) -> String {
        serde_json::to_string(&PermissionList(permissions)).unwrap()
    }

    #[test]
    fn every_set_of_permissions_is_written_as_its_names() {
        for set in 0..1usize << Permission::ALL.len() {
            let mut names: Vec<String> = Permission::ALL
                .iter()
                .filter(|p| set & (1 << **p as usize) != 0)
                .map(|p| p.to_string())
                .collect();
            names.sort();
            assert!(written(&names).is_some(), "{names:?}");
            assert_eq!(json(&names), serde_json::to_string(&names).unwrap());
        }
    }

    #[test]
    fn other_lists_are_written_as_they_are() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        for names in [
            list(&["keys:verify", "keys:read"]),
            list(&["keys:read", "keys:read"]),
            list(&["keys:read", "orders:\"read\"\u{0}"]),
        ] {
            assert!(written(&names).is_none(), "{names:?}");
            assert_eq!(json(&names), serde_json::to_string(&names).unwrap());
        }
    }
}
