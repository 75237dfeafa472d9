//! What kind of call the model made. Decided in one place, in a fixed order,
//! so the agent step dispatches on a value instead of on guard order.

use crate::builtins::{DELEGATE_PREFIX, WAIT_TOOL};
use crate::widgets;

/// The kinds of tool call, each executed (or waited on) its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// One of the org's tools (JavaScript or a WIT component).
    UserTool,
    /// `human_request`: ask a person and wait for the answer.
    HumanRequest,
    /// A widget that only shows something (table, chart…).
    Widget,
    /// `delegate_to_<slug>`: start a sub-agent's run and wait for it.
    Delegate,
    /// `wait`: a durable timer.
    Wait,
    /// A built-in function (or an unknown name, which it reports).
    Builtin,
}

/// Classifies the call `name`. An org's own tool wins over every built-in
/// name; `wait` is a timer only when the agent enabled it.
pub fn classify(name: &str, is_user_tool: bool, wait_enabled: bool) -> CallKind {
    if is_user_tool {
        CallKind::UserTool
    } else if name == widgets::HUMAN_REQUEST {
        CallKind::HumanRequest
    } else if widgets::OUTPUTS.contains(&name) {
        CallKind::Widget
    } else if name.starts_with(DELEGATE_PREFIX) {
        CallKind::Delegate
    } else if name == WAIT_TOOL && wait_enabled {
        CallKind::Wait
    } else {
        CallKind::Builtin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_has_one_kind_and_user_tools_come_first() {
        assert_eq!(
            classify("human_request", false, false),
            CallKind::HumanRequest
        );
        assert_eq!(classify("output_table", false, false), CallKind::Widget);
        assert_eq!(
            classify("delegate_to_sales", false, false),
            CallKind::Delegate
        );
        assert_eq!(classify("wait", false, true), CallKind::Wait);
        assert_eq!(classify("add_numbers", false, true), CallKind::Builtin);
        // An org tool shadows a built-in of the same name.
        for name in ["human_request", "output_table", "delegate_to_x", "wait"] {
            assert_eq!(classify(name, true, true), CallKind::UserTool, "{name}");
        }
        // `wait` the agent did not enable is an unknown built-in.
        assert_eq!(classify("wait", false, false), CallKind::Builtin);
    }
}
