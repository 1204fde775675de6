//! SQL per table group, with `$N` placeholders that both backends accept. A private module of
//! `service` (declared there, its files here): nothing else can call it, and the compiler says so.
//! Authentication keeps its own two tables (`auth::store`).

pub mod audit;
pub mod expiry_notices;
pub mod factors;
pub mod form_submissions;
pub mod groups;
pub mod inactivity;
pub mod invitations;
pub mod key_addresses;
pub mod key_rate_buckets;
pub mod key_usage;
pub mod keys;
mod named;
pub mod notifications;
pub mod outbox;
pub mod passkeys;
pub mod password_resets;
pub mod queue;
pub mod rate_limits;
pub mod replaced_secrets;
pub mod roles;
pub mod secret_keys;
pub mod setup_tokens;
pub mod users;
pub mod webhooks;

/// The rows of a multi-row `VALUES` list: `rows` parenthesised groups of `columns` placeholders.
/// Numbered (`$1, $2, …`) for PostgreSQL; anonymous (`?`) for SQLite, which finds each numbered
/// parameter by a walk over all of them (binding a 64-row insert cost more than writing it).
pub fn values_rows(numbered: bool, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&(r * columns + c).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// Whether `conn` takes numbered placeholders in `values_rows` (every backend but SQLite).
pub fn numbered(conn: &sqlx::AnyConnection) -> bool {
    conn.backend_name() != "SQLite"
}

/// A fresh random identifier with a readable prefix, e.g. `usr_k3v9…`.
pub fn new_id(prefix: &str) -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_rows_numbers_placeholders_across_rows() {
        assert_eq!(super::values_rows(true, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values_rows(false, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(super::values_rows(true, 1, 1), "($1)");
    }
}
