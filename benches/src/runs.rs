//! Durable-run figures, measured in one run against the real host, a real
//! PostgreSQL and a fake provider:
//! - recording one step (the SQL function `record_step` of the migrations:
//!   lease fence, step row, message, one statement) vs a bare INSERT+COMMIT;
//! - durable steps/s end to end with 1, 8 and 64 concurrent runs, against
//!   the database's own capacity on the same cores (bare INSERT+COMMIT
//!   transactions/s over 64 connections);
//! - host RSS with 10,000 runs waiting vs idle;
//! - reply → run resumed latency (a message to a finished thread until the
//!   provider sees the new run's request);
//! - approval → run resumed latency (approving a held tool call until the
//!   provider sees the request with its result; the JavaScript call between).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use synatra_tests::fake_llm::{tool_results, Answer, FakeLlm};
use synatra_tests::psql;
use synatra_tests::runs::{config_for_fakes, publish, start_on, start_thread, wait_for, App};

use crate::{percentile, step};

/// Measured figures.
pub struct RunFigures {
    pub rounds: Rounds,
    /// Bare INSERT+COMMIT transactions/s over 64 connections on the same
    /// database, measured after everything else (the host stopped).
    pub bare_commits_per_s: f64,
    pub record_us: f64,
    pub bare_insert_us: f64,
    pub single_insert_us: f64,
    pub rss_idle_kib: u64,
    pub rss_waiting_kib: u64,
    pub resume_p50_ms: f64,
    pub resume_p99_ms: f64,
    pub approval_p50_ms: f64,
    pub approval_p99_ms: f64,
}

/// Durable steps/s end to end, and where the time goes.
pub struct Rounds {
    pub steps_per_s: Vec<(usize, f64)>,
    /// Where a step's time goes at concurrency 1, per component.
    pub breakdown: Vec<ComponentShare>,
    /// A run's timeline at each concurrency: mean ms from its creation to
    /// its first recorded step, between steps, and from the last to its end.
    pub timeline_ms: Vec<(usize, Vec<(String, f64)>)>,
    /// Per step at each concurrency: CPU ms of `[host, database, bench]`,
    /// then voluntary context switches of `[host, database]`.
    pub usage_per_step: Vec<(usize, [f64; 5])>,
    /// Steps/s of 64 concurrent runs kept up for [`SUSTAINED`]: in its first
    /// fifth and in its last.
    pub sustained: (f64, f64),
    /// Per step over the sustained round: transactions committed, buffers
    /// accessed and tuples read by the database (its own counters, which do
    /// not vary with the machine's speed).
    pub database_work: [f64; 3],
    /// Runs the dispatcher claimed over all rounds: by notified id, by scan;
    /// and its scans that found no run.
    pub claims: (f64, f64, f64),
}

/// One component's share of a durable step at concurrency 1, from the
/// host's histograms (an instance's time includes the calls it waits on).
pub struct ComponentShare {
    pub component: String,
    pub instances_per_step: f64,
    pub busy_ms_per_step: f64,
    pub instantiate_ms_per_step: f64,
    pub statements_per_step: f64,
    pub statement_ms_per_step: f64,
}

/// `(sum, count)` per component of histogram `name` in a metrics text.
fn histogram(text: &str, name: &str) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        for (suffix, count) in [("_sum{", false), ("_count{", true)] {
            let Some(rest) = line.strip_prefix(&format!("{name}{suffix}")) else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let component = labels
                .trim_start_matches("component=\"")
                .trim_end_matches('"')
                .to_string();
            let value: f64 = value.trim().parse().unwrap_or(0.0);
            let entry = out.entry(component).or_default();
            if count {
                entry.1 = value;
            } else {
                entry.0 = value;
            }
        }
    }
    out
}

/// The host's busy and instantiation histograms.
fn component_times(admin: &str) -> Result<[BTreeMap<String, (f64, f64)>; 3]> {
    let text = metrics(admin)?;
    Ok([
        histogram(&text, "synatra_component_busy_seconds"),
        histogram(&text, "synatra_component_instantiate_seconds"),
        histogram(&text, "synatra_postgres_statement_seconds"),
    ])
}

