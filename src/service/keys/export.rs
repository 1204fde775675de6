//! The inventory export (SPEC §9, issue 17): every key matching the list's filters as CSV or
//! JSON, streamed in batches so that 100,000 keys never sit in memory at once. The console's
//! Download menu and `GET /api/v1/apikeys/export` both come through here and write the same
//! bytes; the columns and field names are documented in `docs/export.md`.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use sqlx::AnyPool;

use super::compliance::{self, KeyPolicy};
use super::read::details_of;
use super::{KeyDetails, KeyQuery, Keyring, Scope, require};
use crate::domain::{Actor, Permission};
use crate::error::AppError;
use crate::service::audit;
use crate::service::repo::key_addresses;
use crate::service::repo::keys::{self as repo, AccessMap, ListFilter};
use crate::service::repo::{groups, roles};

/// Keys read, with their assignments and addresses, per round of the stream: three statements
/// a batch, and a batch's rows are all that is held at a time.
pub const BATCH: i64 = 500;

/// The formats an export can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    /// Reads `csv` or `json`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "csv" => Some(ExportFormat::Csv),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    /// The name `parse` reads, also the file's extension.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }

    /// The response's media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8; header=present",
            ExportFormat::Json => "application/json",
        }
    }
}

/// The CSV header row, in column order.
pub const CSV_HEADER: [&str; 16] = [
    "ID",
    "Name",
    "Type",
    "Owner",
    "Created by",
    "Created",
    "Last rotated",
    "Last used",
    "Last used address",
    "Expires",
    "Status",
    "Roles",
    "Groups",
    "Allowed networks",
    "Rate limit",
    "Policy compliance",
];

/// One key as the JSON export writes it. The field names are part of the contract
/// (`docs/export.md`): times are RFC 3339 in UTC, `null` when there is none (`expires_at`
/// `null` means never).
#[derive(Debug, Serialize)]
pub struct ExportedKey {
    pub id: String,
    pub name: String,
    /// `access` or `api`.
    #[serde(rename = "type")]
    pub key_type: &'static str,
    /// The owner's ID for a personal key; `null` for a tenant key.
    pub owner_id: Option<String>,
    /// The owner's name for a personal key; `null` for a tenant key.
    pub owner: Option<String>,
    pub created_by: String,
    pub created_at: Option<String>,
    pub last_rotated_at: Option<String>,
    pub last_used_at: Option<String>,
    pub last_used_address: Option<String>,
    pub expires_at: Option<String>,
    /// `active`, `inactive`, `expired` or `locked`.
    pub status: &'static str,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// Group names, sorted.
    pub groups: Vec<String>,
    /// CIDR ranges; empty means anywhere.
    pub allowed_networks: Vec<String>,
    /// The key's rate limit; `null` without one.
    pub rate_limit: Option<crate::domain::RateLimit>,
    /// `in_policy` or `out_of_policy`.
    pub policy_compliance: &'static str,
    /// What the key breaks; empty in policy.
    pub policy_findings: Vec<String>,
}

/// An export that has been allowed and audited, ready to be written out by [`Export::body`].
pub struct Export {
    pub format: ExportFormat,
    /// Keys matching the filters when the export started (the audit entry's count).
    pub count: i64,
    /// `keyward-access-keys-<date>.<format>`, dated in UTC.
    pub filename: String,
    batches: Batches,
}

/// What the stream carries from one batch to the next: everything read once at the start,
/// and where the last batch ended.
struct Batches {
    pool: AnyPool,
    filter: ListFilter,
    format: ExportFormat,
    now: i64,
    tenant_id: String,
    access: AccessMap,
    role_names: HashMap<String, String>,
    group_names: HashMap<String, String>,
    policy: KeyPolicy,
    batch: i64,
    after: Option<String>,
    stage: Stage,
    written: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Head,
    Rows,
    /// The last batch was short: no further read is needed.
    Tail,
    Done,
}

/// Starts an export of the tenant's keys matching `query`'s search and filters (its sort and
/// page aside: an export runs in key ID order). Needs `keys:read`. The audit entry
/// `keys.exported` (who, format, filters, count) is committed before the first byte goes out,
/// so an export that is abandoned half-way is still on record.
pub async fn export(
    pool: &AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    query: KeyQuery,
    format: ExportFormat,
) -> Result<Export, AppError> {
    export_in_batches(pool, ring, actor, query, format, BATCH).await
}

