//! The key list: search, filters, sort and pages, read through `service::keys::list`
//! as the REST API reads it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::{KeyStatus, KeyType};
use crate::error::AppError;
use crate::service::keys::{self, KeyQuery, KeySort, UsageFilter, UsageParams};
use crate::state::AppState;
use crate::web::granted::Signed;
use crate::web::{Frame, html};

use super::form::{AddForm, blank_add_form};
use super::view::{KeyView, notice_secs};
use super::{Place, writable};

/// Keys on one page of the console's list.
const PAGE_SIZE: i64 = 25;

/// Query of the list: search, filters, sort, page.
#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    key_type: String,
    /// The filters by use (see `service::keys::UsageFilter`).
    #[serde(default)]
    expires_within: String,
    #[serde(default)]
    never_used: String,
    #[serde(default)]
    unused_for: String,
    #[serde(default)]
    refused_for: String,
    #[serde(default)]
    refused_within: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    page: Option<i64>,
    /// What was just done to the key `name` (`deleted`, `activated`, `deactivated`,
    /// `unlocked`), for the notice.
    #[serde(default)]
    done: String,
    #[serde(default)]
    name: String,
    /// Bringing keys into policy: how many changed, and the first refusal.
    count: Option<i64>,
    refused: Option<i64>,
}

impl ListQuery {
    /// The page asked for; pages past the end are empty, and the cap keeps every product below
    /// in range.
    fn page(&self) -> i64 {
        self.page.unwrap_or(1).clamp(1, 1_000_000)
    }

    /// The filters by use, leniently read (a part it cannot read is left out).
    fn usage(&self) -> UsageFilter {
        UsageFilter::lenient(UsageParams {
            expires_within: &self.expires_within,
            never_used: &self.never_used,
            unused_for: &self.unused_for,
            refused_for: &self.refused_for,
            refused_within: &self.refused_within,
        })
    }

    /// The filters by use in words ("expiring within 14 days and never used"); empty for none.
    fn usage_words(&self) -> String {
        self.usage().phrases().join(" and ")
    }

    /// The filters by use as query parameters, for the search form to keep.
    fn usage_pairs(&self) -> Vec<(&'static str, String)> {
        self.usage().pairs()
    }