/// Each component's share of `steps` steps between two snapshots.
fn shares(
    before: &[BTreeMap<String, (f64, f64)>; 3],
    after: &[BTreeMap<String, (f64, f64)>; 3],
    steps: f64,
) -> Vec<ComponentShare> {
    let delta = |i: usize, c: &str| {
        let (s1, n1) = after[i].get(c).copied().unwrap_or_default();
        let (s0, n0) = before[i].get(c).copied().unwrap_or_default();
        (s1 - s0, n1 - n0)
    };
    after[0]
        .keys()
        .map(|c| {
            let (busy, n) = delta(0, c);
            let (inst, _) = delta(1, c);
            let (sql, statements) = delta(2, c);
            ComponentShare {
                statements_per_step: statements / steps,
                statement_ms_per_step: sql * 1e3 / steps,
                component: c.clone(),
                instances_per_step: n / steps,
                busy_ms_per_step: busy * 1e3 / steps,
                instantiate_ms_per_step: inst * 1e3 / steps,
            }
        })
        .filter(|s| s.instances_per_step > 0.0)
        .collect()
}

/// The host's metrics text (its admin port's `/metrics`).
fn metrics(admin: &str) -> Result<String> {
    Ok(ureq::get(&format!("{admin}/metrics"))
        .call()?
        .into_string()?)
}

/// The dispatcher's claims so far: `(by id, by scan, scans that found none)`.
fn run_claims(admin: &str) -> Result<(f64, f64, f64)> {
    let text = metrics(admin)?;
    let count = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    Ok((
        count("synatra_run_claims_total{by=\"id\"}"),
        count("synatra_run_claims_total{by=\"scan\"}"),
        count("synatra_empty_run_scans_total"),
    ))
}

/// Resources used so far: CPU ms of `[the host, the database, this bench]`
/// and voluntary context switches (waits for I/O or a peer: a proxy for
/// round trips) of `[the host, the database]`. The database's CPU includes
/// its exited processes (the postmaster's reaped children, as autovacuum
/// workers); switches count live processes and threads only.
fn usage(host: u32) -> Result<[f64; 5]> {
    // SAFETY: sysconf only reads a configuration value.
    let tick_ms = 1000.0 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // utime, stime, cutime, cstime: the 12th to 15th fields after the name.
    let cpu = |path: &str| -> Option<f64> {
        let stat = std::fs::read_to_string(path).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let mut ticks = 0.0;
        for i in 11..15 {
            ticks += fields.get(i)?.parse::<f64>().ok()?;
        }
        Some(ticks * tick_ms)
    };
    let switches = |path: &str| -> f64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    };
    // This bench's database: its postmaster (a child of this process) and
    // the postmaster's children; another run's server ending meanwhile
    // must not count.
    let parent = |pid: &str| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mut postgres = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name().to_string_lossy().to_string();
        if name.bytes().all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(format!("/proc/{name}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        {
            if let Some(ppid) = parent(&name) {
                postgres.push((name, ppid));
            }
        }
    }
    let me = std::process::id();
    let postmasters: Vec<String> = postgres
        .iter()
        .filter(|(_, ppid)| *ppid == me)
        .map(|(pid, _)| pid.clone())
        .collect();
    let (mut db_cpu, mut db_switches) = (0.0, 0.0);
    for (pid, ppid) in &postgres {
        if *ppid == me || postmasters.contains(&ppid.to_string()) {
            db_cpu += cpu(&format!("/proc/{pid}/stat")).unwrap_or(0.0);
            db_switches += switches(&format!("/proc/{pid}/status"));
        }
    }
    let mut host_switches = 0.0;
    for task in std::fs::read_dir(format!("/proc/{host}/task"))? {
        host_switches += switches(&format!("{}/status", task?.path().display()));
    }
    Ok([
        cpu(&format!("/proc/{host}/stat")).context("host CPU time")?,
        db_cpu,
        cpu("/proc/self/stat").context("bench CPU time")?,
        host_switches,
        db_switches,
    ])
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// The fake provider and the host every durable-run benchmark uses, with the
/// `bench` agent published.
fn setup() -> (FakeLlm, App) {
    // Each run: one tool call, then an answer: three recorded steps.
    let fake = FakeLlm::start_instant(|body| {
        if tool_results(body) == 0 {
            // The agent's first tool: `add_numbers`, or the held `approve_me`.
            let name = body["tools"][0]["function"]["name"].as_str().unwrap_or("");
            Answer::ToolCall {
                name: name.into(),
                arguments: json!({ "numbers": [1, 2] }),
            }
        } else {
            Answer::Text("3".into())
        }
    });
    let config = config_for_fakes()
        .env("SYNATRA_DISPATCHER_WORKERS", "16")
        .env("RUST_LOG", "warn");
    let app = start_on(&config);
    let agent = json!({
        "model": { "provider": "openai", "model": "bench", "base_url": fake.base_url() },
        "tools": ["add_numbers"],
        "limits": { "max_iterations": 100 },
    });
    publish(&app, "bench", &agent);
    (fake, app)
}

