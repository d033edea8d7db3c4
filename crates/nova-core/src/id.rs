//! Time-ordered 64-bit ids (Snowflake layout): 41 bits of milliseconds since 2024-01-01, 10 bits
//! of node id, 12 bits of sequence. Sorting by id sorts by creation time, which lets every list
//! page on the primary key alone.
//!
//! Hand-written because the generator must be monotonic per node even when the wall clock steps
//! back, and the available crates either hide the node id or use globals.

use std::sync::Mutex;

/// 2024-01-01T00:00:00Z in Unix milliseconds.
pub const EPOCH_MILLIS: i64 = 1_704_067_200_000;
const NODE_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;
/// Largest node id a generator accepts.
pub const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;

/// A Nova id. Always positive; exposed to clients as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id(pub i64);

impl Id {
    /// Parses the decimal form clients send. Rejects anything that is not a positive integer.
    pub fn parse(raw: &str) -> Option<Id> {
        if raw.is_empty() || raw.len() > 19 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        raw.parse::<i64>().ok().filter(|v| *v > 0).map(Id)
    }

    /// Milliseconds since the Unix epoch at which this id was generated.
    pub fn created_at_millis(self) -> i64 {
        (self.0 >> (NODE_BITS + SEQ_BITS)) + EPOCH_MILLIS
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug)]
struct State {
    last_millis: i64,
    sequence: i64,
}

/// Generates ids for one node. Several nodes must be given distinct node ids.
#[derive(Debug)]
pub struct IdGenerator {
    node_id: i64,
    state: Mutex<State>,
}

impl IdGenerator {
    pub fn new(node_id: u16) -> Self {
        IdGenerator {
            node_id: i64::from(node_id.min(MAX_NODE_ID)),
            state: Mutex::new(State {
                last_millis: 0,
                sequence: 0,
            }),
        }
    }

    /// Next id at the current wall-clock time.
    pub fn next_id(&self) -> Id {
        self.next_at(crate::now_millis())
    }

    /// Next id for a given wall-clock time. If the clock went back, or the 4,096 ids of this
    /// millisecond are used up, the id borrows the next millisecond so ids stay strictly increasing.
    pub fn next_at(&self, now_millis: i64) -> Id {
        let mut state = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = (now_millis - EPOCH_MILLIS).max(0);
        if now > state.last_millis {
            state.last_millis = now;
            state.sequence = 0;
        } else if state.sequence < MAX_SEQ {
            state.sequence += 1;
        } else {
            state.last_millis += 1;
            state.sequence = 0;
        }
        Id((state.last_millis << (NODE_BITS + SEQ_BITS))
            | (self.node_id << SEQ_BITS)
            | state.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_even_when_the_clock_goes_back() {
        let generator = IdGenerator::new(7);
        let t = EPOCH_MILLIS + 1_000_000;
        let mut last = generator.next_at(t);
        for now in [t, t - 500, t + 1, t + 1, t - 10_000] {
            let next = generator.next_at(now);
            assert!(next > last, "{next:?} should be greater than {last:?}");
            last = next;
        }
    }

    #[test]
    fn sequence_overflow_borrows_the_next_millisecond() {
        let generator = IdGenerator::new(1);
        let t = EPOCH_MILLIS + 42;
        let ids: Vec<Id> = (0..5000).map(|_| generator.next_at(t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[0].created_at_millis(), t);
        assert_eq!(ids[4999].created_at_millis(), t + 1);
    }

    #[test]
    fn parse_accepts_only_positive_decimal() {
        assert_eq!(Id::parse("123"), Some(Id(123)));
        for bad in [
            "",
            "0",
            "-1",
            "1e3",
            " 1",
            "99999999999999999999",
            "abc",
            "12a",
        ] {
            assert_eq!(Id::parse(bad), None, "{bad}");
        }
    }
}
