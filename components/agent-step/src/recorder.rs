//! The one way a step's effects reach the database. A step is recorded by
//! [`Recorder::record`] (one statement: SQL `record_step`, which fences on
//! the lease first; [`Recorder::record_completing`] also ends the run in
//! it), or, with other writes, in [`Recorder::transact`]: one
//! transaction that first proves the caller's lease still holds, whose
//! steps join the in-memory step list only once committed. A run ends by
//! [`Recorder::finish`] (SQL `end_run`). A lost lease, or another worker's
//! recording of the same `seq`, is [`DbError::LeaseLost`], which ends the
//! invocation with nothing recorded. (Streamed token events and lease
//! renewals are written outside steps: they record nothing a replay reads.)

use std::time::Instant;

use serde_json::Value;
use synatra_db::runs::{self, Recorded, RunState, StepRecord};
use synatra_db::{Db, DbError};
use synatra_names::limits::renew_interval;
use synatra_runs::{idempotency_key, project, Ending, Outcome, RunStatus, Step, WaitingFor};

/// An invocation's hold on one run: its lease, its recorded steps, and
/// the time spent so far.
pub struct Recorder<'a> {
    pub db: &'a Db,
    pub run: RunState,
    pub lease: &'a str,
    pub lease_secs: i32,
    pub started: Instant,
    last_fence: Instant,
    steps: Vec<Step>,
    cancel_requested: bool,
    /// Events written with the next recorded step, before its own.
    with_next_step: Vec<Value>,
}

/// Writes inside a fenced transaction; see [`Recorder::transact`].
pub struct Tx<'t> {
    pub db: &'t Db,
    pub run: &'t RunState,
    pub lease: &'t str,
    lease_secs: i32,
    seq: usize,
    recorded: Vec<Step>,
}

impl Tx<'_> {
    /// Records `step` at the next `seq`, with the thread messages and events
    /// it produces; returns its `seq`.
    pub fn step(&mut self, step: Step, input: &Value) -> Result<usize, DbError> {
        let seq = self.seq + self.recorded.len();
        // Fenced already: no active time to add.
        let write = StepWrite {
            seq,
            step: &step,
            input,
            spent_ms: 0,
            events: Vec::new(),
            end: None,
        };
        write.run(self.db, self.run, self.lease, self.lease_secs)?;
        self.recorded.push(step);
        Ok(seq)
    }

    /// Adds a thread message of the run, with the event announcing it.
    pub fn message(&self, kind: &str, content: &Value) -> Result<(), DbError> {
        let (thread, run) = (&self.run.thread_id, Some(self.run.id.as_str()));
        runs::add_message(self.db, thread, run, kind, content).map(drop)
    }

    /// Parks the run until what it waits for answers it.
    pub fn park(&self, waiting: WaitingFor) -> Result<(), DbError> {
        runs::park(
            self.db,
            &self.run.id,
            self.lease,
            &self.run.thread_id,
            waiting.thread_status(),
        )
    }
}

impl<'a> Recorder<'a> {
    pub fn new(
        db: &'a Db,
        run: RunState,
        lease: &'a str,
        lease_secs: i32,
        steps: Vec<Step>,
    ) -> Self {
        Recorder {
            cancel_requested: run.cancel_requested,
            db,
            run,
            lease,
            lease_secs,
            started: Instant::now(),
            last_fence: Instant::now(),
            steps,
            with_next_step: Vec::new(),
        }
    }

    /// The steps recorded so far, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether someone asked the run to stop (as of the last recording).
    pub fn cancel_requested(&self) -> bool {
        self.cancel_requested
    }

    /// The `seq` of the next step.
    pub fn next_seq(&self) -> usize {
        self.steps.len()
    }

    /// Runs `f` in a transaction that first fences on the lease. Steps `f`
    /// records join [`Self::steps`] when the transaction commits.
    pub fn transact<T>(
        &mut self,
        f: impl FnOnce(&mut Tx) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        match self.transact_unless(|_| Ok(false), f)? {
            Some(value) => Ok(value),
            None => unreachable!("nothing settles"),
        }
    }