/// [`export`] with another batch size (tests use small ones to cross batch boundaries).
pub async fn export_in_batches(
    pool: &AnyPool,
    ring: &Keyring<'_>,
    actor: &Actor,
    query: KeyQuery,
    format: ExportFormat,
    batch: i64,
) -> Result<Export, AppError> {
    require(actor, Scope::Tenant, Permission::KeysRead)?;
    let now = ring.clock.unix();
    let mut conn = pool.acquire().await?;
    let filter = super::read::filter_for(&mut conn, &query, actor, Scope::Tenant, now).await?;
    let access = repo::load_access_map(&mut conn).await?;
    let role_names = roles::list(&mut conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    let group_names = groups::list(&mut conn)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let policy = compliance::policy(&mut conn).await?;
    let count = repo::count(&mut conn, &filter, now).await?;
    drop(conn);

    let details = audit_details(&query, format, count);
    let mut tx = crate::db::begin_write(pool).await?;
    let entry = audit::success(actor, "keys.exported", "access_key", "", "", &details);
    audit::record(&mut tx, now, entry).await?;
    tx.commit().await?;

    let date = Utc
        .timestamp_opt(now, 0)
        .single()
        .unwrap_or_default()
        .format("%Y-%m-%d");
    Ok(Export {
        format,
        count,
        filename: format!("keyward-access-keys-{date}.{}", format.as_str()),
        batches: Batches {
            pool: pool.clone(),
            filter,
            format,
            now,
            tenant_id: ring.tenant_id.to_string(),
            access,
            role_names,
            group_names,
            policy,
            batch: batch.clamp(1, 1000),
            after: None,
            stage: Stage::Head,
            written: 0,
        },
    })
}

impl Export {
    /// `Content-Disposition` for the download: an attachment with the dated file name.
    pub fn content_disposition(&self) -> String {
        format!("attachment; filename=\"{}\"", self.filename)
    }

    /// The file, piece by piece: the head (CSV header row, or `[`), one piece per batch of
    /// keys, the tail (`]` for JSON). Each batch is read only when the previous piece has been
    /// taken, so a slow client holds back the reading instead of filling memory.
    ///
    /// A database error part-way ends the stream with that error, which the HTTP server turns
    /// into a cut connection (no final chunk), so the client sees a failed download rather
    /// than a shorter file that looks complete (docs/decisions.md, "Inventory export").
    pub fn body(self) -> impl Stream<Item = Result<Bytes, AppError>> + 'static {
        stream::try_unfold(self.batches, |mut b| async move {
            match b.next_piece().await {
                Ok(Some(piece)) => Ok(Some((piece, b))),
                Ok(None) => Ok(None),
                Err(e) => {
                    tracing::error!(error = ?e, written = b.written, "key export stopped part-way");
                    Err(e)
                }
            }
        })
    }
}

impl Batches {
    async fn next_piece(&mut self) -> Result<Option<Bytes>, AppError> {
        match self.stage {
            Stage::Head => {
                self.stage = Stage::Rows;
                Ok(Some(match self.format {
                    ExportFormat::Csv => csv_piece(std::iter::once(CSV_HEADER.map(Cow::from)))?,
                    ExportFormat::Json => Bytes::from_static(b"["),
                }))
            }
            Stage::Rows => {
                let keys = self.read_batch().await?;
                if keys.is_empty() {
                    return Ok(self.tail());
                }
                Ok(Some(self.encode(&keys)?))
            }
            Stage::Tail => Ok(self.tail()),
            Stage::Done => Ok(None),
        }
    }

    /// The end of the file: `]` for JSON, nothing for CSV. Never an empty piece: in a chunked
    /// response an empty chunk is the end marker, and would end the file early.
    fn tail(&mut self) -> Option<Bytes> {
        self.stage = Stage::Done;
        match self.format {
            ExportFormat::Csv => None,
            ExportFormat::Json => Some(Bytes::from_static(b"\n]\n")),
        }
    }

