//! Rows a server would not show a user without privileges, left out of what the backend (where
//! every client is an administrator) answers: other clients' connections in a non-admin's
//! `SHOW PROCESSLIST`, and databases the user may not touch in its `SHOW DATABASES`.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::backend::relay::first_column;
use crate::config::{Grant, UserRole};
use crate::sql::classify::Classified;
use crate::sql::schemas::allowed;

/// What a statement's rows are filtered by.
pub(super) enum Hidden {
    /// Only these connections (the first column is the connection id).
    Connections(Vec<u32>),
    /// Only the databases this grant may touch (the first column is the name).
    Databases(Grant),
}

impl Hidden {
    /// True when the client may see text row `row`.
    pub(super) fn keeps(&self, row: &[u8]) -> bool {
        let first = first_column(row);
        match self {
            Hidden::Connections(ids) => first
                .and_then(|id| id.parse::<u32>().ok())
                .is_some_and(|id| ids.contains(&id)),
            Hidden::Databases(grant) => {
                first.is_some_and(|db| allowed(grant.role, grant.databases.as_deref(), db))
            }
        }
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Session<R, W> {
    /// The filter of `classified`'s rows for this user, if they need one.
    pub(super) fn hidden_rows(&self, classified: &Classified) -> Option<Hidden> {
        let shows = |verb: &str| classified.statements.iter().any(|s| s.verb == verb);
        // The verbs first: the grant is looked up in the shared user table, which other
        // statements need not pay for.
        if shows("SHOW PROCESSLIST") {
            return (self.current_role() != UserRole::Admin)
                .then(|| Hidden::Connections(self.node.sessions.of_user(&self.login.user)));
        }
        if shows("SHOW DATABASES") {
            let grant = self.current_grant();
            return (grant.role != UserRole::Admin || grant.databases.is_some())
                .then_some(Hidden::Databases(grant));
        }
        None
    }
}