    /// The list without its filters by use (search, status and type kept).
    fn without_usage(&self, base: &str) -> String {
        let q = ListQuery {
            q: self.q.clone(),
            status: self.status.clone(),
            key_type: self.key_type.clone(),
            sort: self.sort.clone(),
            dir: self.dir.clone(),
            ..ListQuery::default()
        };
        let rest = q.link(&q.sort, &q.dir, 1);
        if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{rest}")
        }
    }

    /// The service's query. A console link with a value it does not know shows the list as
    /// if that part were not given (the API refuses it instead).
    fn key_query(&self) -> KeyQuery {
        KeyQuery {
            search: self.q.chars().take(100).collect(),
            status: KeyStatus::parse(&self.status),
            key_type: KeyType::parse(&self.key_type),
            out_of_policy: self.status == "out_of_policy",
            usage: self.usage(),
            sort: KeySort::parse(&self.sort).unwrap_or_default(),
            descending: match self.dir.as_str() {
                "asc" => Some(false),
                "desc" => Some(true),
                _ => None,
            },
            page: self.page(),
            per_page: PAGE_SIZE,
        }
    }

    /// The export of what the list shows, in `format`: its search and filters (the export
    /// runs in key ID order, so sort and page are left out).
    fn export_link(&self, base: &str, format: &str) -> String {
        let mut pairs = vec![("format", format)];
        for (k, v) in [
            ("q", self.q.as_str()),
            ("status", &self.status),
            ("type", &self.key_type),
        ] {
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        let usage = self.usage_pairs();
        pairs.extend(usage.iter().map(|(k, v)| (*k, v.as_str())));
        format!(
            "{base}/export?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }

    /// The query string for another page or sort, keeping the filters.
    fn link(&self, sort: &str, dir: &str, page: i64) -> String {
        let page = page.to_string();
        let usage = self.usage_pairs();
        let mut pairs = vec![];
        for (k, v) in [
            ("q", self.q.as_str()),
            ("status", &self.status),
            ("type", &self.key_type),
        ] {
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        pairs.extend(usage.iter().map(|(k, v)| (*k, v.as_str())));
        for (k, v) in [("sort", sort), ("dir", dir)] {
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        if page != "1" {
            pairs.push(("page", &page));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// A sortable column header.
pub struct SortLink {
    pub href: String,
    /// "ascending", "descending" or "none", for `aria-sort`.
    pub aria: &'static str,
}

impl SortLink {
    /// The header of `column`: a click sorts by it, or turns its direction when it is the
    /// current sort.
    fn of(column: KeySort, q: &ListQuery, query: &KeyQuery, base: &str) -> Self {
        let active = column == query.sort;
        let descending = query.sorts_descending();
        let dir = match (active, descending) {
            (false, _) => "",
            (true, false) => "desc",
            (true, true) => "asc",
        };
        SortLink {
            href: format!("{base}?{}", q.link(column.as_str(), dir, 1)),
            aria: match (active, descending) {
                (false, _) => "none",
                (true, true) => "descending",
                (true, false) => "ascending",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct ListPage {
    frame: Frame,
    tab: &'static str,
    tenant: bool,
    base: &'static str,
    q: ListQuery,
    keys: Vec<KeyView>,
    total: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    sort_name: SortLink,
    sort_expires: SortLink,
    sort_last_used: SortLink,
    /// The notice after an action, in words; empty for none.
    notice: String,
    personal_count: i64,
    limit: i64,
    add: AddForm,
    /// Whether to offer Add key and the row actions that change keys.
    writable: bool,
    /// Past the last page: a link to the last one that has keys.
    last_page: Option<String>,
    /// The list shows the keys out of policy to someone who may bring them into it.
    conforming: bool,
    /// The Download menu's links (the Access keys tab only).
    export_csv: String,
    export_json: String,
}

/// The notice after an action on the key `name`, back on the list.
fn done_notice(done: &str, name: &str) -> String {
    match done {
        "deleted" => {
            format!("Deleted the key “{name}”. Programs that used it can no longer authenticate.")
        }
        "deactivated" => format!(
            "Deactivated the key “{name}”: it no longer authenticates until it is activated \
             again."
        ),
        "activated" => format!("Activated the key “{name}”: it authenticates again."),
        "unlocked" => format!("Unlocked the key “{name}”."),
        _ => String::new(),
    }
}

/// GET the list of keys.
pub async fn list<A: Signed>(
    place: web::Data<Place>,
    who: A,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let user = who.user();
    let place = **place;
    let q = query.into_inner();
    let query = q.key_query();
    let query_out_of_policy = query.out_of_policy;
    let page = query.page;
    let (sort_name, sort_expires, sort_last_used) = (
        SortLink::of(KeySort::Name, &q, &query, place.base),
        SortLink::of(KeySort::Expires, &q, &query, place.base),
        SortLink::of(KeySort::LastUsed, &q, &query, place.base),
    );
    let mut conn = state.pool.acquire().await?;
    let ring = state.keyring();
    let found = keys::list(&mut conn, &user.actor(), place.scope, query, &ring).await?;
    drop(conn);
    let (now, notice) = (state.clock.unix(), notice_secs(&state));
    let policy = crate::service::key_policy::current(&state.pool).await?;
    let keys: Vec<KeyView> = found
        .items
        .iter()
        .map(|k| KeyView {
            out_of_policy: policy
                .breach(k.key_type, k.expires_at, now)
                .unwrap_or_default(),
            ..KeyView::of(k, now, notice, &user.id)
        })
        .collect();
    let first = if keys.is_empty() {
        0
    } else {
        (page - 1) * PAGE_SIZE + 1
    };
    let last = (page - 1) * PAGE_SIZE + keys.len() as i64;
    let total = found.total;
    let link = |page| format!("{}?{}", place.base, q.link(&q.sort, &q.dir, page));
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    let past_the_end = keys.is_empty() && total > 0 && page > pages;
    let (prev, next) = (
        (page > 1 && !past_the_end).then(|| link(page - 1)),
        (last < total && !past_the_end).then(|| link(page + 1)),
    );
    let last_page = past_the_end.then(|| link(pages));
    Ok(html(
        StatusCode::OK,
        ListPage {
            frame: Frame::new(user, place.section()),
            tab: "keys",
            tenant: place.tenant(),
            base: place.base,
            notice: match (q.done.as_str(), q.count) {
                ("conformed", Some(1)) => "Brought 1 key into policy.".to_string(),
                ("conformed", Some(n)) => format!("Brought {n} keys into policy."),
                _ => done_notice(&q.done, &q.name),
            },
            export_csv: q.export_link(place.base, "csv"),
            export_json: q.export_link(place.base, "json"),
            q,
            keys,
            total,
            first,
            last,
            prev,
            next,
            sort_name,
            sort_expires,
            sort_last_used,
            personal_count: if place.tenant() { 0 } else { total },
            limit: keys::PERSONAL_KEY_LIMIT,
            add: blank_add_form(&state, place).await?,
            writable: writable(user, place),
            last_page,
            conforming: place.tenant() && writable(user, place) && query_out_of_policy,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sort: &str, dir: &str) -> ListQuery {
        ListQuery {
            sort: sort.into(),
            dir: dir.into(),
            ..ListQuery::default()
        }
    }

    #[test]
    fn unknown_values_read_as_not_given() {
        let q = ListQuery {
            status: "gone".into(),
            key_type: "other".into(),
            ..query("colour", "sideways")
        };
        let k = q.key_query();
        assert_eq!(
            (k.status, k.key_type, k.sort),
            (None, None, KeySort::Created)
        );
        assert!(k.sorts_descending());
    }

    #[test]
    fn the_current_sort_turns_and_the_others_start_fresh() {
        let q = query("name", "");
        let k = q.key_query();
        let name = SortLink::of(KeySort::Name, &q, &k, "/b");
        assert_eq!(
            (name.href.as_str(), name.aria),
            ("/b?sort=name&dir=desc", "ascending")
        );
        let expires = SortLink::of(KeySort::Expires, &q, &k, "/b");
        assert_eq!(
            (expires.href.as_str(), expires.aria),
            ("/b?sort=expires", "none")
        );
    }
}