    /// The next batch of keys after the last one written, in three statements: the keys, their
    /// assignments, their latest addresses.
    async fn read_batch(&mut self) -> Result<Vec<ExportedKey>, AppError> {
        let mut conn = self.pool.acquire().await?;
        let rows = repo::after(
            &mut conn,
            &self.filter,
            self.now,
            self.after.as_deref(),
            self.batch,
        )
        .await?;
        if (rows.len() as i64) < self.batch {
            self.stage = Stage::Tail;
        }
        let Some(last) = rows.last() else {
            return Ok(Vec::new());
        };
        self.after = Some(last.id.clone());
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let found = repo::with_assignments(&mut conn, rows).await?;
        let mut latest: HashMap<String, (String, i64)> = HashMap::new();
        for (key_id, address, seen) in key_addresses::latest_of(&mut conn, &ids).await? {
            let newer = latest.get(&key_id).is_none_or(|(_, s)| seen > *s);
            if newer {
                latest.insert(key_id, (address, seen));
            }
        }
        drop(conn);
        Ok(found
            .into_iter()
            .map(|f| {
                let details = details_of(self.access.resolve(f), self.now, &self.tenant_id);
                let address = latest.remove(&details.id);
                self.exported(details, address)
            })
            .collect())
    }

    /// A key as the export writes it. The last use is the later of the key's own record
    /// (written at most once a minute) and its latest address (written every few seconds).
    fn exported(&self, key: KeyDetails, address: Option<(String, i64)>) -> ExportedKey {
        let standing = compliance::compliance(&key, &self.policy, self.now);
        let names = |ids: &[String], names: &HashMap<String, String>| {
            let mut out: Vec<String> = ids
                .iter()
                .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
                .collect();
            out.sort();
            out
        };
        let (used_at, used_from) = match (key.last_used.as_ref(), address) {
            (Some(u), Some((addr, seen))) if seen > u.at => (Some(seen), Some(addr)),
            (Some(u), _) => (Some(u.at), Some(u.client_ip.clone())),
            (None, Some((addr, seen))) => (Some(seen), Some(addr)),
            (None, None) => (None, None),
        };
        ExportedKey {
            roles: names(&key.role_ids, &self.role_names),
            groups: names(&key.group_ids, &self.group_names),
            key_type: key.key_type.as_str(),
            owner_id: key.owner.as_ref().map(|o| o.id.clone()),
            owner: key.owner.map(|o| o.name),
            created_at: rfc3339(Some(key.created_at)),
            last_rotated_at: rfc3339(key.secret_regenerated_at),
            last_used_at: rfc3339(used_at),
            last_used_address: used_from.filter(|a| !a.is_empty()),
            expires_at: rfc3339(key.expires_at),
            status: key.status.as_str(),
            policy_compliance: standing.as_str(),
            policy_findings: standing.reasons().to_vec(),
            allowed_networks: key.allowed_networks,
            rate_limit: key.rate_limit,
            created_by: key.created_by,
            id: key.id,
            name: key.name,
        }
    }

    fn encode(&mut self, keys: &[ExportedKey]) -> Result<Bytes, AppError> {
        let piece = match self.format {
            ExportFormat::Csv => csv_piece(keys.iter().map(csv_row))?,
            ExportFormat::Json => {
                let mut out = Vec::with_capacity(keys.len() * 512);
                for key in keys {
                    out.extend_from_slice(if self.written == 0 { b"\n" } else { b",\n" });
                    serde_json::to_writer(&mut out, key).map_err(anyhow::Error::from)?;
                    self.written += 1;
                }
                Bytes::from(out)
            }
        };
        if self.format == ExportFormat::Csv {
            self.written += keys.len();
        }
        Ok(piece)
    }
}

/// RFC 3339 in UTC to the second.
fn rfc3339(secs: Option<i64>) -> Option<String> {
    secs.and_then(crate::clock::rfc3339)
}

/// Records as CSV (RFC 4180: CRLF line ends, fields quoted when they need it).
fn csv_piece<'a, R>(records: impl Iterator<Item = R>) -> Result<Bytes, AppError>
where
    R: IntoIterator<Item = Cow<'a, str>>,
{
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for record in records {
        writer
            .write_record(record.into_iter().map(|c| safe_cell(c).into_owned()))
            .map_err(anyhow::Error::from)?;
    }
    let out = writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Bytes::from(out))
}