/// Steps/s alone (`SYNATRA_BENCH=steps`), then the database's capacity
/// (bare INSERT+COMMIT/s over 64 connections).
pub fn measure_rounds() -> Result<(Rounds, f64)> {
    let (_fake, app) = setup();
    let rounds = rounds(&app)?;
    Ok((rounds, capacity(&app.host.database_url)?))
}

/// [`bare_commits`] over 64 connections, measured last (its burst of
/// writes would slow what follows it).
fn capacity(db: &str) -> Result<f64> {
    step("bare INSERT+COMMIT transactions/s over 64 connections");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bare_commits(db, 64, Duration::from_secs(3)))
}

/// Durable steps/s at 1, 8 and 64 concurrent runs.
fn rounds(app: &App) -> Result<Rounds> {
    step("durable steps/s end to end (1, 8, 64 concurrent runs)");
    let db = app.host.database_url.clone();
    // One connection for the rounds' marks: a psql process per query cost
    // as much CPU as the runs it measured.
    let mut marks = Marks::connect(&db)?;
    let mut steps_per_s = Vec::new();
    let mut breakdown = Vec::new();
    let mut timeline_ms = Vec::new();
    let mut usage_per_step = Vec::new();
    for concurrency in [1usize, 8, 64] {
        let phase = marks.text("SELECT now()")?;
        let times_before = component_times(&app.host.admin)?;
        step(&format!("{concurrency} concurrent runs"));
        let used_before = usage(app.host.pid())?;
        let batches = batches(app, &mut marks, concurrency, Duration::from_secs(3))?;
        let used_after = usage(app.host.pid())?;
        let steps: f64 = batches.iter().map(|b| b.steps).sum();
        let busy: f64 = batches.iter().map(|b| b.secs).sum();
        steps_per_s.push((concurrency, steps / busy));
        usage_per_step.push((
            concurrency,
            [0, 1, 2, 3, 4].map(|i| (used_after[i] - used_before[i]) / steps),
        ));
        if concurrency == 1 {
            breakdown = shares(&times_before, &component_times(&app.host.admin)?, steps);
        }
        timeline_ms.push((concurrency, timeline(&mut marks, &phase)?));
    }
    step(&format!("64 concurrent runs for {} s", SUSTAINED.as_secs()));
    let work =
        "SELECT xact_commit || ' ' || (blks_hit + blks_read) || ' ' || (tup_returned + tup_fetched)
                FROM pg_stat_database WHERE datname = current_database()";
    let work_before = marks.text(work)?;
    let batches = batches(app, &mut marks, 64, SUSTAINED)?;
    // Backends report their counts at most once a second, so over this
    // round they are close.
    std::thread::sleep(Duration::from_millis(1500));
    let work_after = marks.text(work)?;
    let all_steps: f64 = batches.iter().map(|b| b.steps).sum();
    let counts = |text: &str| -> Vec<f64> {
        text.split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect()
    };
    let (w0, w1) = (counts(&work_before), counts(&work_after));
    anyhow::ensure!(w0.len() == 3 && w1.len() == 3, "database counters");
    let database_work = [0, 1, 2].map(|i| (w1[i] - w0[i]) / all_steps);
    let rate = |from: Duration, to: Duration| {
        let within: Vec<_> = batches
            .iter()
            .filter(|b| b.ended >= from && b.ended < to)
            .collect();
        within.iter().map(|b| b.steps).sum::<f64>() / within.iter().map(|b| b.secs).sum::<f64>()
    };
    let fifth = SUSTAINED / 5;
    let sustained = (
        rate(Duration::ZERO, fifth),
        rate(SUSTAINED - fifth, SUSTAINED * 2),
    );
    let claims = run_claims(&app.host.admin)?;
    Ok(Rounds {
        steps_per_s,
        breakdown,
        timeline_ms,
        usage_per_step,
        sustained,
        database_work,
        claims,
    })
}