    /// Like [`Self::transact`], but first checks `settled` in the same
    /// transaction (before the fence, so rows are locked in the order the
    /// API answering a wait locks them); when it holds, writes nothing and
    /// returns `None`.
    pub fn transact_unless<T>(
        &mut self,
        settled: impl FnOnce(&Db) -> Result<bool, DbError>,
        f: impl FnOnce(&mut Tx) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let (run, lease, seq) = (&self.run, self.lease, self.steps.len());
        let lease_secs = self.lease_secs;
        let spent = self.spent_ms();
        let result = self.db.transaction(|db| {
            if settled(db)? {
                return Ok(None);
            }
            runs::fence(db, &run.id, lease, lease_secs, spent)?;
            let mut tx = Tx {
                db,
                run,
                lease,
                lease_secs,
                seq,
                recorded: Vec::new(),
            };
            let value = f(&mut tx)?;
            Ok(Some((value, tx.recorded)))
        });
        self.last_fence = Instant::now();
        match result {
            Ok(Some((value, recorded))) => {
                self.steps.extend(recorded);
                Ok(Some(value))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(taken(e)),
        }
    }

    /// Records one step: one statement, one commit.
    pub fn record(&mut self, step: Step, input: &Value) -> Result<(), DbError> {
        let recorded = self.write(step, input, None)?;
        self.cancel_requested = recorded == Recorded::CancelRequested;
        Ok(())
    }

    /// Records the step that completes the run and ends it, in one
    /// statement (it ends cancelled if someone asked it to stop meanwhile).
    pub fn record_completing(&mut self, step: Step, input: &Value) -> Result<Outcome, DbError> {
        match self.write(step, input, Some(RunStatus::Completed))? {
            Recorded::Ended(RunStatus::Cancelled) => Ok(Outcome::Cancelled),
            _ => Ok(Outcome::Completed),
        }
    }

    /// Writes an event with the next recorded step (before the step's own
    /// events and messages), saving a statement of its own.
    pub fn event_with_next_step(&mut self, kind: &str, data: Value) {
        self.with_next_step
            .push(serde_json::json!({ "kind": kind, "data": data }));
    }

    fn write(
        &mut self,
        step: Step,
        input: &Value,
        end: Option<RunStatus>,
    ) -> Result<Recorded, DbError> {
        let write = StepWrite {
            seq: self.steps.len(),
            step: &step,
            input,
            spent_ms: self.spent_ms(),
            events: std::mem::take(&mut self.with_next_step),
            end,
        };
        let recorded = write.run(self.db, &self.run, self.lease, self.lease_secs);
        self.last_fence = Instant::now();
        let recorded = recorded.map_err(taken)?;
        self.steps.push(step);
        Ok(recorded)
    }

    /// Active time since the last fence.
    fn spent_ms(&self) -> i64 {
        self.last_fence.elapsed().as_millis() as i64
    }

    /// Parks the run (waiting for `waiting`) if `still_waiting`, checked in
    /// the same transaction under a lock the answering side also takes, so
    /// an answer that lands meanwhile is never missed. `None`: it was
    /// answered; look again.
    pub fn park_while(
        &mut self,
        waiting: WaitingFor,
        still_waiting: impl FnOnce(&Db) -> Result<bool, DbError>,
    ) -> Result<Option<Outcome>, DbError> {
        let parked = self.transact_unless(|db| Ok(!still_waiting(db)?), |tx| tx.park(waiting))?;
        Ok(parked.map(|()| waiting.outcome()))
    }

    /// Holds the lease for at least `secs` more before a model or tool
    /// call starts, and gives the pooled connection back for the call.
    pub fn hold(&self, secs: i32) -> Result<(), DbError> {
        // The last fence (every recorded step) extended the lease already.
        let held = self.last_fence.elapsed() < renew_interval(secs)
            || runs::hold_lease(self.db, &self.run.id, self.lease, secs)?;
        self.db.release();
        if held {
            Ok(())
        } else {
            Err(DbError::LeaseLost)
        }
    }

    /// Releases the run for the next invocation, not before `delay_ms` when
    /// given (a durable timer), counting a retry when `retry`.
    pub fn hand_back(&self, delay_ms: Option<i64>, retry: bool) -> Result<(), DbError> {
        runs::hand_back(self.db, &self.run.id, self.lease, delay_ms, retry)
    }

    /// An event on the run's thread, outside any step.
    pub fn event(&self, kind: &str, data: &Value) -> Result<(), DbError> {
        runs::add_event(self.db, &self.run.thread_id, Some(&self.run.id), kind, data)
    }

    /// Ends the run, recording the error message if any.
    pub fn finish(&mut self, ending: Ending) -> Result<Outcome, DbError> {
        runs::end_run(self.db, &self.run.id, self.lease, &ending, self.spent_ms())?;
        Ok(ending.outcome())
    }
}

/// Another worker recording the same seq first means the run is its now.
fn taken(e: DbError) -> DbError {
    match e {
        DbError::UniqueViolation(_) => DbError::LeaseLost,
        other => other,
    }
}

/// One step to record with its projection (SQL `record_step`).
struct StepWrite<'s> {
    seq: usize,
    step: &'s Step,
    input: &'s Value,
    /// Active time since the last fence.
    spent_ms: i64,
    /// Events written before the step's own.
    events: Vec<Value>,
    end: Option<RunStatus>,
}

impl StepWrite<'_> {
    fn run(
        self,
        db: &Db,
        run: &RunState,
        lease: &str,
        lease_secs: i32,
    ) -> Result<Recorded, DbError> {
        let output = serde_json::to_value(self.step).map_err(|e| DbError::Other(e.to_string()))?;
        let mut projection = project(self.step, self.input);
        if !self.events.is_empty() {
            projection.events.splice(0..0, self.events);
        }
        runs::record_step(
            db,
            &StepRecord {
                run_id: &run.id,
                lease,
                lease_secs,
                spent_ms: self.spent_ms,
                seq: self.seq as i32,
                kind: self.step.kind(),
                idempotency_key: &idempotency_key(&run.id, self.seq),
                input: self.input,
                output: &output,
                projection: &projection,
                end: self.end,
            },
        )
    }
}
