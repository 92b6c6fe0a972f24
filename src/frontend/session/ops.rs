//! What a session tells the node's operators: counters and refusals for `/metrics` and the
//! console, and the user table in force after a reload (SIGHUP).

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::info;

use super::{End, Session};
use crate::clock::unix_ms;
use crate::config::{Grant, UserRole};
use crate::error::{ER_ACCESS_DENIED_ERROR, ErrorReply};
use crate::metrics::{Outcome, Refusal, truncate_statement};
use crate::sql::class::StatementClass;
use crate::sql::classify::Classified;

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// Answers `refusal` instead of running `text`, and records it for the operators.
    pub(super) fn refuse(&mut self, text: &str, classified: &Classified, refusal: &ErrorReply) {
        self.refused = true;
        self.node.metrics.refused(
            classified.class(),
            Refusal {
                at_unix_ms: unix_ms(),
                user: self.login.user.clone(),
                source: self.login.peer.to_string(),
                statement: truncate_statement(text),
                class: classified.class().as_str(),
                code: refusal.code,
                reason: refusal.message.clone(),
            },
        );
        self.node.events.refused(&self.login.user, refusal.code);
        self.client.replies.error(refusal);
    }

    /// Counts a statement that was let through, unless something on its way refused it after all.
    pub(super) fn count_statement(
        &mut self,
        class: StatementClass,
        outcome: Outcome,
        started: Instant,
    ) {
        if !std::mem::take(&mut self.refused) {
            self.node
                .metrics
                .statement(class, outcome, started.elapsed());
        }
    }

    /// The role of the session's user in the user table in force now: a reload changes it for
    /// the statements that follow. A user removed meanwhile has no rights left.
    pub(super) fn current_role(&self) -> UserRole {
        self.current_grant().role
    }

    /// What this client may do now: a reload may have changed it; a removed user may read
    /// nothing until its next command disconnects it.
    pub(super) fn current_grant(&self) -> Grant {
        self.node
            .grant(&self.login.user, self.login.peer)
            .unwrap_or(Grant {
                role: UserRole::Readonly,
                databases: Some(Arc::from([])),
            })
    }

    /// A user removed from the config by a reload is disconnected at its next command, with
    /// error 1045 as if it logged in now: its open transaction rolls back with the connection.
    pub(super) async fn removed_by_reload(&mut self) -> Option<End> {
        self.node
            .grant(&self.login.user, self.login.peer)
            .is_none()
            .then_some(())?;
        info!(user = %self.login.user, "disconnecting a user removed by a reload");
        self.client.replies.error(&ErrorReply::new(
            ER_ACCESS_DENIED_ERROR,
            format!(
                "Access denied for user '{}'@'{}': the user was removed from node '{}'",
                self.login.user, self.login.peer, self.node.config.name
            ),
        ));
        let _ = self.client.replies.out.flush().await;
        Some(End::Quit)
    }
}