/// How long the sustained round keeps 64 runs in flight.
pub const SUSTAINED: Duration = Duration::from_secs(30);

/// One batch of runs started together and waited for.
struct Batch {
    steps: f64,
    /// From the first run's creation to the last one's end.
    secs: f64,
    /// When the batch was done, from the round's start.
    ended: Duration,
}

/// Batches of `concurrency` runs, one after the other, for `length`.
fn batches(
    app: &App,
    marks: &mut Marks,
    concurrency: usize,
    length: Duration,
) -> Result<Vec<Batch>> {
    // Busy time per batch comes from the runs' own timestamps, so the
    // client's polling does not count.
    let mut batches = Vec::new();
    let started = Instant::now();
    while started.elapsed() < length {
        // Started from up to 8 client threads, so the runs overlap
        // rather than queue behind one client's requests.
        let clients = concurrency.min(8);
        let ids: Vec<String> = std::thread::scope(|s| {
            let started: Vec<_> = (0..clients)
                .map(|c| {
                    s.spawn(move || {
                        (c..concurrency)
                            .step_by(clients)
                            .map(|_| start_thread(app, "bench", "add", "normal"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            started
                .into_iter()
                .flat_map(|h| h.join().expect("client thread"))
                .collect()
        });
        // Completion is read from the database, not by polling the API:
        // the client's polling would compete with the runs it measures.
        // Every query is by the batch's ids, so its cost does not grow with
        // the runs of earlier batches: steps are counted run by run (as a
        // join, the planner read every step of every round, a full scan per
        // batch that the database's figures then counted as the runs' work).
        let list = uuid_list(&ids);
        marks.wait_completed(&list, ids.len(), Duration::from_secs(120))?;
        let row = marks.text(&format!(
            "SELECT sum((SELECT count(*) FROM run_steps s WHERE s.run_id = r.id))
             || ' ' || extract(epoch FROM max(finished_at) - min(created_at)) FROM runs r WHERE thread_id IN ({list})"
        ))?;
        let (n, secs) = row.split_once(' ').context("round figures")?;
        batches.push(Batch {
            steps: n.parse()?,
            secs: secs.parse()?,
            ended: started.elapsed(),
        });
    }
    Ok(batches)
}

/// Runs every durable-run benchmark.
pub fn measure() -> Result<RunFigures> {
    let (fake, mut app) = setup();
    let rounds = rounds(&app)?;
    let db = app.host.database_url.clone();

    step("reply → run resumed latency");
    let id = start_thread(&app, "bench", "add", "normal");
    wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    let mut latencies = Vec::new();
    for _ in 0..60 {
        let before = fake.calls();
        let sent = Instant::now();
        let r = app.owner.client.post(
            &format!("/api/v1/orgs/{}/threads/{id}/messages", app.org),
            json!({ "message": "again" }),
        );
        anyhow::ensure!(r.status == 201, "reply failed: {:?}", r.body);
        fake.wait_for_calls(before + 1);
        latencies.push(fake.received()[before].at.duration_since(sent));
        wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    }
    latencies.sort();

    step("approval → run resumed latency");
    let tool = json!({ "name": "approve_me", "params": { "type": "object" }, "code": "return 1;",
                       "approval": { "policy": "any-member" } });
    let created = app
        .owner
        .client
        .post(&format!("/api/v1/orgs/{}/tools", app.org), tool);
    anyhow::ensure!(created.status == 201, "tool: {:?}", created.body);
    let held = json!({
        "model": { "provider": "openai", "model": "bench", "base_url": fake.base_url() },
        "tools": ["approve_me"],
    });
    publish(&app, "held", &held);
    let mut approvals = Vec::new();
    for _ in 0..40 {
        let id = start_thread(&app, "held", "go", "normal");
        let t = wait_for(&app, &id, &["waiting_approval"], Duration::from_secs(30));
        let approval = t["messages"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["kind"] == "approval"))
            .and_then(|m| m["content"]["id"].as_str())
            .context("approval message")?
            .to_string();
        let before = fake.calls();
        let sent = Instant::now();
        let r = app.owner.client.post(
            &format!("/api/v1/orgs/{}/approvals/{approval}/approve", app.org),
            json!({}),
        );
        anyhow::ensure!(r.status == 200, "approve failed: {:?}", r.body);
        fake.wait_for_calls(before + 1);
        approvals.push(fake.received()[before].at.duration_since(sent));
        wait_for(&app, &id, &["completed"], Duration::from_secs(30));
    }
    approvals.sort();

    step("host RSS: idle, then with 10,000 runs waiting");
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle_kib = rss_kib(app.host.pid())?;
    psql(
        &db,
        &format!(
            "INSERT INTO runs (org_id, thread_id, agent_id, config, input_upto, status, wake_at)
             SELECT r.org_id, r.thread_id, r.agent_id, r.config, r.input_upto, 'waiting', now() + interval '1 day'
             FROM runs r, generate_series(1, 10000) WHERE r.thread_id = '{id}' LIMIT 10000"
        ),
    );
    std::thread::sleep(Duration::from_secs(4));
    let rss_waiting_kib = rss_kib(app.host.pid())?;

    step("recording one step vs a bare INSERT + COMMIT");
    app.host.kill9();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (record_us, bare_insert_us, single_insert_us) = rt.block_on(record_cost(&db, &id))?;
    let bare_commits_per_s = capacity(&db)?;

    Ok(RunFigures {
        rounds,
        bare_commits_per_s,
        record_us,
        bare_insert_us,
        single_insert_us,
        rss_idle_kib,
        rss_waiting_kib,
        resume_p50_ms: percentile(&latencies, 0.5) / 1000.0,
        resume_p99_ms: percentile(&latencies, 0.99) / 1000.0,
        approval_p50_ms: percentile(&approvals, 0.5) / 1000.0,
        approval_p99_ms: percentile(&approvals, 0.99) / 1000.0,
    })
}

/// `ids` as an SQL list of UUIDs.
fn uuid_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'::uuid"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One database connection kept for the bench's own queries.
struct Marks {
    rt: tokio::runtime::Runtime,
    conn: sqlx::PgConnection,
}

impl Marks {
    fn connect(url: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut conn = rt.block_on(<sqlx::PgConnection as sqlx::Connection>::connect(url))?;
        // Its queries name the batch's rows: index lookups, never a scan of
        // tables that grow as the rounds go on.
        rt.block_on(sqlx::query("SET enable_seqscan = off").execute(&mut conn))?;
        // Nor JIT: a batch's step count over 64 ids is estimated above
        // `jit_above_cost`, and compiling it took ~100 ms of the database's
        // CPU per batch (7.7 s in the 30 s sustained round), which
        // the figures then counted as the runs' work.
        rt.block_on(sqlx::query("SET jit = off").execute(&mut conn))?;
        Ok(Self { rt, conn })
    }

    /// Waits until all `n` threads of `list` have completed; fails on any
    /// other ending or after `within`.
    fn wait_completed(&mut self, list: &str, n: usize, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let counts = self.text(&format!(
                "SELECT count(*) FILTER (WHERE status = 'completed') || ' ' ||
                        count(*) FILTER (WHERE status NOT IN ('completed', 'active'))
                 FROM threads WHERE id IN ({list})"
            ))?;
            let (done, other) = counts.split_once(' ').context("thread counts")?;
            anyhow::ensure!(
                other == "0",
                "{other} of the round's threads did not complete"
            );
            if done.parse::<usize>()? == n {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the round's runs did not finish");
            // A batch's time comes from its runs' timestamps, so polling
            // less often costs no accuracy, only a later start of the next
            // batch; each poll takes CPU from the runs it waits for.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The single value `sql` selects, as text (as `psql -At` prints it).
    fn text(&mut self, sql: &str) -> Result<String> {
        let query = format!("SELECT q.v::text FROM ({sql}) AS q(v)");
        let value: Option<String> = self
            .rt
            .block_on(sqlx::query_scalar(&query).fetch_one(&mut self.conn))?;
        Ok(value.unwrap_or_default())
    }
}

/// Mean ms of each stretch of the runs created since `since`: creation to
/// step 0, step n-1 to step n, the last step to the run's end (each time is
/// when its statement started).
fn timeline(marks: &mut Marks, since: &str) -> Result<Vec<(String, f64)>> {
    let rows = marks.text(&format!(
            "WITH marks AS (
                 SELECT r.id, s.seq, s.recorded_at AS at FROM runs r JOIN run_steps s ON s.run_id = r.id
                 WHERE r.created_at >= '{since}'
                 UNION ALL SELECT id, -1, created_at FROM runs WHERE created_at >= '{since}'
                 UNION ALL SELECT id, 1000, finished_at FROM runs WHERE created_at >= '{since}'),
             gaps AS (
                 SELECT seq, extract(epoch FROM at - lag(at) OVER (PARTITION BY id ORDER BY seq)) AS secs
                 FROM marks)
             SELECT string_agg(seq || ':' || round(avg * 1000, 2), ' ' ORDER BY seq)
             FROM (SELECT seq, avg(secs) AS avg FROM gaps WHERE secs IS NOT NULL GROUP BY seq) g"
    ))?;
    rows.split_whitespace()
        .map(|pair| {
            let (seq, ms) = pair.split_once(':').context("timeline figures")?;
            let label = match seq {
                "0" => "created → step 0".to_string(),
                "1000" => "last step → ended".to_string(),
                n => format!("step {} → step {n}", n.parse::<i64>()? - 1),
            };
            Ok((label, ms.parse()?))
        })
        .collect()
}

/// Transactions/s of `connections` clients each committing one small
/// INSERT after another for `time`: the most a database on these cores
/// commits, the ceiling under any durable step.
async fn bare_commits(db: &str, connections: usize, time: Duration) -> Result<f64> {
    let mut setup = PgConnection::connect(db).await?;
    sqlx::query("CREATE TABLE bench_capacity (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)")
        .execute(&mut setup)
        .await?;
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(PgConnection::connect(db).await?);
    }
    let until = Instant::now() + time;
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut conn| {
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    bare_commit(&mut conn, "bench_capacity", n).await?;
                    n += 1;
                }
                anyhow::Ok(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// One bare transaction: `BEGIN`, a one-row `INSERT` into `table`, `COMMIT`.
async fn bare_commit(conn: &mut PgConnection, table: &str, n: u64) -> Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query(&format!("INSERT INTO {table} (v) VALUES ($1)"))
        .bind(n.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Mean µs per recorded step, per bare INSERT + COMMIT and per single
/// autocommitted INSERT statement, on the same connection and database.
async fn record_cost(db: &str, thread_id: &str) -> Result<(f64, f64, f64)> {
    const N: usize = 2000;
    let mut conn = PgConnection::connect(db).await?;
    let run_id: (String,) =
        sqlx::query_as("SELECT id::text FROM runs WHERE thread_id = $1::uuid LIMIT 1")
            .bind(thread_id)
            .fetch_one(&mut conn)
            .await?;
    let run_id = run_id.0;
    sqlx::query("UPDATE runs SET status = 'ready', lease_owner = 'bench', lease_expires_at = now() + interval '1 hour' WHERE id = $1::uuid")
        .bind(&run_id)
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_bare (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    let output = json!({ "kind": "tool", "call_id": "c", "name": "add_numbers", "output": { "sum": 3 }, "is_error": false });
    let started = Instant::now();
    for i in 0..N {
        // What the agent step sends for a tool step: one statement.
        let messages = json!([{ "kind": "tool_result", "content": &output }]);
        sqlx::query(
            "SELECT record_step($1::uuid, 'bench', 30, 1, $2, 'tool', $3, $4, $5, $6, '[]', 0, 0, NULL)",
        )
        .bind(&run_id)
        .bind(10_000 + i as i32)
        .bind(format!("{run_id}:{i}"))
        .bind(sqlx::types::Json(json!({})))
        .bind(sqlx::types::Json(&output))
        .bind(sqlx::types::Json(&messages))
        .execute(&mut conn)
        .await?;
    }
    let record = started.elapsed().as_secs_f64() * 1e6 / N as f64;
    let started = Instant::now();
    for i in 0..N {
        bare_commit(&mut conn, "bench_bare", i as u64).await?;
    }
    let bare = started.elapsed().as_secs_f64() * 1e6 / N as f64;
    let started = Instant::now();
    for i in 0..N {
        sqlx::query("INSERT INTO bench_bare (v) VALUES ($1)")
            .bind(i.to_string())
            .execute(&mut conn)
            .await?;
    }
    let single = started.elapsed().as_secs_f64() * 1e6 / N as f64;
    Ok((record, bare, single))
}