/// A cell a spreadsheet will not run as a formula: one starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'` (OWASP, "CSV Injection").
pub fn safe_cell(cell: Cow<'_, str>) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        cell
    }
}

/// A key's CSV row, in [`CSV_HEADER`] order, in the words the console uses.
fn csv_row(key: &ExportedKey) -> [Cow<'_, str>; 16] {
    let text = |v: &Option<String>| Cow::from(v.clone().unwrap_or_default());
    let compliance = if key.policy_findings.is_empty() {
        Cow::from(match key.policy_compliance {
            "in_policy" => "In policy",
            _ => "Out of policy",
        })
    } else {
        Cow::from(format!("Out of policy: {}", key.policy_findings.join("; ")))
    };
    [
        Cow::from(key.id.as_str()),
        Cow::from(key.name.as_str()),
        Cow::from(crate::domain::KeyType::parse(key.key_type).map_or(key.key_type, |t| t.label())),
        Cow::from(key.owner.as_deref().unwrap_or("Tenant")),
        Cow::from(key.created_by.as_str()),
        text(&key.created_at),
        text(&key.last_rotated_at),
        text(&key.last_used_at),
        text(&key.last_used_address),
        Cow::from(key.expires_at.clone().unwrap_or_else(|| "Never".into())),
        Cow::from(crate::domain::KeyStatus::parse(key.status).map_or(key.status, |s| s.label())),
        Cow::from(key.roles.join("; ")),
        Cow::from(key.groups.join("; ")),
        Cow::from(key.allowed_networks.join(", ")),
        // In the console's words (`5 requests per second, burst 10`); empty without a limit.
        Cow::from(key.rate_limit.map_or(String::new(), |l| {
            crate::domain::RateLimit::describe(Some(l))
        })),
        compliance,
    ]
}

/// What the audit entry says about an export: format, count, and the filters in words. A
/// search that looks like it holds a secret (`kws_…`, pasted by mistake) is not written down.
fn audit_details(query: &KeyQuery, format: ExportFormat, count: i64) -> String {
    let mut filters = Vec::new();
    let search = query.search.trim();
    if search.to_ascii_lowercase().contains("kws_") {
        filters.push("search withheld (it looks like it holds a secret)".to_string());
    } else if !search.is_empty() {
        filters.push(format!("search “{search}”"));
    }
    if let Some(status) = query.status {
        filters.push(format!("status {}", status.as_str()));
    }
    if let Some(key_type) = query.key_type {
        filters.push(format!("type {}", key_type.as_str()));
    }
    filters.extend(query.usage.phrases());
    let filters = if filters.is_empty() {
        "no filters".to_string()
    } else {
        format!("filters: {}", filters.join(", "))
    };
    let keys = if count == 1 { "key" } else { "keys" };
    format!(
        "{} of {count} {keys}; {filters}",
        format.as_str().to_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_get_a_leading_quote() {
        for raw in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(safe_cell(raw.into()), format!("'{raw}"));
        }
        for raw in ["plain", "1-2", "", "a=b"] {
            assert_eq!(safe_cell(raw.into()), raw);
        }
    }

    #[test]
    fn csv_pieces_quote_what_needs_it_and_end_lines_with_crlf() {
        let piece = csv_piece(std::iter::once([
            Cow::from("a,b"),
            Cow::from("say \"hi\""),
            Cow::from("two\nlines"),
            Cow::from("=cmd"),
        ]))
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&piece).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",'=cmd\r\n"
        );
    }

    #[test]
    fn a_search_holding_a_secret_is_not_audited() {
        let query = KeyQuery {
            search: "AKX::kws_abc".into(),
            status: None,
            key_type: None,
            out_of_policy: false,
            usage: Default::default(),
            sort: Default::default(),
            descending: None,
            page: 1,
            per_page: 25,
        };
        let details = audit_details(&query, ExportFormat::Csv, 3);
        assert!(!details.contains("kws_"), "{details}");
        assert!(details.starts_with("CSV of 3 keys"), "{details}");
    }
}
