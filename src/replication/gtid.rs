//! Positions in the master's binlog, as global transaction ids.
//!
//! MariaDB names a transaction `domain-server-sequence` and a position by the last transaction
//! of each replication domain (`0-1-57,1-3-9`). MySQL 8 names one `uuid:n` and a position by
//! the set of intervals per source uuid; [`Position`] keeps either shape behind the same
//! operations (ordering per stream, a comparable number, the text the server takes back), so a
//! MySQL backend fits by parsing its form. Only MariaDB's is exercised today (README).

use std::collections::BTreeMap;
use std::fmt;

/// One MariaDB transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtid {
    /// Replication domain: an independent stream of transactions.
    pub domain: u32,
    /// Server that first committed it.
    pub server: u32,
    /// Sequence number, increasing within the domain.
    pub seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl std::str::FromStr for Gtid {
    type Err = BadPosition;

    /// `domain-server-sequence`.
    fn from_str(text: &str) -> Result<Gtid, BadPosition> {
        let pos = Position::parse(text)?;
        match (pos.domains.len(), pos.sources.is_empty()) {
            (1, true) => pos
                .domains
                .into_values()
                .next()
                .ok_or_else(|| BadPosition(text.to_string())),
            _ => Err(BadPosition(text.to_string())),
        }
    }
}

/// A replication position: for each stream (MariaDB domain, or MySQL source uuid), how far it
/// has got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// MariaDB: domain → the last transaction applied in it.
    domains: BTreeMap<u32, Gtid>,
    /// MySQL: source uuid → the highest transaction number of its (gap-free) set.
    sources: BTreeMap<String, u64>,
}

/// A position text that is neither MariaDB's nor MySQL's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a GTID position: {0:?}")]
pub struct BadPosition(pub String);

impl Position {
    /// Parses `@@gtid_binlog_pos` / `@@gtid_slave_pos` (`0-1-5,1-2-3`) or MySQL's
    /// `@@gtid_executed` (`uuid:1-5,uuid2:1-3`); the empty text is the empty position.
    pub fn parse(text: &str) -> Result<Position, BadPosition> {
        let bad = || BadPosition(text.to_string());
        let mut pos = Position::default();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Some((uuid, ranges)) = item.split_once(':') {
                // MySQL: the last interval's end is the position when the set has no gaps.
                let end = ranges
                    .rsplit(':')
                    .next()
                    .and_then(|r| r.rsplit('-').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(bad)?;
                pos.sources.insert(uuid.to_ascii_lowercase(), end);
                continue;
            }
            let mut parts = item.splitn(3, '-').map(str::parse::<u64>);
            let (Some(Ok(domain)), Some(Ok(server)), Some(Ok(seq))) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let gtid = Gtid {
                domain: u32::try_from(domain).map_err(|_| bad())?,
                server: u32::try_from(server).map_err(|_| bad())?,
                seq,
            };
            pos.domains.insert(gtid.domain, gtid);
        }
        Ok(pos)
    }

    /// Moves the position past `gtid` (a transaction now applied or sent).
    pub fn advance(&mut self, gtid: Gtid) {
        let slot = self.domains.entry(gtid.domain).or_insert(gtid);
        if gtid.seq >= slot.seq {
            *slot = gtid;
        }
    }

    /// Moves every stream of the position to at least where `other` has it.
    pub fn merge(&mut self, other: &Position) {
        for gtid in other.domains.values() {
            self.advance(*gtid);
        }
        for (uuid, n) in &other.sources {
            let slot = self.sources.entry(uuid.clone()).or_insert(*n);
            *slot = (*slot).max(*n);
        }
    }

    /// True when every stream of `other` is at or behind this position: what `other` names is
    /// all here.
    pub fn covers(&self, other: &Position) -> bool {
        other
            .domains
            .iter()
            .all(|(d, g)| self.domains.get(d).is_some_and(|h| h.seq >= g.seq))
            && other
                .sources
                .iter()
                .all(|(u, n)| self.sources.get(u).is_some_and(|m| m >= n))
    }

    /// One number that only grows as the position moves on: the sum of the streams' sequence
    /// numbers (with one domain, its sequence number). Status shows it as `lsn`.
    pub fn lsn(&self) -> u64 {
        self.domains.values().map(|g| g.seq).sum::<u64>() + self.sources.values().sum::<u64>()
    }

    /// How many transactions `self` is behind `ahead`.
    pub fn behind(&self, ahead: &Position) -> u64 {
        ahead.lsn().saturating_sub(self.lsn())
    }

    /// True for the empty position (nothing replicated yet).
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.sources.is_empty()
    }
}

impl fmt::Display for Position {
    /// The form the server reads back (`SET @slave_connect_state`, `MASTER_GTID_WAIT`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { "," };
            first = false;
            f.write_str(s)
        };
        for gtid in self.domains.values() {
            sep(f)?;
            write!(f, "{gtid}")?;
        }
        for (uuid, n) in &self.sources {
            sep(f)?;
            write!(f, "{uuid}:1-{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mariadb_positions_round_trip_and_order() {
        let p = Position::parse("0-1-57, 1-3-9").expect("parse");
        assert_eq!(p.to_string(), "0-1-57,1-3-9");
        assert_eq!(p.lsn(), 66);
        let mut q = Position::parse("0-1-50").expect("parse");
        assert!(p.covers(&q));
        assert!(!q.covers(&p));
        q.advance(Gtid {
            domain: 0,
            server: 2,
            seq: 58,
        });
        q.advance(Gtid {
            domain: 1,
            server: 3,
            seq: 9,
        });
        assert!(q.covers(&p));
        assert_eq!(p.behind(&q), 1);
        assert!(Position::parse("").expect("empty").is_empty());
        assert!(Position::parse("0-1").is_err());
        assert!(Position::parse("x-1-2").is_err());
    }

    #[test]
    fn mysql_positions_have_the_same_operations() {
        let p = Position::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5").expect("parse");
        assert_eq!(p.lsn(), 5);
        assert_eq!(p.to_string(), "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5");
        let q = Position::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-3").expect("parse");
        assert!(p.covers(&q) && !q.covers(&p));
    }
}
