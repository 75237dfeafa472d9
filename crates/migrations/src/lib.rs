//! The application's migrations, one source of truth (`migrations/*.sql`)
//! for both ways of applying them: the `synatra` host runs them with sqlx at
//! start, and the API component applies them itself over `spin:postgres`
//! where no host of ours runs (`spin up`, SpinKube). Both write the same
//! `_sqlx_migrations` rows (version, description, SHA-384 checksum), so
//! either may find the other's work and carry on.

use sha2::{Digest, Sha384};

/// Embeds each named file of `migrations/`, in order.
macro_rules! migrations {
    ($($file:literal,)*) => {
        &[$(($file, include_str!(concat!("../../../migrations/", $file))),)*]
    };
}

/// `(file name, SQL)` of each migration, in order. A new file must be added
/// here too; a test fails until it is.
pub const MIGRATIONS: &[(&str, &str)] = migrations![
    "0001_host.sql",
    "0002_accounts.sql",
    "0003_agents.sql",
    "0004_threads_runs.sql",
    "0005_llm_credentials.sql",
    "0006_run_timers.sql",
    "0007_subagents.sql",
    "0008_human_requests.sql",
    "0009_tools.sql",
    "0010_approvals.sql",
    "0011_tool_components.sql",
    "0012_run_starters.sql",
    "0013_run_endings.sql",
    "0014_run_crashes.sql",
    "0015_claim_next_run.sql",
    "0016_step_recording.sql",
    "0017_hold_lease.sql",
    "0018_one_statement_writes.sql",
    "0019_sign_in_limits.sql",
    "0020_agent_archiving.sql",
    "0021_fair_claims.sql",
    "0022_allowed_model_urls.sql",
    "0023_org_slots.sql",
    "0024_fewer_round_trips.sql",
    "0025_cheaper_claims.sql",
    "0026_messages_in_the_event_stream.sql",
    "0027_claims_by_id.sql",
    "0028_claims_load_the_run.sql",
    "0029_last_step_ends_in_one_update.sql",
    "0030_no_notify_without_a_listener.sql",
    "0031_create_run_plans_once.sql",
    "0032_credentials_travel_with_the_run.sql",
];

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The number the file name starts with.
    pub version: i64,
    /// The rest of the file name, underscores as spaces (sqlx's rule).
    pub description: String,
    /// The file's text.
    pub sql: &'static str,
}

impl Migration {
    /// SHA-384 of the file, as sqlx records it.
    pub fn checksum(&self) -> Vec<u8> {
        Sha384::digest(self.sql.as_bytes()).to_vec()
    }

    /// The file's statements, one string each, ready for a prepared-statement
    /// interface that runs one statement per call.
    pub fn statements(&self) -> Vec<&'static str> {
        split_statements(self.sql)
    }
}

/// Every migration, in version order.
pub fn all() -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|(name, sql)| {
            let stem = name.trim_end_matches(".sql");
            let (version, description) = stem.split_once('_').unwrap_or((stem, ""));
            Migration {
                version: version
                    .parse()
                    .expect("migration file names start with a number"),
                description: description.replace('_', " "),
                sql,
            }
        })
        .collect()
}

/// The newest version, which a migrated database has recorded.
pub fn latest_version() -> i64 {
    MIGRATIONS
        .last()
        .and_then(|(name, _)| name.split('_').next()?.parse().ok())
        .unwrap_or(0)
}

/// The advisory lock key sqlx takes while migrating database `name`, so the
/// host and the application never migrate one database at the same time.
pub fn lock_key(database_name: &str) -> i64 {
    0x3d32_ad9e_i64 * i64::from(crc32(database_name.as_bytes()))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Splits SQL text into statements at top-level semicolons, keeping quoted
/// strings, identifiers, comments and dollar-quoted bodies (`$$ … $$`,
/// `$tag$ … $tag$`) whole. Empty statements and comment-only ones are dropped.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_quoted(bytes, i, bytes[i]),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'$' => i = skip_dollar_quoted(sql, i),
            b';' => {
                push_statement(&mut statements, &sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push_statement(&mut statements, &sql[start..]);
    statements
}

fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            // A doubled quote is an escaped one.
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn skip_dollar_quoted(sql: &str, open: usize) -> usize {
    let rest = &sql[open + 1..];
    let tag_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if !rest[tag_len..].starts_with('$')
        || rest[..tag_len].starts_with(|c: char| c.is_ascii_digit())
    {
        // `$1` and the like: a parameter, not a quote.
        return open + 1;
    }
    let tag = &sql[open..open + tag_len + 2];
    let body = open + tag.len();
    sql[body..]
        .find(tag)
        .map_or(sql.len(), |n| body + n + tag.len())
}

fn push_statement<'a>(statements: &mut Vec<&'a str>, text: &'a str) {
    let meaningful = text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with("--")
    });
    if meaningful {
        statements.push(text.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "-- a comment; not a split\nCREATE TABLE t (a text DEFAULT 'x;y');\n\
                   CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql;\n\
                   /* block; comment */ SELECT $1::text, \"we;ird\" FROM t;\n\
                   DO $body$ BEGIN PERFORM 1; END $body$;\n-- trailing comment\n";
        let parts = split_statements(sql);
        assert_eq!(parts.len(), 4, "{parts:#?}");
        assert!(parts[0].ends_with("DEFAULT 'x;y')"));
        assert!(parts[1].contains("RETURN NEW; END; $$ LANGUAGE plpgsql"));
        assert!(parts[2].contains("\"we;ird\""));
        assert!(parts[3].starts_with("DO $body$"));
    }

    #[test]
    fn every_migration_splits_into_statements_without_leftover_text() {
        let migrations = all();
        assert!(migrations.len() >= 14);
        for (i, m) in migrations.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "versions are consecutive");
            let statements = m.statements();
            assert!(!statements.is_empty(), "{}", m.version);
            let joined: usize = statements.iter().map(|s| s.len()).sum();
            assert!(joined > m.sql.len() / 2, "{} lost text", m.version);
        }
        assert_eq!(migrations[0].description, "host");
        assert_eq!(latest_version(), migrations.last().unwrap().version);
    }

    #[test]
    fn every_file_of_the_migrations_directory_is_listed() {
        // Read at run time: a test binary cached from another checkout must
        // read this checkout's migrations.
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test");
        let dir = std::path::Path::new(&root).join("../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(f, _)| *f).collect();
        assert_eq!(files, listed, "list each new migration in MIGRATIONS");
    }

    #[test]
    fn lock_key_matches_sqlx() {
        // The IEEE CRC-32 check value, as sqlx uses.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(lock_key("a"), 0x3d32_ad9e_i64 * i64::from(crc32(b"a")));
    }
}
