//! The states a run and its thread move through, and how an invocation of
//! the agent step ends. The strings are the database's `status` values.

/// A run's `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Claimable now (or when its durable timer is due).
    Ready,
    /// Parked until something answers it (approval, person, sub-agent).
    Waiting,
    Completed,
    Failed,
    Cancelled,
    Rejected,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Ready,
        RunStatus::Waiting,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
        RunStatus::Rejected,
    ];

    /// The status a column value names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ready => "ready",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Rejected => "rejected",
        }
    }
}

/// A thread's `status` column: what the thread's latest run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadStatus {
    Active,
    WaitingApproval,
    WaitingUser,
    WaitingSubagent,
    Completed,
    Failed,
    Cancelled,
    Rejected,
}

impl ThreadStatus {
    /// Every status.
    pub const ALL: [ThreadStatus; 8] = [
        ThreadStatus::Active,
        ThreadStatus::WaitingApproval,
        ThreadStatus::WaitingUser,
        ThreadStatus::WaitingSubagent,
        ThreadStatus::Completed,
        ThreadStatus::Failed,
        ThreadStatus::Cancelled,
        ThreadStatus::Rejected,
    ];

    /// The status a column value (or a `status` filter) names.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadStatus::Active => "active",
            ThreadStatus::WaitingApproval => "waiting_approval",
            ThreadStatus::WaitingUser => "waiting_user",
            ThreadStatus::WaitingSubagent => "waiting_subagent",
            ThreadStatus::Completed => "completed",
            ThreadStatus::Failed => "failed",
            ThreadStatus::Cancelled => "cancelled",
            ThreadStatus::Rejected => "rejected",
        }
    }
}

/// How a run ends for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Completed,
    /// The run failed with this message (shown on the thread).
    Failed(String),
    Cancelled,
    /// A reviewer rejected a call (the message says which).
    Rejected(String),
}

impl Ending {
    /// The run's final status.
    pub fn run_status(&self) -> RunStatus {
        match self {
            Ending::Completed => RunStatus::Completed,
            Ending::Failed(_) => RunStatus::Failed,
            Ending::Cancelled => RunStatus::Cancelled,
            Ending::Rejected(_) => RunStatus::Rejected,
        }
    }

    /// The thread's status once the run has ended this way.
    pub fn thread_status(&self) -> ThreadStatus {
        match self {
            Ending::Completed => ThreadStatus::Completed,
            Ending::Failed(_) => ThreadStatus::Failed,
            Ending::Cancelled => ThreadStatus::Cancelled,
            Ending::Rejected(_) => ThreadStatus::Rejected,
        }
    }

    /// The error recorded with the run, if any.
    pub fn error(&self) -> Option<&str> {
        match self {
            Ending::Failed(e) | Ending::Rejected(e) => Some(e),
            Ending::Completed | Ending::Cancelled => None,
        }
    }

    /// How the invocation that recorded this ending reports it.
    pub fn outcome(&self) -> Outcome {
        match self {
            Ending::Completed => Outcome::Completed,
            Ending::Failed(_) => Outcome::Failed,
            Ending::Cancelled => Outcome::Cancelled,
            Ending::Rejected(_) => Outcome::Rejected,
        }
    }
}

/// How one invocation of the agent step ended (the `outcome` it answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    Cancelled,
    /// The time budget ran out; the run is ready for the next invocation.
    HandedBack,
    /// A retryable model error; the run sleeps on a durable timer.
    Retrying,
    /// The run sleeps on a durable timer (the `wait` tool).
    Sleeping,
    /// The run waits for a sub-agent's run to finish.
    WaitingSubagent,
    /// The run waits for a person to answer a human request.
    WaitingUser,
    /// The run waits for a person to approve or reject tool calls.
    WaitingApproval,
    /// A person rejected a tool call: the run ended.
    Rejected,
    /// The caller's lease was gone (expired or taken): nothing was recorded.
    NotLeased,
}

impl Outcome {
    /// The name in the response.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::HandedBack => "handed_back",
            Outcome::Retrying => "retrying",
            Outcome::Sleeping => "sleeping",
            Outcome::WaitingSubagent => "waiting_subagent",
            Outcome::WaitingUser => "waiting_user",
            Outcome::WaitingApproval => "waiting_approval",
            Outcome::Rejected => "rejected",
            Outcome::NotLeased => "not_leased",
        }
    }
}

/// What a parked run (status `waiting`) waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    /// People to approve or reject its tool calls.
    Approval,
    /// A person to answer a human request.
    User,
    /// A sub-agent's run to finish.
    Subagent,
}

impl WaitingFor {
    /// The thread's status while the run waits.
    pub fn thread_status(self) -> ThreadStatus {
        match self {
            WaitingFor::Approval => ThreadStatus::WaitingApproval,
            WaitingFor::User => ThreadStatus::WaitingUser,
            WaitingFor::Subagent => ThreadStatus::WaitingSubagent,
        }
    }

    /// How the invocation that parked the run reports it.
    pub fn outcome(self) -> Outcome {
        match self {
            WaitingFor::Approval => Outcome::WaitingApproval,
            WaitingFor::User => Outcome::WaitingUser,
            WaitingFor::Subagent => Outcome::WaitingSubagent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_set_run_and_thread_alike() {
        for (ending, name) in [
            (Ending::Completed, "completed"),
            (Ending::Failed("x".into()), "failed"),
            (Ending::Cancelled, "cancelled"),
            (Ending::Rejected("y".into()), "rejected"),
        ] {
            assert_eq!(ending.run_status().as_str(), name);
            assert_eq!(ending.thread_status().as_str(), name);
            assert_eq!(ending.outcome().as_str(), name);
        }
        assert_eq!(Ending::Failed("boom".into()).error(), Some("boom"));
        assert_eq!(Ending::Cancelled.error(), None);
    }

    #[test]
    fn statuses_parse_their_own_names_only() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Some(s));
        }
        for s in ThreadStatus::ALL {
            assert_eq!(ThreadStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RunStatus::parse("active"), None);
        assert_eq!(ThreadStatus::parse("ready"), None);
        assert_eq!(ThreadStatus::parse("Completed"), None);
    }
}
